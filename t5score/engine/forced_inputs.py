"""What :func:`t5score.engine.forced.score_pairs` does to its inputs before scoring: check, tokenize, measure."""

from __future__ import annotations

import torch


def tokenize(tokenizer, texts: list[str], *, target: bool, max_length: int | None, eos: int):
    """Token ids per text, ending with EOS for targets; truncated to ``max_length`` keeping a final EOS."""
    if not texts:
        return [], []
    enc = tokenizer(text_target=texts) if target else tokenizer(texts)
    ids_out, truncated = [], []
    for ids in enc["input_ids"]:
        ids = list(ids)
        if target and (not ids or ids[-1] != eos):
            ids.append(eos)
        cut = max_length is not None and len(ids) > max_length
        if cut:
            ids = ids[: max_length - 1] + [eos] if ids[-1] == eos else ids[:max_length]
        ids_out.append(ids)
        truncated.append(cut)
    return ids_out, truncated


def prepended_bos(tokenizer) -> int | None:
    """The BOS id when the tokenizer puts it in front of every target (BART's ``<s>``), else None."""
    bos = getattr(tokenizer, "bos_token_id", None)
    probe = tokenizer(text_target=[""])["input_ids"][0]
    return bos if bos is not None and list(probe[:1]) == [bos] else None


def check_texts(texts: list[str], what: str) -> None:
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"{what}[{i}] is {type(text).__name__}, expected a string")


def given_lengths(states: tuple, n_sources: int, rows: list[int], reuse_encoder: bool) -> list[int]:
    """Source lengths of the distinct sources (``rows``) from a caller's ``(hidden, mask)``; checked."""
    hidden, mask = states
    if not reuse_encoder:
        raise ValueError("encoder_states are reused by definition: use them with reuse_encoder=True")
    if hidden.dim() != 3 or mask.shape != hidden.shape[:2] or hidden.shape[0] != n_sources:
        raise ValueError(
            f"encoder_states must be ([{n_sources}, S, D], [{n_sources}, S]), "
            f"got {tuple(hidden.shape)} and {tuple(mask.shape)}"
        )
    lengths = mask.long().sum(1)
    if not torch.equal(
        mask.long(), (torch.arange(mask.shape[1], device=mask.device) < lengths[:, None]).long()
    ):
        raise ValueError("encoder_states need a right-padded attention mask")
    return [int(lengths[r]) for r in rows]
