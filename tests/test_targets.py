"""A checkpoint is data, never code: crafted configs that would open, copy, touch, write or unpickle
files are refused by every command that loads a checkpoint, before anything is built, and no file
appears or changes. The command line follows the same rule unless the user trusts their own module."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
import torch

from gan_cli import targets
from gan_cli.errors import UserError
from tests.helpers import TINY, gan_here, one_line_error


class _Payload:
    """What a hostile pickle does: write a file, then hand back a harmless model width."""

    def __init__(self, victim: Path):
        self.victim = victim

    def __reduce__(self):
        return eval, (f"__import__('pathlib').Path({str(self.victim)!r}).write_text('pwned') and 8",)


def _nested_torch_load(victim: Path) -> dict:
    buffer = io.BytesIO()
    torch.save(_Payload(victim), buffer)
    blob = base64.b64encode(buffer.getvalue()).decode()
    return {"_target_": "torch.load", "weights_only": False,
            "f": {"_target_": "io.BytesIO", "_args_": [{"_target_": "base64.b64decode", "s": blob}]}}


def _payloads(victim: Path, other: Path, new: Path) -> dict[str, tuple[str, object]]:
    """name -> (where in the config, what is put there)."""
    path_of = {"_target_": "pathlib.Path", "_args_": [str(new)]}
    return {
        "open": ("model.g.width", {"_target_": "builtins.open", "file": str(victim), "mode": "w"}),
        "copyfile": ("data.n", {"_target_": "shutil.copyfile", "src": str(other), "dst": str(victim)}),
        "touch": ("loss", {"_target_": "pathlib.Path.touch", "self": path_of}),
        "write_text": ("optimizer.g.lr", {"_target_": "pathlib.Path.write_text", "self": path_of, "data": "pwned"}),
        "in_a_list": ("model.d.extra", [1, {"_target_": "os.remove", "_args_": [str(victim)]}]),
        "torch_load": ("model.g.width", _nested_torch_load(new)),
    }


def _put(config: dict, where: str, value) -> None:
    *parents, last = where.split(".")
    for key in parents:
        config = config[key]
    config[last] = value


@pytest.fixture()
def scene(tmp_path, tiny_checkpoint):
    victim, other, new = tmp_path / "victim.txt", tmp_path / "other.txt", tmp_path / "new.txt"
    victim.write_text("the user's file\n")
    other.write_text("someone else's\n")
    state = torch.load(tiny_checkpoint, weights_only=True)
    return tmp_path, victim, other, new, state


def _crafted(tmp_path: Path, state: dict, name: str, where: str, value) -> Path:
    """A run directory whose checkpoint carries the payload, with enough logged rows to be diagnosed."""
    run = tmp_path / f"run_{name}"
    (run / "checkpoints").mkdir(parents=True)
    bad = {**state, "config": json.loads(json.dumps(state["config"]))}
    _put(bad["config"], where, value)
    torch.save(bad, run / "checkpoints" / "last.pt")
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": 10 * i, "loss/d": 1.0, "loss/g": 1.0}) + "\n"
                                               for i in range(1, 13)))
    return run


COMMANDS = {
    "sample": lambda run, out: ("sample", f"checkpoint={run}/checkpoints/last.pt", f"out={out}/s.png"),
    "eval": lambda run, out: ("eval", f"checkpoint={run}/checkpoints/last.pt", "n=16"),
    "latent-arithmetic": lambda run, out: ("latent-arithmetic", f"checkpoint={run}/checkpoints/last.pt",
                                           "a=[0]", "b=[1]", "c=[2]", f"hydra.run.dir={out}/la"),
    "diagnose": lambda run, out: ("diagnose", f"run={run}", "min_points=3", "samples=8"),
    "train resume=": lambda run, out: ("train", f"resume={run}/checkpoints/last.pt", "train.steps=8",
                                       f"hydra.run.dir={out}/resumed"),
}


def _refused_without_a_trace(tmp_path, victim, new, args) -> None:
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    line = one_line_error(gan_here(*args, cwd=tmp_path), "_target_=", "not one of gan-cli's own components")
    assert "trust=" not in line  # never advise trusting the standard library or torch
    assert victim.read_text() == "the user's file\n"
    assert not new.exists()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("payload", ["open", "copyfile", "touch", "write_text", "in_a_list", "torch_load"])
def test_each_payload_is_refused_before_it_runs(scene, payload):
    tmp_path, victim, other, new, state = scene
    where, value = _payloads(victim, other, new)[payload]
    run = _crafted(tmp_path, state, payload, where, value)
    _refused_without_a_trace(tmp_path, victim, new, COMMANDS["sample"](run, tmp_path / "outs"))


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_that_loads_a_checkpoint_refuses_it(scene, command):
    """The nested torch.load ran code silently, with rc 0 and normal samples: here in each command."""
    tmp_path, victim, other, new, state = scene
    where, value = _payloads(victim, other, new)["torch_load"]
    run = _crafted(tmp_path, state, "torch_load", where, value)
    _refused_without_a_trace(tmp_path, victim, new, COMMANDS[command](run, tmp_path / "outs"))


def test_trust_comes_from_the_command_line_never_from_the_checkpoint(scene):
    tmp_path, victim, other, new, state = scene
    run = _crafted(tmp_path, state, "trusting", "model.g.width",
                   {"_target_": "builtins.open", "file": str(victim), "mode": "w"})
    bad = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    bad["config"]["trust"] = ["builtins"]
    torch.save(bad, run / "checkpoints" / "last.pt")
    one_line_error(gan_here("sample", f"checkpoint={run}/checkpoints/last.pt", f"out={tmp_path}/s.png",
                            cwd=tmp_path), "builtins.open")
    assert victim.read_text() == "the user's file\n" and not (tmp_path / "s.png").exists()


def test_a_saved_config_with_an_interpolation_is_refused(scene):
    tmp_path, _, _, _, state = scene
    run = _crafted(tmp_path, state, "interp", "data.n", "${oc.env:HOME}")
    one_line_error(gan_here("sample", f"checkpoint={run}/checkpoints/last.pt", f"out={tmp_path}/s.png",
                            cwd=tmp_path), "interpolation", "data.n")


def test_the_command_line_may_name_only_shipped_components(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file\n")
    proc = gan_here("train", *TINY, "model.g._target_=builtins.exec", cwd=tmp_path)
    one_line_error(proc, "model.g names _target_=builtins.exec")
    nested = gan_here("train", *TINY, f"+model.g.extra={{_target_:os.remove,path:'{victim}'}}", cwd=tmp_path)
    one_line_error(nested, "model.g.extra names _target_=os.remove")
    assert [p.name for p in tmp_path.iterdir()] == ["victim.txt"]


def test_a_users_own_model_runs_when_trusted_on_the_command_line(tmp_path, user_package):
    """The README's example: a generator of your own, trained and then sampled, both with trust=[mypkg]."""
    user_package("models", """
        from gan_cli.models.dcgan import Generator as DCGANGenerator

        class Generator(DCGANGenerator):
            \"\"\"The user's own generator (here: DCGAN's, under another name).\"\"\"
    """)
    run = tmp_path / "run"
    mine = ["model.g._target_=mypkg.models.Generator", f"hydra.run.dir={run}"]
    one_line_error(gan_here("train", *TINY, *mine, cwd=tmp_path), "mypkg.models.Generator", "trust=[mypkg]")
    assert not run.exists()
    assert gan_here("train", *TINY, *mine, "trust=[mypkg]", cwd=tmp_path).returncode == 0
    last = run / "checkpoints" / "last.pt"
    one_line_error(gan_here("sample", f"checkpoint={last}", f"out={tmp_path}/s.png", cwd=tmp_path),
                   "trust=[mypkg]")
    proc = gan_here("sample", f"checkpoint={last}", f"out={tmp_path}/s.png", "trust=[mypkg]", cwd=tmp_path)
    assert proc.returncode == 0 and (tmp_path / "s.png").is_file(), proc.stderr


def test_the_allow_list_is_every_target_the_project_ships():
    shipped = targets.shipped()
    assert {"gan_cli.models.dcgan.Generator", "gan_cli.losses.WGANGP", "torch.optim.Adam",
            "gan_cli.data.folder.load"} <= shipped
    assert not any(t.startswith(("builtins", "os.", "shutil", "pathlib", "hydra")) for t in shipped)
    assert targets.allowed("mypkg.models.G", ["mypkg"]) and not targets.allowed("mypkgx.G", ["mypkg"])
    with pytest.raises(UserError, match=r"\[1\]\._target_ is not a dotted Python name"):
        targets.check({"a": [0, {"_target_": 3}]}, [], "test")
    with pytest.raises(UserError, match="not a dotted Python name"):
        targets.check({"_target_": " builtins.print"}, [], "test")
    with pytest.raises(UserError, match="is not a module name"):
        targets.check({}, [" mypkg"], "test")


def test_the_standard_library_and_torch_are_never_trusted(tmp_path):
    """'Run my checkpoint with trust=[builtins]' is how a stranger would ask for code execution."""
    for module in ("builtins", "os.path", "torch", "gan_cli"):
        one_line_error(gan_here("sample", "checkpoint=x.pt", f"trust=[{module}]", cwd=tmp_path),
                       f"trust=[{module}]: trust is for modules of your own")
    assert list(tmp_path.iterdir()) == []
