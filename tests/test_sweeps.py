"""Sweeps: what each run of `gan train -m` records (result.json, TensorBoard hparams), `gan report`,
and Hydra's launcher and sweeper plugins through the sweeps extra."""

import csv
import json

from omegaconf import OmegaConf

from tests.helpers import gan, installed


def test_a_sweep_records_hparams_and_gan_report_tables_it(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sweep = tmp_path / "sweep"
    toy = ["experiment=gan_toy_ring", "train.steps=40", "train.batch_size=64", "train.log_every=4",
           "train.sample_every=20", "train.checkpoint_every=0", "train.eval_every=20", "train.eval_n=300",
           "train.eval_metric=modes_covered", "device=cpu"]
    gan("train", "-m", *toy, "optimizer.d.lr=1e-4,1e-3", f"hydra.sweep.dir={sweep}", cwd=tmp_path, check=True)
    result = json.loads((sweep / "0" / "result.json").read_text())
    assert result["overrides"][-1] == "optimizer.d.lr=0.0001" and result["step"] == 40  # as Hydra spells it
    assert result["best"]["metric"] == "modes_covered"
    events = EventAccumulator(str(sweep / "0")).Reload()
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")  # the HParams dashboard's
    assert {"final/loss/g", "best/modes_covered"} <= set(events.Tags()["scalars"])
    out = gan("report", f"run={sweep}", cwd=tmp_path, check=True)
    lines = [line for line in out.stdout.splitlines() if not line.startswith("[")]
    assert lines[0] == "2 runs, sorted by best/modes_covered (higher first):"
    best = [json.loads((sweep / r / "result.json").read_text())["best"]["value"] for r in ("0", "1")]
    assert int(lines[2].split()[0]) == (0 if best[0] >= best[1] else 1)
    assert "optimizer.d.lr=0.00" in lines[2]
    rows = list(csv.reader((sweep / "report.csv").open()))
    assert rows[0][:3] == ["run", "overrides", "loss/d"] and len(rows) == 3
    page = (sweep / "report.html").read_text()
    assert page.count("<tr>") == 3 and 'src="0/samples/step_0000040.png"' in page


def test_report_of_a_directory_without_runs(tmp_path):
    out = gan("report", f"run={tmp_path}", cwd=tmp_path)
    assert out.returncode == 2 and "holds no training runs" in out.stderr and "Traceback" not in out.stderr


TOY = ["experiment=gan_toy_ring", "train.steps=20", "train.batch_size=64", "train.log_every=4",
       "train.sample_every=0", "train.checkpoint_every=0", "device=cpu"]


def test_the_local_launcher_runs_the_sweep_or_names_the_extra(tmp_path):
    """With the sweeps extra: runs in parallel local jobs. Without it (CI): one line naming the extra."""
    sweep = tmp_path / "sweep"
    out = gan("train", "-m", "hydra/launcher=local", *TOY, "loss=nonsaturating,lsgan", f"hydra.sweep.dir={sweep}",
              cwd=tmp_path)
    if installed("hydra_plugins.hydra_joblib_launcher"):
        assert out.returncode == 0, out.stderr[-2000:]
        assert "Joblib.Parallel(n_jobs=1" in out.stdout + out.stderr  # one GPU-less job at a time
        assert all((sweep / r / "checkpoints" / "last.pt").is_file() for r in ("0", "1"))
    else:
        assert out.returncode == 2 and "pip install 'gan-cli[sweeps]'" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1 and not sweep.exists()


def test_the_optuna_recipe_optimises_the_returned_metric_or_names_the_extra(tmp_path, mnist_root):
    sweep = tmp_path / "sweep"
    out = gan("train", "-m", "experiment=tune_dcgan_mnist", "hydra.sweeper.n_trials=2", "train.steps=40",
              "train.eval_every=20", "train.eval_n=300", "device=cpu", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    if installed("hydra_plugins.hydra_optuna_sweeper"):
        assert out.returncode == 0, out.stderr[-2000:]
        best = OmegaConf.load(sweep / "optimization_results.yaml")
        values = [json.loads((sweep / r / "result.json").read_text())["best"]["value"] for r in ("0", "1")]
        assert best.best_value == min(values)  # minimize: the lower of the two trials' returned values
    else:
        assert out.returncode == 2 and "pip install 'gan-cli[sweeps]'" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


def test_a_sweep_over_a_key_that_does_not_exist(tmp_path):
    out = gan("train", "-m", "model.depth=2,3", "train.steps=1", f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert out.returncode == 2 and "Could not override 'model.depth': Key 'depth' is not in struct" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "sweep").exists()


def test_a_bad_job_fails_alone_and_the_sweep_goes_on(tmp_path):
    """Hydra's convention: a job that fails is reported, named, and the others still run."""
    from tests.helpers import TINY, gan_here

    sweep = tmp_path / "sweep"
    out = gan_here("train", "-m", *TINY, "optimizer.g.lr=2e-4,0,1e-4", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "gan train: job 1 (optimizer.g.lr=0): error: optimizer.g.lr=0 must be positive",
        "gan train: 1 of 3 jobs failed (job 1 (optimizer.g.lr=0)); the others ran to the end",
    ]
    assert (sweep / "0" / "checkpoints" / "last.pt").is_file() and (sweep / "2" / "checkpoints" / "last.pt").is_file()
    assert not (sweep / "1").exists()  # the failed job left no directory of bare bookkeeping


def test_a_path_beyond_ascii_gets_a_hint_to_quote_it(tmp_path):
    from tests.helpers import gan_here, one_line_error

    line = one_line_error(gan_here("train", "data=folder", "data.root=/tmp/données", cwd=tmp_path), "must be quoted")
    assert """'data.root="/tmp/données"'""" in line
