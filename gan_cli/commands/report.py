"""`gan report run=MULTIRUN_DIR`: a sweep at a glance. One row per run: the overrides that set it apart,
its final losses, the metrics it was evaluated by, and gan diagnose's verdict; sorted by a chosen
column, printed, and written as report.csv and report.html (with each run's last sample grid)."""

from __future__ import annotations

import csv
import html
import json
import math
from pathlib import Path

from omegaconf import DictConfig

from gan_cli.commands import format_number, run_overrides
from gan_cli.errors import UserError
from gan_cli.metrics.evaluator import lower_is_better

FINAL = ("loss/d", "loss/g", "acc/real", "acc/fake")


def run(cfg: DictConfig, run_dir: Path) -> dict:
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
    if key not in columns:
        raise UserError(f"sort_by={key} is not a column of this sweep; choose from {', '.join(columns)}")
    metric = key.removeprefix("best/").removeprefix("final/")
    sign = 1 if lower_is_better(metric) or key in ("loss/g", "loss/d") else -1
    rows.sort(key=lambda r: (not _finite(r["values"].get(key)), sign * (r["values"].get(key) or 0.0)))
    print(_table(rows, columns, key, sign))
    _csv(sweep / "report.csv", rows, columns)
    _html(sweep / "report.html", sweep, rows, columns, key)
    print(f"written: {sweep / 'report.csv'}, {sweep / 'report.html'}")
    return {"runs": [{"run": str(r["path"]), **r["values"]} for r in rows], "sort_by": key}


def _job_order(path: Path):
    return (0, int(path.name)) if path.name.isdigit() else (1, path.name)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _row(path: Path, judge: bool) -> dict:
    values: dict[str, float] = {}
    result = path / "result.json"
    if result.is_file():
        r = json.loads(result.read_text())
        values.update({k: v for k, v in r.get("final", {}).items() if k in FINAL})
        if r.get("best"):
            values[f"best/{r['best']['metric']}"] = r["best"]["value"]
    else:  # a run that did not finish: its last logged row
        lines = (path / "metrics.jsonl").read_text().splitlines()
        last = json.loads(lines[-1]) if lines else {}
        values.update({k: v for k, v in last.items() if k in FINAL})
    evaluated = path / "checkpoints" / "metrics.json"
    if evaluated.is_file():  # gan eval of the run's last checkpoint
        m = json.loads(evaluated.read_text()).get("last.pt", {}).get("metrics", {})
        values.update({k: v for k, v in m.items() if not k.endswith("_std")})
    verdict = _verdict(path) if judge else ""
    grids = sorted((path / "samples").glob("step_*.png"))
    return {"path": path, "overrides": run_overrides(path), "values": values, "verdict": verdict,
            "grid": grids[-1] if grids else None}


def _verdict(path: Path) -> str:
    from hydra import compose

    from gan_cli.commands.diagnose import diagnose

    try:
        report = diagnose(compose("diagnose", overrides=["samples=0"]), path, draw=False)
    except UserError as e:
        return f"not judged: {str(e).split(';')[0].split(': ')[-1]}"
    return report["verdict"].replace("_", " ")


def _table(rows: list[dict], columns: list[str], key: str, sign: int) -> str:
    width = {c: max(len(c), 8) for c in columns}
    head = "  ".join(["run".ljust(4)] + [c.rjust(width[c]) for c in columns] + ["verdict".ljust(20), "overrides"])
    lines = [f"{len(rows)} runs, sorted by {key} ({'lower' if sign == 1 else 'higher'} first):", head]
    for r in rows:
        cells = [format_number(r["values"].get(c)).rjust(width[c]) for c in columns]
        lines.append("  ".join([r["path"].name.ljust(4)] + cells + [r["verdict"][:20].ljust(20), r["differs"]]))
    return "\n".join(lines)


def _csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    with path.open("w", newline="") as f:
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
    path.write_text(
        "<!doctype html><meta charset='utf-8'><title>gan report</title>"
        "<style>body{font-family:sans-serif}td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}"
        "td:nth-child(2){text-align:left}</style>"
        f"<h1>{html.escape(str(sweep))}</h1><p>{len(rows)} runs, sorted by {html.escape(key)}</p><table><tr>"
        + "".join(f"<th>{html.escape(h)}</th>" for h in ["run", "overrides", *columns, "verdict", "last samples"])
        + "</tr>" + "".join(body) + "</table>\n")
