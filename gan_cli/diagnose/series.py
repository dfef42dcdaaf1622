"""The scalars a run logged, as aligned arrays: from metrics.jsonl, or else from TensorBoard events.

metrics.jsonl is read as a crash or a hand edit may leave it: a row that is not a JSON object with a
numeric step and numeric values (half a last line from a killed run, a stray list or number, a value
that is a string) is skipped, and one warning per file counts the skipped rows. Skipping a whole row,
rather than reading its bad value as NaN, matters: NaN is what a diverged run logs."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from gan_cli.errors import UserError

log = logging.getLogger(__name__)
_warned: set[tuple[str, int, int]] = set()  # (file, size, mtime) already warned about in this process


@dataclass
class Series:
    """One row per log interval: steps[i] and values[name][i] (NaN where a name was not logged)."""

    steps: list[int]
    values: dict[str, list[float]]
    skipped: int = 0  # rows of metrics.jsonl left out as unusable
    problem: str = ""  # what was wrong with the first of them, e.g. "line 7 is not JSON"

    def __len__(self) -> int:
        return len(self.steps)

    def get(self, name: str) -> list[float]:
        return self.values.get(name, [math.nan] * len(self.steps))


def read(run_dir: Path) -> Series:
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        return _from_jsonl(metrics)
    events = sorted(run_dir.glob("events.out.tfevents.*"))
    if events:
        return _from_events(run_dir)
    raise UserError(f"run={run_dir} is not a training run (no metrics.jsonl or TensorBoard events); "
                    f"point it at outputs/train/<date>/<time>")


def _from_jsonl(path: Path) -> Series:
    rows, skipped, problem = read_rows(path)
    if skipped and not rows:
        raise UserError(f"{path} holds no usable row ({skipped} skipped; the first: {problem}): the metrics "
                        f"file is corrupt")
    names = sorted({k for r in rows for k in r if k != "step"})
    return Series([int(r["step"]) for r in rows], {k: [float(r.get(k, math.nan)) for r in rows] for k in names},
                  skipped, problem)


def read_rows(path: Path) -> tuple[list[dict], int, str]:
    """metrics.jsonl's usable rows, how many were skipped, and what was wrong with the first skipped
    (as the module says). Warns when it goes on with the rest (none left: the caller says so, in one
    line), once per file and state, so that readers sharing a file (report, then diagnose) warn once."""
    rows, skipped, problem = [], 0, ""
    # errors="replace": bytes that are not UTF-8 (a damaged disk block) spoil their row, not the file
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        row, why = _parse(line)
        if why:
            skipped, problem = skipped + 1, problem or f"line {n} {why}"
        else:
            rows.append(row)
    if skipped and rows:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _warned:
            _warned.add(key)
            log.warning(f"{path}: skipping {skipped} unusable row{'s' if skipped > 1 else ''} of "
                        f"{skipped + len(rows)} (the first: {problem}); reading the rest")
    return rows, skipped, problem


def _parse(line: str) -> tuple[dict, str]:
    """A metrics.jsonl line as a row, or why it cannot be one: the training loop writes one JSON object
    per line, with an integer step and numbers (NaN and infinity included) for the rest."""
    try:
        row = json.loads(line)
    except ValueError:
        return {}, "is not JSON"
    if not isinstance(row, dict):
        return {}, f"is a JSON {type(row).__name__}, not an object"
    step = row.get("step")
    if not _number(step) or not math.isfinite(step) or step != int(step):
        return {}, "has no integer step"
    bad = next((k for k, v in row.items() if not _number(v)), None)
    return (row, "") if bad is None else ({}, f"has {bad}={json.dumps(row[bad])[:20]}, not a number")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _from_events(run_dir: Path) -> Series:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    try:
        acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}).Reload()
        tags = acc.Tags()["scalars"]
        by_tag = {t: {e.step: e.value for e in acc.Scalars(t)} for t in tags}
    except Exception as e:  # noqa: BLE001 - any failure to parse means the same to the user
        raise UserError(f"run={run_dir}: the TensorBoard event files are corrupt ({type(e).__name__})") from None
    if not by_tag:  # the reader skips what it cannot parse, so a corrupt file reads as empty
        raise UserError(f"run={run_dir}: the TensorBoard event files are corrupt or hold no scalars")
    steps = sorted({s for values in by_tag.values() for s in values})
    return Series(steps, {t: [by_tag[t].get(s, math.nan) for s in steps] for t in tags})
