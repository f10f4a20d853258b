"""Texts to token ids, one way for decoding and teacher-forced scoring: truncation that keeps EOS, right padding.

:func:`tokenize` gives what the tokenizer's own ``truncation=True`` gives for T5 and BART tokenizers (the
tests compare them), from one untruncated call, so it also knows which texts were truncated.
"""

from __future__ import annotations

import torch


def tokenize(
    tokenizer,
    texts: list[str],
    *,
    target: bool = False,
    max_length: int | None = None,
    eos: int | None = None,
) -> tuple[list[list[int]], list[bool]]:
    """Token ids per text and whether each was truncated.

    Sources are ``tokenizer(texts)``, targets ``tokenizer(text_target=texts)`` ending with ``eos`` (appended
    when the tokenizer does not). Texts longer than ``max_length`` are cut to it; a final ``eos`` stays last
    (and a leading BOS first), as the tokenizer's own truncation keeps its special tokens.
    """
    if not texts:
        return [], []
    call = {"text_target": texts} if target else {"text": texts}
    ids_out, truncated = [], []
    for ids in tokenizer(**call, verbose=False)["input_ids"]:
        ids = list(ids)
        if target and (not ids or ids[-1] != eos):
            ids.append(eos)
        cut = max_length is not None and len(ids) > max_length
        if cut:
            ids = ids[: max_length - 1] + [eos] if eos is not None and ids[-1] == eos else ids[:max_length]
        ids_out.append(ids)
        truncated.append(cut)
    return ids_out, truncated


def pad_right(
    rows: list[list[int]], pad_id: int, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids ``[B, W]`` (``W`` the longest row) right-padded with ``pad_id`` and their mask ``[B, W]`` (1 = real)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids.to(device), mask.to(device)


DEFAULT_SOURCE_LENGTH = 512  # when the tokenizer names no real limit
UNLIMITED = 1_000_000  # transformers' "no limit" is int(1e30): anything above this is not a real limit


def source_length_limit(tokenizer, requested: int | None = None) -> int:
    """Most source tokens kept: ``requested`` when given, else the tokenizer's ``model_max_length`` when
    that is a real limit (the length the model was trained on), else :data:`DEFAULT_SOURCE_LENGTH`."""
    if requested is not None:
        return requested
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if isinstance(limit, int) and 0 < limit < UNLIMITED else DEFAULT_SOURCE_LENGTH
