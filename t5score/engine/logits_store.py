"""Raw per-step logits on disk (capture ``full``), and :func:`load_logits` to read one row back.

Each batch streams into ``<run>/logits/batch-NNNNNN.npy``, a ``[rows, max_new_tokens, vocab]`` array
written one decoder step at a time through a memory map (the file is sparse: steps a row never
reached take no disk). ``<run>/logits/index.parquet`` maps each example id to its file, row and length.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

DTYPES = {"float16": np.float16, "float32": np.float32}


class BatchLogitsWriter:
    """A ``logits_sink`` for :func:`t5score.engine.decode.greedy_decode` that writes one batch's logits to disk."""

    def __init__(
        self, folder: Path, batch_index: int, rows: int, max_steps: int, vocab: int, dtype: str, part: int = 0
    ):
        if dtype not in DTYPES:
            raise ValueError(f"logits_dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        folder.mkdir(parents=True, exist_ok=True)
        self.name = (
            f"batch-{batch_index:06d}" + (f"-{part:03d}" if part else "") + ".npy"
        )  # part: of the batch
        self.path = folder / self.name
        self.array = np.lib.format.open_memmap(
            self.path, mode="w+", dtype=DTYPES[dtype], shape=(rows, max_steps, vocab)
        )

    def __call__(self, step: int, rows: torch.Tensor, logits: torch.Tensor) -> None:
        self.array[rows.cpu().numpy(), step] = logits.float().cpu().numpy()

    def close(
        self,
        ids: list[str],
        num_tokens: list[int],
        batch_rows: list[int],
        candidates: list[int] | None = None,
    ) -> None:
        """Flush, and write this batch's index entries (``id -> file, row, num_tokens``; with beam search
        also ``candidate_index``, several entries per id)."""
        self.array.flush()
        del self.array
        entries = [
            {"id": i, "file": self.name, "row": r, "num_tokens": n}
            for i, r, n in zip(ids, batch_rows, num_tokens, strict=True)
        ]
        if candidates is not None:
            for entry, candidate in zip(entries, candidates, strict=True):
                entry["candidate_index"] = candidate
        self.path.with_suffix(".index.json").write_text(json.dumps(entries))


def merge_index(folder: Path) -> Path | None:
    """Combine the per-batch index files into ``index.parquet`` (duplicate entries from DDP padding dropped:
    the first of each id, or of each (id, candidate_index) with beam search, wins)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = sorted(folder.glob("batch-*.index.json"))
    if not parts:
        return None
    entries, seen = [], set()
    for entry in (e for p in parts for e in json.loads(p.read_text())):
        key = (entry["id"], entry.get("candidate_index"))
        if key not in seen:
            seen.add(key)
            entries.append(entry)
    out = folder / "index.parquet"
    tmp = out.with_name(".index.parquet.tmp")  # atomic: a run killed here resumes to a whole index
    pq.write_table(pa.Table.from_pylist(entries), tmp)
    tmp.replace(out)
    return out


def load_logits(run_dir: str | Path, example_id: str | int, candidate_index: int = 0) -> torch.Tensor:
    """The raw logits of one example of a ``capture=full`` run, as a ``[num_tokens, vocab]`` float tensor.

    ``example_id`` is the row's ``id`` in ``predictions.parquet`` (the row number when no id column was given);
    ``candidate_index`` picks a beam-search candidate (0 = the best beam; ignored for other runs).
    """
    import pyarrow.parquet as pq

    folder = Path(run_dir) / "logits"
    index_path = folder / "index.parquet"
    if not index_path.exists():
        raise FileNotFoundError(f"{index_path}: no logits index; was the run made with --model.capture full?")
    index = pq.read_table(index_path).to_pydict()
    keys = list(zip(index["id"], index.get("candidate_index", [None] * len(index["id"])), strict=True))
    wanted = (str(example_id), candidate_index if "candidate_index" in index else None)
    try:
        at = keys.index(wanted)
    except ValueError:
        raise KeyError(
            f"example id {example_id!r} (candidate {candidate_index}) not in {index_path}"
        ) from None
    array = np.load(folder / index["file"][at], mmap_mode="r")
    return torch.from_numpy(np.array(array[int(index["row"][at]), : int(index["num_tokens"][at])]))
