"""What differs between the configurations of compared runs: their ``run.json`` side by side.

``run.json`` is flattened to dotted keys (``config.model.max_new_tokens``; a list is one value) and only
the keys whose values differ between runs are shown, a key one run lacks counting as different (shown as
``(absent)``). Left out: what differs between any two runs, the timing (``wall_time_s``,
``tokens_per_s``) and the folder each was written to (``config.output_dir``); the ``command`` is kept.
Values are compared as JSON text, so ``1``, ``1.0`` and ``true`` differ.
"""

from __future__ import annotations

import json
from typing import Any

from t5score.reports.blocks import Block, Cell, Heading, Num, Para, Table

IGNORED = ("wall_time_s", "tokens_per_s", "config.output_dir")
ABSENT = "(absent)"


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys -> leaves of a nested dict (a list is a leaf)."""
    if not isinstance(d, dict) or (prefix and not d):
        return {prefix[:-1]: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}."))
    return out


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def differences(infos: list[dict[str, Any]]) -> list[str]:
    """The dotted keys whose values are not the same in every one of ``infos`` (``IGNORED`` aside)."""
    flats = [flatten(i) for i in infos]
    keys = dict.fromkeys(k for f in flats for k in f if k not in IGNORED)
    texts = [{k: _text(v) for k, v in f.items()} for f in flats]
    return [k for k in keys if len({t.get(k, ABSENT) for t in texts}) > 1]


def _cell(flat: dict[str, Any], key: str, i: int) -> Cell:
    if key not in flat:
        return ABSENT
    value = flat[key]
    if isinstance(value, (bool, int, float)):
        return Num(value, f"runs:{i}:run:{key}")
    if value is None:
        return "null"
    return value if isinstance(value, str) else _text(value)


def config_blocks(runs: list[Any]) -> list[Block]:
    """The section: the table of differing keys (key | baseline | run2 ...), or why there is none."""
    blocks: list[Block] = [Heading("Configuration differences (run.json)", anchor="config")]
    have = [(i, r) for i, r in enumerate(runs) if r.run_info is not None]
    lacking = [r for r in runs if r.run_info is None]
    if lacking:
        said = ", ".join(f"`{r.label}` ({r.path})" for r in lacking)
        blocks.append(Para([f"No run.json in {said}: its configuration is not known."]))
    if len(have) < 2:
        blocks.append(Para(["Fewer than two runs have a run.json: no configurations to compare."]))
        return blocks
    keys = differences([r.run_info for _, r in have])
    ignored = ", ".join(f"`{k}`" for k in IGNORED)
    if not keys:
        blocks.append(Para([f"The runs' run.json are identical ({ignored} aside)."]))
        return blocks
    blocks.append(Para([f"The keys of run.json whose values differ between the runs ({ignored} aside)."]))
    labels = [f"{r.label} (baseline)" if i == 0 else r.label for i, r in have]
    flats = [(i, flatten(r.run_info)) for i, r in have]
    rows = [[key, *[_cell(flat, key, i) for i, flat in flats]] for key in keys]
    return [*blocks, Table(["key", *labels], rows, wide=tuple(labels))]
