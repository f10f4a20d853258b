"""What a run is made of, recorded when it starts and checked when it is resumed.

A resumed run must give the rows an uninterrupted run would have given, so everything that changes the
numbers is part of the check: the options (``model.*``, ``data.*``), the Trainer's precision and
accelerator kind, the model's files, the versions of t5score, torch and transformers, and the input rows
themselves. ``run_config.json`` holds the first start's values; ``input_rows.bin`` one 8-byte digest per
input row (its id, text and target as t5score read them), so a changed, added, removed or moved row is
named on resume instead of silently keeping a stale result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

from t5score.data.io import InputError

CONFIG_NAME = "run_config.json"
DIGESTS_NAME = "input_rows.bin"
DIGEST_SIZE = 8
VERSIONED = ("t5score", "torch", "transformers")
SAMPLE_BLOCKS, BLOCK = 16, 1 << 16  # a model file's fingerprint reads at most 16 blocks of 64 KiB


def row_digests(rows: list) -> bytes:
    """One :data:`DIGEST_SIZE`-byte digest per row (dataclass rows: every field, in order)."""
    out = bytearray()
    for row in rows:
        text = json.dumps(dataclasses.astuple(row), default=str, ensure_ascii=False)
        out += hashlib.blake2b(text.encode(), digest_size=DIGEST_SIZE).digest()
    return bytes(out)


def file_fingerprint(path: Path) -> str:
    """Size and a hash of up to :data:`SAMPLE_BLOCKS` evenly spaced blocks: cheap on multi-GB weights,
    and any re-training or re-quantisation changes it (every block of the weights changes)."""
    size = path.stat().st_size
    digest = hashlib.blake2b(str(size).encode(), digest_size=16)
    with path.open("rb") as f:
        if size <= SAMPLE_BLOCKS * BLOCK:
            digest.update(f.read())
        else:
            for i in range(SAMPLE_BLOCKS):
                f.seek((size - BLOCK) * i // (SAMPLE_BLOCKS - 1))
                digest.update(f.read(BLOCK))
    return f"{size}:{digest.hexdigest()}"


def model_fingerprint(name_or_path: str | None, model: Any = None) -> dict[str, str]:
    """``{file: fingerprint}`` of a local model folder (weights, configs, tokenizer); for a hub id, the
    commit transformers resolved (``config._commit_hash``)."""
    from t5score.engine.modeling import resolve_model_path

    folder = Path(resolve_model_path(name_or_path))
    if folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        return {p.name: file_fingerprint(p) for p in files}
    commit = getattr(getattr(model, "config", None), "_commit_hash", None)
    return {"hub_commit": str(commit)} if commit else {}


def versions_in_force() -> dict[str, str]:
    out = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def run_state(options: dict[str, Any], trainer: Any, module: Any, rows: list) -> dict[str, Any]:
    """The values a resume must find unchanged (``options`` is the CLI's model/data/output_dir)."""
    return {
        **options,
        "trainer": {
            "precision": str(trainer.precision),
            "accelerator": type(trainer.accelerator).__name__,
        },
        "model_files": model_fingerprint(
            getattr(module, "name_or_path", None), getattr(module, "model", None)
        ),
        "versions": versions_in_force(),
        "input": {"rows": len(rows), "digest": hashlib.sha256(row_digests(rows)).hexdigest()},
    }


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


NAMES = {"model_files": "the model's files", "versions": "version", "input": "the input"}


def changed_keys(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ (``model.temperature``, ``trainer.precision``...); a key the first
    start did not record (an older t5score) is not compared. The input is checked on its own."""
    old = _flat({k: v for k, v in before.items() if k != "input"})
    new = _flat({k: v for k, v in now.items() if k != "input"})
    return [key for key in new if key in old and old[key] != new[key]] + [
        f"{key} (gone)" for key in old if key not in new and not key.startswith("model_files.")
    ]


def describe_change(key: str, before: dict[str, Any], now: dict[str, Any]) -> str:
    """``trainer.precision: '32-true' -> 'bf16-mixed'`` (model files: which file changed)."""
    old, new = _flat(before).get(key), _flat(now).get(key)
    if key.startswith("model_files."):
        return f"model file {key.split('.', 1)[1]} changed"
    if key.startswith("versions."):
        return f"{key.split('.', 1)[1]} version {old} -> {new}"
    return f"{key}: {old!r} -> {new!r}"


def input_change(saved: bytes, digests: bytes, rows: list) -> str | None:
    """How the input rows differ from the first start's, in words; None when they are the same."""
    if saved == digests:
        return None
    n_old, n_new = len(saved) // DIGEST_SIZE, len(digests) // DIGEST_SIZE
    if n_old != n_new:
        return f"the input now has {n_new} rows, the run began with {n_old}"
    differ = [
        i
        for i in range(n_new)
        if saved[i * DIGEST_SIZE : (i + 1) * DIGEST_SIZE] != digests[i * DIGEST_SIZE : (i + 1) * DIGEST_SIZE]
    ]
    first = rows[differ[0]]
    more = f" and {len(differ) - 1} more" if len(differ) > 1 else ""
    return (
        f"input row {differ[0] + 1} (id {getattr(first, 'id', getattr(first, 'group', '?'))!r}){more} changed"
    )


def check_resume(folder: Path, state: dict[str, Any], rows: list) -> None:
    """Raise :class:`InputError` when ``state`` or the input rows differ from the first start's."""
    before = json.loads((folder / CONFIG_NAME).read_text())
    keys = changed_keys(before, state)
    if keys:
        details = "; ".join(describe_change(k.removesuffix(" (gone)"), before, state) for k in keys[:4])
        raise InputError(
            f"{folder}: cannot resume, changed since the run began: {details}; "
            "resume with the first run's settings, or start again with --overwrite"
        )
    digests_path = folder / DIGESTS_NAME
    if digests_path.exists():
        change = input_change(digests_path.read_bytes(), row_digests(rows), rows)
    elif "input" in before and before["input"] != state["input"]:
        change = "the input rows differ"
    else:
        change = None
    if change:
        raise InputError(f"{folder}: cannot resume, {change}; start again with --overwrite")


def save_state(folder: Path, state: dict[str, Any], rows: list) -> None:
    """Record ``state`` and the row digests at a run's first start."""
    (folder / DIGESTS_NAME).write_bytes(row_digests(rows))
    (folder / CONFIG_NAME).write_text(json.dumps(state, indent=2, default=str))
