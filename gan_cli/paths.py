"""Where the configs live, in a checkout and in an installed wheel."""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def config_dir() -> str:
    # A wheel carries the configs inside the package; an editable checkout keeps them at the top level.
    for candidate in (_PACKAGE / "conf", _PACKAGE.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(f"gan-cli configs not found next to {_PACKAGE}")
