"""The scalars a run logged, as aligned arrays: from metrics.jsonl, or else from TensorBoard events."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from gan_cli.errors import UserError


@dataclass
class Series:
    """One row per log interval: steps[i] and values[name][i] (NaN where a name was not logged)."""

    steps: list[int]
    values: dict[str, list[float]]

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
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if n == len(path.read_text().splitlines()):
                break  # a run killed mid-write leaves half a last line: judge what came before
            raise UserError(f"{path} line {n} is not JSON: the metrics file is corrupt") from None
    names = sorted({k for r in rows for k in r if k != "step"})
    return Series([int(r["step"]) for r in rows], {k: [float(r.get(k, math.nan)) for r in rows] for k in names})


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
