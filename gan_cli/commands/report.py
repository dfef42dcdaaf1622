"""`gan report run=MULTIRUN_DIR`: a sweep at a glance. One row per run: the overrides that set it apart,
its final losses, the metrics it was evaluated by, and gan diagnose's verdict; sorted by a chosen
column, printed, and written as report.csv and report.html (with each run's last sample grid).

A run that a crash or a hand edit left damaged gets its row too, never a traceback: a killed run (no
result.json, half a last line in metrics.jsonl) shows its last whole logged row; a file that is not what
train or eval writes (result.json that is not JSON, not an object, or with fields of the wrong type; a
damaged checkpoints/metrics.json or .hydra/overrides.yaml) makes the verdict "broken: <file> <why>"."""

from __future__ import annotations

import csv
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from omegaconf import DictConfig

from gan_cli import files
from gan_cli.commands import Column, format_number, run_overrides, runs_table, sorted_by, sorted_runs, typed
from gan_cli.diagnose import series
from gan_cli.errors import UserError
from gan_cli.metrics.evaluator import lower_is_better

FINAL = ("loss/d", "loss/g", "acc/real", "acc/fake")
FIX = "free disk space, or make the sweep's directory writable"  # report.csv and report.html go into it


@dataclass
class ReportKeys:
    """The types of conf/report.yaml's keys."""

    run: Optional[str]
    sort_by: Optional[str]
    diagnose: bool


def run(cfg: DictConfig, run_dir: Path) -> dict:
    cfg = typed(cfg, ReportKeys)
    if cfg.run is None:
        raise UserError("run= is required: a sweep's directory, e.g. gan report run=outputs/multirun/<date>/<time>")
    sweep = Path(cfg.run).expanduser()
    runs = sorted((p.parent for p in sweep.glob("*/metrics.jsonl")), key=_job_order) if sweep.is_dir() else []
    if not runs:
        raise UserError(f"run={cfg.run} holds no training runs (no */metrics.jsonl); give a sweep's directory "
                        f"from gan train -m (outputs/multirun/<date>/<time>)")
    rows = [_row(path, cfg.diagnose) for path in runs]
    shared = set.intersection(*(set(r["overrides"].split()) for r in rows)) if len(rows) > 1 else set()
    for r in rows:  # the table shows what sets each run apart; report.csv keeps every override
        r["differs"] = " ".join(o for o in r["overrides"].split() if o not in shared)
    columns = list(dict.fromkeys(k for r in rows for k in r["values"]))
    key = cfg.sort_by or next((c for c in columns if c.startswith("best/")), "loss/g")
    if cfg.sort_by and key not in columns:  # by default, a sweep of only broken runs keeps the job order
        raise UserError(f"sort_by={key} is not a column of this sweep; choose from {', '.join(columns)}")
    metric = key.removeprefix("best/").removeprefix("final/")
    lower_first = lower_is_better(metric) or key in ("loss/g", "loss/d")
    rows = sorted_runs(rows, lambda r: r["values"].get(key), lower_first)
    print(_table(rows, columns, sorted_by(key, lower_first)))
    _csv(sweep / "report.csv", rows, columns)
    _html(sweep / "report.html", sweep, rows, columns, key)
    print(f"written: {sweep / 'report.csv'}, {sweep / 'report.html'}")
    return {"runs": [{"run": str(r["path"]), **r["values"]} for r in rows], "sort_by": key}


def _job_order(path: Path):
    return (0, int(path.name)) if path.name.isdigit() else (1, path.name)


def _row(path: Path, judge: bool) -> dict:
    """One run's row. A file of the run that is damaged (what a crash or a hand edit leaves) does not stop
    the report: the row shows what could be read, and its verdict says "broken: " and which file, why."""
    values: dict[str, float] = {}
    broken: list[str] = []
    result = _json_object(path / "result.json", "result.json", broken)
    if result is not None:
        final = _field(result, "final", dict, broken) or {}
        values.update(_numbers({k: v for k, v in final.items() if k in FINAL}, "result.json's final/", broken))
        best = _field(result, "best", dict, broken)
        if best is not None:
            metric, value = _field(best, "metric", str, broken, "result.json's best "), best.get("value")
            if metric is not None and value is not None:
                values.update(_numbers({f"best/{metric}": value}, "result.json's best value ", broken, short=True))
    else:  # a run that did not finish (or whose result.json is unusable): its last logged row
        rows, _, problem = series.read_rows(path / "metrics.jsonl")
        if rows:
            values.update({k: v for k, v in rows[-1].items() if k in FINAL})
        elif problem:
            broken.append(f"metrics.jsonl holds no usable row ({problem})")
    evaluated = _json_object(path / "checkpoints" / "metrics.json", "checkpoints/metrics.json", broken)
    if evaluated is not None:  # gan eval of the run's last checkpoint
        last = _field(evaluated, "last.pt", dict, broken, "checkpoints/metrics.json's ") or {}
        m = _field(last, "metrics", dict, broken, "checkpoints/metrics.json's last.pt ") or {}
        values.update(_numbers({k: v for k, v in m.items() if not k.endswith("_std")},
                               "checkpoints/metrics.json's ", broken))
    try:
        overrides = run_overrides(path)
    except Exception as e:  # noqa: BLE001 - YAML, OmegaConf and type errors alike: the record is unreadable
        overrides = ""
        broken.append(f".hydra/overrides.yaml is not a list of overrides ({type(e).__name__})")
    if broken:
        verdict = "broken: " + "; ".join(broken)
    else:
        verdict = _verdict(path) if judge else ""
    grids = sorted((path / "samples").glob("step_*.png"))
    return {"path": path, "overrides": overrides, "values": values, "verdict": verdict,
            "grid": grids[-1] if grids else None}


def _json_object(file: Path, name: str, broken: list[str]) -> dict | None:
    """A JSON object read from `file`; None when there is none (absent, or broken: noted in `broken`)."""
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text())
    except OSError as e:
        broken.append(f"{name} cannot be read ({e.strerror})")
        return None
    except ValueError:  # JSONDecodeError, and UnicodeDecodeError for bytes that are not text
        broken.append(f"{name} is not JSON")
        return None
    if not isinstance(data, dict):
        broken.append(f"{name} is not a JSON object")
        return None
    return data


def _field(parent: dict, key: str, kind: type, broken: list[str], where: str = "result.json's "):
    """parent[key] when it is a `kind`; None when it is absent or null, or of another type (noted)."""
    value = parent.get(key)
    if value is None or isinstance(value, kind):
        return value
    wanted = "an object" if kind is dict else f"a {kind.__name__}"
    broken.append(f"{where}{key} is a {type(value).__name__}, not {wanted}")
    return None


def _numbers(values: dict, where: str, broken: list[str], short: bool = False) -> dict:
    """The entries that are numbers; each other one is noted in `broken`."""
    good = {}
    for k, v in values.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            good[k] = v
        else:
            broken.append(f"{where}{'' if short else k + ' '}is a {type(v).__name__}, not a number")
    return good


def _verdict(path: Path) -> str:
    from hydra import compose

    from gan_cli.commands.diagnose import diagnose

    try:
        report = diagnose(compose("diagnose", overrides=["samples=0"]), path, draw=False)
    except UserError as e:
        return f"not judged: {str(e).split(';')[0].split(': ')[-1]}"
    return report["verdict"].replace("_", " ")


def _table(rows: list[dict], columns: list[str], order: str) -> str:
    # verdicts are cut to 20 characters; a broken run's is shown whole (up to 80): which file, and why
    v = max([20] + [min(len(r["verdict"]), 80) for r in rows if r["verdict"].startswith("broken: ")])
    return runs_table(order, [Column("run", 4), *[Column(c, max(len(c), 8), ">") for c in columns],
                              Column("verdict", v), Column("overrides")],
                      [[r["path"].name, *[r["values"].get(c) for c in columns],
                        r["verdict"][:v if r["verdict"].startswith("broken: ") else 20], r["differs"]] for r in rows])


def _csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    with files.atomic_write(path, FIX) as tmp, tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "overrides", *columns, "verdict"])
        for r in rows:
            w.writerow([r["path"].name, r["overrides"], *[r["values"].get(c, "") for c in columns], r["verdict"]])


def _html(path: Path, sweep: Path, rows: list[dict], columns: list[str], key: str) -> None:
    cell = lambda v: f"<td>{html.escape(format_number(v))}</td>"  # noqa: E731
    body = []
    for r in rows:
        img = (f'<img src="{html.escape(str(r["grid"].relative_to(sweep)))}" width="160">' if r["grid"] else "")
        body.append(f"<tr><td>{html.escape(r['path'].name)}</td><td><code>{html.escape(r['overrides'])}</code></td>"
                    + "".join(cell(r["values"].get(c)) for c in columns)
                    + f"<td>{html.escape(r['verdict'])}</td><td>{img}</td></tr>")
    page = ("<!doctype html><meta charset='utf-8'><title>gan report</title>"
            "<style>body{font-family:sans-serif}td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}"
            "td:nth-child(2){text-align:left}</style>"
            f"<h1>{html.escape(str(sweep))}</h1><p>{len(rows)} runs, sorted by {html.escape(key)}</p><table><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in ["run", "overrides", *columns, "verdict", "last samples"])
            + "</tr>" + "".join(body) + "</table>\n")
    files.write_text(path, page, FIX)
