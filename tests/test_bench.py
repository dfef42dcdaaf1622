"""The benchmark and figure scripts still import what they use: they run outside the suite (bench/ prints
numbers, it is not timed here), so a renamed helper would otherwise break them unseen."""

import runpy

import pytest

from tests.helpers import REPO

SCRIPTS = sorted([*(REPO / "bench").glob("*.py"), *(REPO / "docs").glob("*.py")])


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_the_script_imports_and_defines_main(script):
    namespace = runpy.run_path(str(script), run_name="imported_by_a_test")  # not __main__: nothing runs
    assert callable(namespace["main"])
