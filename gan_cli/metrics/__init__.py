"""Measurements of samples: a data set's own classifier and what it says about generated images."""
