"""Name what went wrong in a run: detectors over the logged series and over samples, each finding with
its step range, the numbers behind it and the cures the literature gives, as `gan train` overrides."""
