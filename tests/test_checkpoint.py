"""Checkpoints: atomic, self-describing, loaded as data only; every broken kind named."""

import pytest
import torch

from gan_cli import checkpoint, files
from gan_cli.errors import UserError
from gan_cli.models import mlp
from tests.helpers import gan_here, one_line_error


@pytest.fixture()
def state(tiny_checkpoint) -> dict:
    """What gan train writes, without the format marker that save adds."""
    return {k: v for k, v in torch.load(tiny_checkpoint, weights_only=True).items() if k != "format"}


def test_round_trip(tmp_path, state):
    G = mlp.Generator(z_dim=3, shape=(2,), hidden=4)
    path = tmp_path / "c.pt"
    checkpoint.save(path, {**state, "models": {"G": G.state_dict(), "D": {}}, "step": 7})
    loaded = checkpoint.load(path)
    assert loaded["step"] == 7 and loaded["config"] == {**state["config"], "trust": []}
    H = mlp.Generator(z_dim=3, shape=(2,), hidden=4)
    checkpoint.load_weights(H, loaded["models"]["G"], path, "generator")
    assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), H.state_dict().values()))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left


def test_save_replaces_atomically(tmp_path, state):
    path = tmp_path / "c.pt"
    checkpoint.save(path, {**state, "step": 1})
    checkpoint.save(path, {**state, "step": 2})
    assert checkpoint.load(path)["step"] == 2


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(tmp_path, state, monkeypatch):
    import errno

    path = tmp_path / "c.pt"
    checkpoint.save(path, {**state, "step": 1})
    good = path.read_bytes()

    def full_disk(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files._Sink, "write", full_disk)
    with pytest.raises(files.WriteError, match=r"could not write .*c\.pt \(No space left on device\)"):
        checkpoint.save(path, {**state, "step": 2})
    assert path.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["c.pt"]


@pytest.mark.parametrize("damage,message", [
    (lambda s: s.pop("models"), "has no 'models'"),
    (lambda s: s["models"].pop("G"), "has no 'models.G'"),
    (lambda s: s["models"].update(D=[1]), "'models.D' is a list, not a mapping"),
    (lambda s: s.pop("config"), "has no 'config'"),
    (lambda s: s["data"].pop("shape"), "has no 'data.shape'"),
    (lambda s: s.update(step="7"), "'step' is a str, not an integer"),
    (lambda s: s.update(config=[1, 2]), "'config' is a list, not a mapping"),
    (lambda s: s["data"].update(shape=[1, 0, 16]), "data shape [1, 0, 16]"),
])
def test_a_checkpoint_with_the_marker_but_missing_keys_is_one_line(tmp_path, state, damage, message):
    damage(state)
    path = tmp_path / "c.pt"
    torch.save({"format": checkpoint.FORMAT, **state}, path)
    one_line_error(gan_here("sample", f"checkpoint={path}", f"out={tmp_path}/s.png", cwd=tmp_path), message)
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_a_generator_alone_is_enough_to_sample_but_not_to_resume(tmp_path, state):
    """Only G is every algorithm's: sample reads a checkpoint without D, and resume names what is missing."""
    state["models"].pop("D")
    path = tmp_path / "c.pt"
    checkpoint.save(path, state)
    assert gan_here("sample", f"checkpoint={path}", f"out={tmp_path}/s.png", cwd=tmp_path).returncode == 0
    one_line_error(gan_here("train", f"resume={path}", f"train.steps={state['step'] + 2}",
                            f"hydra.run.dir={tmp_path}/run", cwd=tmp_path), "has no models D", "algorithm=")


@pytest.mark.parametrize("case,message", [
    ("missing", "does not exist"),
    ("directory", "is a directory"),
    ("truncated", "unreadable"),
    ("text", "unreadable"),
    ("foreign", "not a gan-cli checkpoint"),
    ("code", "refused for safety"),
])
def test_bad_checkpoints_are_named(tmp_path, case, message):
    path = tmp_path / "c.pt"
    if case == "directory":
        path.mkdir()
    elif case == "truncated":
        checkpoint.save(path, {"step": 1, "w": torch.zeros(1000)})
        path.write_bytes(path.read_bytes()[:300])
    elif case == "text":
        path.write_text("hello")
    elif case == "foreign":
        torch.save({"state_dict": {}}, path)
    elif case == "code":
        torch.save({"format": checkpoint.FORMAT, "x": Exploit(tmp_path / "pwned")}, path)
    with pytest.raises(UserError, match=message):
        checkpoint.load(path)
    assert not (tmp_path / "pwned").exists()  # the stranger's code never ran


class Exploit:
    """Unpickling this calls open(marker, "w"): any code run at load time would leave the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_weights_of_another_model_are_named(tmp_path):
    small = mlp.Generator(z_dim=3, shape=(2,), hidden=4)
    big = mlp.Generator(z_dim=3, shape=(2,), hidden=8)
    with pytest.raises(UserError, match="different generator"):
        checkpoint.load_weights(big, small.state_dict(), tmp_path / "c.pt", "generator")


def test_copy_gives_an_identical_second_name(tmp_path):
    checkpoint.save(tmp_path / "step_0000002.pt", {"step": 2, "w": torch.arange(5.0)})
    checkpoint.copy(tmp_path / "step_0000002.pt", tmp_path / "last.pt")
    assert (tmp_path / "last.pt").read_bytes() == (tmp_path / "step_0000002.pt").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "step_0000002.pt"]


# -- what the commands read, and every file written atomically -------------------------------------------

def test_saved_names_what_the_commands_read(tiny_checkpoint):
    saved = checkpoint.Saved.load(tiny_checkpoint)
    assert saved.step == 4 and saved.shape == (1, 16, 16) and saved.scale == 1 and saved.num_classes is None
    assert saved.config["model"]["z_dim"] == 8 and saved.config["trust"] == []
    G = saved.generator(torch.device("cpu"))
    assert not G.training and G.z_dim == 8
    raw = checkpoint.load_generator(saved.state, tiny_checkpoint, torch.device("cpu"), ema=False)
    assert all(torch.equal(w, saved.state["models"]["G"][k]) for k, w in raw.state_dict().items())
    assert checkpoint.is_checkpoint(tiny_checkpoint) and not checkpoint.is_checkpoint(tiny_checkpoint.parent.parent
                                                                                          / "metrics.jsonl")


def test_a_failed_write_of_any_file_is_one_line_and_leaves_the_old_one(tmp_path):
    path = tmp_path / "record.json"
    files.write_text(path, "old\n")
    with pytest.raises(files.WriteError, match=r"could not write .*record\.json \(File too large\).*: give "
                                                    r"another name"):
        with files.atomic_write(path, "give another name") as tmp:
            tmp.write_text("half")
            raise OSError(27, "File too large")  # EFBIG, as `ulimit -f` gives it
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_write_tensors_and_write_text_make_their_folder(tmp_path):
    files.write_tensors(tmp_path / "a" / "t.pt", {"x": torch.arange(3)})
    files.write_text(tmp_path / "b" / "t.txt", "hi")
    assert torch.load(tmp_path / "a" / "t.pt", weights_only=True)["x"].tolist() == [0, 1, 2]
    assert (tmp_path / "b" / "t.txt").read_text() == "hi" and files.partial_files(tmp_path / "a") == []
