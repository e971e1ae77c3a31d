"""A run's logged metrics per epoch, from whichever logger wrote them: CSV, TensorBoard or W&B.

`read_metrics(run_dir)` returns metric -> {epoch: last value logged in that epoch}, from the first
source that has any: `*/metrics*.csv` (logger=csv, the default; resumed runs of older tpbench
versions wrote `metrics.<n>.csv`), TensorBoard event files (logger=tensorboard), or the `.wandb`
file of an offline or online W&B run (logger=wandb; read from disk, no login needed). Values
logged without an epoch (the diagnostics' per-step values) are not part of the curves. A run
with none of these (logger=none, or killed before its first log) has no metrics: `{}`.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

Curves = dict[str, dict[int, float]]
SKIPPED = ("epoch", "step", "trainer/global_step")
WANDB_BLOCK, WANDB_HEADER, RECORD_HEADER = 32768, 7, 7  # W&B's log: LevelDB's record format


def read_metrics(run_dir: Path) -> Curves:
    for reader in (_csv_rows, _tensorboard_rows, _wandb_rows):
        curves = _curves(reader(run_dir))
        if curves:
            return curves
    return {}


def _curves(rows: Iterable[dict[str, float]]) -> Curves:
    """Rows of {metric: value, "epoch": e} as metric -> {epoch: last value}."""
    curves: Curves = defaultdict(dict)
    for row in rows:
        epoch = row.get("epoch")
        if epoch is None or not math.isfinite(epoch):
            continue
        for key, value in row.items():
            if key not in SKIPPED and not key.startswith("_"):  # W&B's _step, _runtime
                curves[key][int(epoch)] = value
    return dict(curves)


def _csv_rows(run_dir: Path) -> Iterator[dict[str, float]]:
    files = sorted(run_dir.glob("*/metrics*.csv"), key=lambda p: (p.name == "metrics.csv", p.name))
    for path in files:
        with path.open(newline="") as file:
            for row in csv.DictReader(file):
                yield {k: float(v) for k, v in row.items() if k and v not in ("", None)}


def _tensorboard_rows(run_dir: Path) -> Iterator[dict[str, float]]:
    """One row per (event file, step): TensorBoard stores scalars by step, and Lightning logs
    the epoch as a scalar at the same step."""
    files = sorted(run_dir.glob("**/events.out.tfevents.*"))
    if not files:
        return
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for path in files:
        events = EventAccumulator(str(path), size_guidance={"scalars": 0})
        events.Reload()
        by_step: dict[int, dict[str, float]] = defaultdict(dict)
        for tag in events.Tags().get("scalars", []):
            for event in events.Scalars(tag):
                by_step[event.step][tag] = event.value
        yield from (by_step[step] for step in sorted(by_step))


def _wandb_rows(run_dir: Path) -> Iterator[dict[str, float]]:
    """The history rows of every W&B run file under the run (wandb/*-run-*/run-*.wandb)."""
    from wandb.proto import wandb_internal_pb2

    for path in sorted(run_dir.glob("wandb/*run-*/run-*.wandb")):
        for data in _wandb_records(path.read_bytes()):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(data)
            if record.WhichOneof("record_type") != "history":
                continue
            row = {}
            for item in record.history.item:
                value = json.loads(item.value_json)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    row[item.key or "/".join(item.nested_key)] = float(value)
            yield row


def _wandb_records(data: bytes) -> Iterator[bytes]:
    """Records of a .wandb file: after a 7-byte header (`:W&B`, magic, version), 32 KiB blocks
    of records, each [crc32: 4][length: 2][type: 1][data], type 1 whole, 2/3/4 first/middle/last
    piece; a block's tail shorter than a record header is padding."""
    if data[:4] != b":W&B":
        return
    position, pieces = WANDB_HEADER, b""
    while position + RECORD_HEADER <= len(data):
        left = WANDB_BLOCK - position % WANDB_BLOCK
        if left < RECORD_HEADER:
            position += left
            continue
        length = int.from_bytes(data[position + 4 : position + 6], "little")
        kind = data[position + 6]
        chunk = data[position + RECORD_HEADER : position + RECORD_HEADER + length]
        position += RECORD_HEADER + length
        if kind == 1:
            yield chunk
        elif kind in (2, 3):
            pieces = (pieces if kind == 3 else b"") + chunk
        elif kind == 4:
            yield pieces + chunk
