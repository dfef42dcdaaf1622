"""Offline data preparation: checksums decide, and a bad file never lands in raw/."""

import gzip
import hashlib

import pytest

from gan_cli.data import prepare


def test_install_verifies_and_gunzips(tmp_path):
    payload = b"idx bytes"
    src = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(src, "wb") as f:
        f.write(payload)
    files = {"train-images-idx3-ubyte": hashlib.sha256(payload).hexdigest()}
    raw = tmp_path / "raw"
    prepare.install({"train-images-idx3-ubyte": src}, raw, files)
    assert (raw / "train-images-idx3-ubyte").read_bytes() == payload
    assert prepare.is_prepared(raw, files)


def test_install_refuses_a_checksum_mismatch(tmp_path):
    src = tmp_path / "x"
    src.write_bytes(b"tampered")
    raw = tmp_path / "raw"
    with pytest.raises(prepare.PrepareError, match="checksum"):
        prepare.install({"x": src}, raw, {"x": "0" * 64})
    assert list(raw.iterdir()) == []  # nothing half-written left behind


def test_prepared_mnist_matches_published_checksums(mnist_root):
    assert prepare.is_prepared(mnist_root / "MNIST" / "raw", prepare.MNIST_FILES)


def test_unknown_dataset_is_refused(capsys):
    with pytest.raises(SystemExit):
        prepare.main(["cifar100"])
    assert "unknown data set" in capsys.readouterr().err


def test_prepare_names_what_the_source_lacks(tmp_path):
    with pytest.raises(prepare.PrepareError, match=r"lacks \['a'\]"):
        prepare.prepare("x", tmp_path / "raw", {"a": "0" * 64}, lambda tmp: {})


def test_prepare_fetches_nothing_when_the_files_are_there(tmp_path, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a").write_bytes(b"data")
    files = {"a": hashlib.sha256(b"data").hexdigest()}

    def fetch(tmp):
        raise AssertionError("fetched although prepared")

    prepare.prepare("x", raw, files, fetch)
    assert "already prepared" in capsys.readouterr().out
