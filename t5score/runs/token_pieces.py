"""``token_pieces.json``: the text of every token id a run's table holds, for the reports.

The Parquet table holds token ids; the report and ``t5score compare`` show tokens as text without loading
a tokenizer, from this file: ``{"eos_token_ids": [...], "pieces": {"<id>": "<text>"}}`` for the ids of
``token_ids``, ``topk_ids`` and ``ref_token_ids``. A token's text is what it adds to the decoded string
(SentencePiece's ``▁`` and byte-level BPE's ``Ġ`` are a leading space); special tokens keep their name
(``</s>``). :class:`ParquetTokens` reads back the per-token lists of a few rows (the report's examples)
without loading the whole table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

TOKEN_PIECES = "token_pieces.json"
ID_COLUMNS = ("token_ids", "topk_ids", "ref_token_ids")
LIST_COLUMNS = (
    "token_ids",
    "token_logprobs",
    "token_entropies",
    "topk_ids",
    "topk_logprobs",
    "token_processed_logprobs",
    "ref_token_ids",
    "ref_token_logprobs",
)


def ids_in(table: pa.Table) -> set[int]:
    """Every token id in the table's id columns (nested lists flattened)."""
    ids: set[int] = set()
    for name in ID_COLUMNS:
        if name not in table.column_names:
            continue
        column = table[name]
        while pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            column = pc.list_flatten(column)
        ids.update(int(i) for i in pc.unique(column).to_pylist() if i is not None)
    return ids


def piece_text(tokenizer: Any, token_id: int, special: set[int]) -> str:
    """What token ``token_id`` adds to the text: its decoded string, a leading space kept."""
    piece = tokenizer.convert_ids_to_tokens(int(token_id))
    if piece is None:
        return f"<{token_id}>"
    if token_id in special:
        return str(piece)
    text = tokenizer.convert_tokens_to_string([piece])
    if piece[:1] in ("▁", "Ġ") and not text.startswith(" "):
        text = " " + text.lstrip()
    return text


def write_token_pieces(
    output_dir: Path, tokenizer: Any, ids: Iterable[int], eos_token_ids: Sequence[int]
) -> Path:
    """Write ``token_pieces.json`` for ``ids`` (atomically: a killed run leaves no half file)."""
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    size = len(tokenizer)
    pieces = {str(i): piece_text(tokenizer, i, special) for i in sorted(ids) if 0 <= i < size}
    path = Path(output_dir) / TOKEN_PIECES
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(
        json.dumps({"eos_token_ids": sorted(set(eos_token_ids)), "pieces": pieces}, ensure_ascii=False)
    )
    tmp.replace(path)
    return path


class ParquetTokens:
    """The report's :class:`~t5score.reports.examples.TokenSource`: a run's table and its token pieces."""

    def __init__(self, table: Path, pieces: Path | None = None) -> None:
        self.table = Path(table)
        path = Path(pieces) if pieces is not None else self.table.parent / TOKEN_PIECES
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        self.pieces = {int(k): v for k, v in data.get("pieces", {}).items()}
        self.eos_token_ids = list(data.get("eos_token_ids", []))

    def rows(self, indices: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The list columns of these rows (0-based, file order), reading only the row groups they are in."""
        file = pq.ParquetFile(self.table)
        columns = [c for c in LIST_COLUMNS if c in file.schema_arrow.names]
        if not columns:
            return {}
        wanted = sorted(set(int(i) for i in indices))
        out: dict[int, dict[str, Any]] = {}
        start = 0
        for group in range(file.num_row_groups):
            size = file.metadata.row_group(group).num_rows
            inside = [i for i in wanted if start <= i < start + size]
            if inside:
                table = file.read_row_group(group, columns=columns)
                part = table.take(pa.array([i - start for i in inside])).to_pylist()
                out.update(zip(inside, part, strict=True))
            start += size
        return out
