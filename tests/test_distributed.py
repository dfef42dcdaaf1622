"""Data parallelism under torchrun, on the CPU with the gloo backend: two processes with batch B take the
same steps as one process with batch 2B, write one run directory, and resume across process counts."""

import json
import os
import subprocess
import sys

import pytest
import torch
from torch.testing import assert_close

from gan_cli import build, checkpoint, distributed
from gan_cli.errors import UserError
from tests.helpers import DATA_ROOT, REPO, gan

# an MLP pair without batch norm or dropout: statistics that would differ per rank
SMALL = ["data=fake", "data.n=256", "data.resolution=8", "data.channels=1", "model=mlp", "model.g.hidden=32",
         "model.d.hidden=16", "model.d.dropout=0", "model.z_dim=8", "train.log_every=2", "train.sample_every=0",
         "device=cpu"]


def torchrun(*args: str, cwd, processes: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "GAN_DATA_ROOT": str(DATA_ROOT), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc-per-node={processes}", "-m", "gan_cli", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_two_processes_with_batch_b_match_one_with_batch_2b(tmp_path):
    torchrun("train", *SMALL, "train.steps=6", "train.batch_size=8", cwd=tmp_path)
    runs = [p.parent.parent for p in tmp_path.glob("outputs/train/*/*/checkpoints/last.pt")]
    assert len(runs) == 1  # rank 1 wrote nothing and left no directory of its own
    assert len(list(tmp_path.glob("outputs/train/*/*"))) == 1
    one = tmp_path / "one"
    gan("train", *SMALL, "train.steps=6", "train.batch_size=16", f"hydra.run.dir={one}", cwd=tmp_path, check=True)
    two, single = (checkpoint.load(r / "checkpoints" / "last.pt") for r in (runs[0], one))
    for net in ("G", "D"):
        assert_close(two["models"][net], single["models"][net], atol=1e-6, rtol=1e-5)
    assert two["world_size"] == 2 and single["world_size"] == 1
    logged = [[json.loads(line) for line in (r / "metrics.jsonl").read_text().splitlines()] for r in (runs[0], one)]
    for a, b in zip(*logged):  # the logged means are the world's: the same as one process over 2B
        assert_close(a["loss/d"], b["loss/d"], atol=1e-6, rtol=1e-5)
        assert_close(a["acc/fake"], b["acc/fake"])


def test_a_run_resumes_on_a_different_number_of_processes(tmp_path):
    first = tmp_path / "first"
    torchrun("train", *SMALL, "train.steps=4", "train.batch_size=8", f"hydra.run.dir={first}", cwd=tmp_path)
    out = gan("train", f"resume={first / 'checkpoints' / 'last.pt'}", "train.steps=8",
              f"hydra.run.dir={tmp_path / 'second'}", cwd=tmp_path, check=True)
    assert "the run had 2 processes and now has 1" in out.stdout + out.stderr
    assert checkpoint.load(tmp_path / "second" / "checkpoints" / "last.pt")["step"] == 8


def test_more_processes_than_gpus_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(UserError, match="torchrun started 2 processes on this machine but it has 1 GPUs; "
                                        "use --nproc-per-node=1"):
        distributed.join("cuda", build.device)


def test_a_world_of_one_shards_nothing():
    world = distributed.World()
    x = torch.arange(6)
    assert world.main and world.shard(x) is x and world.shard(None) is None
    assert_close(distributed.World(rank=1, size=3).shard(x), torch.tensor([2, 3]))


def test_a_time_budget_stops_every_rank_at_the_same_step(tmp_path):
    # each rank reads its own clock; they must still leave the loop together, or one waits forever
    run = tmp_path / "run"
    torchrun("train", *SMALL, "train.steps=100000", "train.batch_size=8", "train.max_minutes=0.002",
             f"hydra.run.dir={run}", cwd=tmp_path)
    assert 0 < checkpoint.load(run / "checkpoints" / "last.pt")["step"] < 100000


def test_evaluation_during_data_parallel_training(tmp_path):
    # rank 0 evaluates for the world; the NaN check around it is a collective every rank takes part in
    run = tmp_path / "run"
    torchrun("train", "experiment=gan_toy_ring", "train.steps=20", "train.batch_size=32", "train.log_every=5",
             "train.sample_every=0", "train.checkpoint_every=0", "train.eval_every=10", "train.eval_n=200",
             "device=cpu", f"hydra.run.dir={run}", cwd=tmp_path)
    rows = [json.loads(line) for line in (run / "evals.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20] and (run / "checkpoints" / "best.pt").is_file()
