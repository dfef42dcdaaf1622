"""gan report and gan diagnose read what a crash or a hand edit leaves: half a last line, rows that are not
what the loop writes, a result.json or a Hydra record that is not what train writes. A bad row is skipped
with one warning that counts it; a broken run is reported as broken, and the command goes on.

Run directories are written by hand here, shaped as `gan train` writes them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.helpers import gan_here, one_line_error

ROW = {"loss/d": 1.3, "loss/g": 0.7, "acc/real": 0.6, "acc/fake": 0.55}


def _lines(n: int, **extra) -> list[str]:
    return [json.dumps({"step": 10 * (i + 1), **ROW, **extra}) for i in range(n)]


def _run(path: Path, lines: list[str], result=None, overrides: str = "- loss=nonsaturating\n") -> Path:
    """A run directory: metrics.jsonl from `lines`, result.json from `result` (a dict is written as JSON,
    a str as it is, None: no file, as a killed run leaves it), and Hydra's record of the overrides."""
    (path / ".hydra").mkdir(parents=True)
    (path / ".hydra" / "overrides.yaml").write_text(overrides)
    (path / "metrics.jsonl").write_text("".join(line + "\n" for line in lines))
    if result is not None:
        (path / "result.json").write_text(result if isinstance(result, str) else json.dumps(result))
    return path


def _result(**final) -> dict:
    return {"overrides": [], "step": 40, "final": {**ROW, **final}, "best": None, "stopped_by": None}


def _said(proc) -> str:
    return proc.stdout + proc.stderr  # warnings are logged: with Hydra's logging they reach stdout


def _warnings(proc) -> list[str]:
    return [line for line in _said(proc).splitlines() if "WARNING" in line]


def _report_rows(sweep: Path) -> dict[str, dict]:
    return {r["run"]: r for r in csv.DictReader((sweep / "report.csv").open())}


# --- gan report ---------------------------------------------------------------------------------------------

def test_report_of_a_sweep_with_a_killed_run(tmp_path):
    sweep = tmp_path / "sweep"
    _run(sweep / "0", _lines(4), _result())
    _run(sweep / "1", _lines(3, **{"loss/g": 2.5}) + ['{"step": 40, "loss/d": 1.'], overrides="- loss=minimax\n")
    proc = gan_here("report", f"run={sweep}", "diagnose=false", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]  # today: JSONDecodeError on the half line
    rows = _report_rows(sweep)
    assert float(rows["1"]["loss/g"]) == 2.5  # its last whole row
    warned = _warnings(proc)
    assert len(warned) == 1 and "skipping 1 " in warned[0] and str(sweep / "1" / "metrics.jsonl") in warned[0], warned


@pytest.mark.parametrize("content,why", [
    ('{"final": {"loss/d": 1.', "result.json is not JSON"),
    ("[1, 2, 3]", "result.json is not a JSON object"),
    ("42", "result.json is not a JSON object"),
    ('{"final": "done"}', "final is a str"),
    ('{"final": {"loss/d": "abc", "loss/g": 0.5}}', "final/loss/d is a str"),
    ('{"final": {}, "best": 0.9}', "best is a float"),
    ('{"final": {}, "best": {"metric": "fid", "value": "low"}}', "best value is a str"),
    ('{"final": {}, "best": {"metric": ["fid"], "value": 3.0}}', "best metric is a list"),
])
def test_report_names_a_broken_result_json_as_broken(tmp_path, content, why):
    sweep = tmp_path / "sweep"
    _run(sweep / "0", _lines(4), _result())
    _run(sweep / "1", _lines(4), content, overrides="- loss=minimax\n")
    proc = gan_here("report", f"run={sweep}", "diagnose=false", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]  # today: a traceback (JSON, attribute or type error)
    rows = _report_rows(sweep)
    assert rows["1"]["verdict"].startswith("broken: ") and why in rows["1"]["verdict"], rows["1"]
    assert rows["0"]["verdict"] == ""  # the sound run is not marked
    table = next(line for line in proc.stdout.splitlines() if line.startswith("1 "))
    assert f"broken: {why}" in table or why in table, table


def test_report_names_broken_hydra_overrides_and_eval_files(tmp_path):
    sweep = tmp_path / "sweep"
    _run(sweep / "0", _lines(4), _result(), overrides="- [not, a, string]\n")
    _run(sweep / "1", _lines(4), _result(), overrides="- loss=minimax\n")
    (sweep / "1" / "checkpoints").mkdir()
    (sweep / "1" / "checkpoints" / "metrics.json").write_text('{"last.pt": {"metrics": {"fid": "high"}}}')
    _run(sweep / "2", _lines(4), _result(), overrides="key: [unclosed\n")
    proc = gan_here("report", f"run={sweep}", "diagnose=false", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]  # today: TypeError / a YAML parser error
    rows = _report_rows(sweep)
    assert ".hydra/overrides.yaml" in rows["0"]["verdict"] and ".hydra/overrides.yaml" in rows["2"]["verdict"]
    assert "checkpoints/metrics.json" in rows["1"]["verdict"] and rows["1"]["overrides"] == "loss=minimax"


def test_report_with_diagnosis_warns_once_per_file(tmp_path):
    sweep = tmp_path / "sweep"
    _run(sweep / "0", _lines(12), _result())
    _run(sweep / "1", ["[1, 2]"] + _lines(12) + ['{"step": 130, "loss'])  # killed, and one row not an object
    proc = gan_here("report", f"run={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    warned = _warnings(proc)
    # report and diagnose both read the file: one warning still
    assert len(warned) == 1 and "skipping 2 " in warned[0] and "metrics.jsonl" in warned[0], warned
    assert "not judged" not in _report_rows(sweep)["1"]["verdict"]


# --- gan diagnose -------------------------------------------------------------------------------------------

BAD_ROWS = {
    "no step": json.dumps(ROW),
    "a list": json.dumps([1, 2]),
    "a number": "7",
    "a string value": json.dumps({"step": 25, **ROW, "loss/d": "abc"}),
    "a step that is not a number": json.dumps({"step": "ten", **ROW}),
    "half a line": '{"step": 90, "loss/d": 1.',
}


@pytest.mark.parametrize("kind", list(BAD_ROWS))
def test_diagnose_skips_a_bad_row_with_one_warning(tmp_path, kind):
    lines = _lines(6)
    lines.insert(2, BAD_ROWS[kind])
    run = _run(tmp_path / "run", lines)
    proc = gan_here("diagnose", f"run={run}", "samples=0", "min_points=3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]  # today: KeyError, AttributeError, ValueError or a UserError
    warned = _warnings(proc)
    assert len(warned) == 1 and "skipping 1 " in warned[0] and str(run / "metrics.jsonl") in warned[0], warned
    assert json.loads((run / "diagnosis.json").read_text())["log_intervals"] == 6


def test_diagnose_counts_every_skipped_row_in_one_warning(tmp_path):
    lines = _lines(5) + list(BAD_ROWS.values())[:-1] + _lines(1) + [BAD_ROWS["half a line"]]
    run = _run(tmp_path / "run", lines)
    proc = gan_here("diagnose", f"run={run}", "samples=0", "min_points=3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    warned = _warnings(proc)
    assert len(warned) == 1 and f"skipping {len(BAD_ROWS)} " in warned[0], warned


def test_diagnose_of_a_run_without_a_usable_row_is_one_line(tmp_path):
    run = _run(tmp_path / "run", list(BAD_ROWS.values()))
    proc = gan_here("diagnose", f"run={run}", "samples=0", "min_points=3", cwd=tmp_path)
    one_line_error(proc, "metrics.jsonl", "no usable row")


@pytest.mark.parametrize("config", ["model: [unclosed\n", "- a list\n- not a mapping\n", "42\n"])
def test_diagnose_falls_back_when_the_hydra_config_is_broken(tmp_path, config):
    run = _run(tmp_path / "run", _lines(6))
    (run / ".hydra" / "config.yaml").write_text(config)
    proc = gan_here("diagnose", f"run={run}", "samples=0", "min_points=3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]  # today: a YAML error, or AttributeError on a list
    warned = _warnings(proc)
    assert len(warned) == 1 and ".hydra/config.yaml" in warned[0], warned


def test_diagnose_of_a_sweep_with_broken_hydra_records(tmp_path):
    sweep = tmp_path / "sweep"
    _run(sweep / "0", _lines(6), overrides="key: [unclosed\n")
    _run(sweep / "1", _lines(6) + ['{"st'], overrides="- loss=minimax\n")
    proc = gan_here("diagnose", f"run={sweep}", "samples=0", "min_points=3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]  # today: a YAML parser error
    assert "2 runs, the worst first:" in proc.stdout and "loss=minimax" in proc.stdout
