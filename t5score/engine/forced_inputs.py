"""What :func:`t5score.engine.forced.score_pairs` does to its inputs before scoring: check them, find the
distinct sources and (source, target) pairs, tokenize or measure them, and plan the batches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from t5score.engine.tokens import tokenize


def check_texts(texts: list[str], what: str) -> None:
    """A ValueError naming the first entry of ``texts`` that is not a string."""
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"{what}[{i}] is {type(text).__name__}, expected a string")


def check_pairs(
    sources: list[str],
    targets: list[str],
    pair_source_index: list[int] | None,
    max_tokens_per_batch: int,
    top_k: int,
    lengths: dict[str, int | None],
) -> list[int]:
    """Check the arguments of ``score_pairs`` (``lengths``: the ``max_*_length`` options by name); returns
    the source index of each target (``range(len(targets))`` when ``pair_source_index`` is None)."""
    check_texts(sources, "sources")
    check_texts(targets, "targets")
    if pair_source_index is None:
        if len(sources) != len(targets):
            raise ValueError(f"{len(sources)} sources but {len(targets)} targets; give pair_source_index")
        pair_source_index = list(range(len(targets)))
    if len(pair_source_index) != len(targets):
        raise ValueError(f"pair_source_index has {len(pair_source_index)} entries for {len(targets)} targets")
    for i, s in enumerate(pair_source_index):
        if not 0 <= int(s) < len(sources):
            raise ValueError(f"pair_source_index[{i}] = {s} is out of range for {len(sources)} sources")
    if max_tokens_per_batch < 1 or top_k < 0:
        raise ValueError("max_tokens_per_batch must be >= 1 and top_k >= 0")
    for name, value in lengths.items():
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1 or None, got {value}")
    return list(pair_source_index)


def prepended_bos(tokenizer) -> int | None:
    """The BOS id when the tokenizer puts it in front of every target (BART's ``<s>``), else None."""
    bos = getattr(tokenizer, "bos_token_id", None)
    probe = tokenizer(text_target=[""])["input_ids"][0]
    return bos if bos is not None and list(probe[:1]) == [bos] else None


def prefix_lengths(
    tokenizer, prefix: str, tgt_ids: list[list[int]], *, bos: int | None, eos: int
) -> list[int]:
    """How many tokens of each target (after a leading ``bos``) belong to ``prefix``, a text every target
    begins with: the length of the common start of the target's tokens and the prefix's own (tokenized as
    a target, without BOS and EOS), never the final EOS. A token that spans the prefix's end is not
    counted, so only tokens wholly inside the prefix are."""
    (own,), _ = tokenize(tokenizer, [prefix], target=True, eos=eos)
    own = own[1 if bos is not None and own[:1] == [bos] else 0 :]
    own = own[:-1] if own[-1:] == [eos] else own
    lengths = []
    for ids in tgt_ids:
        start = 1 if bos is not None and ids[:1] == [bos] else 0
        body, n = ids[start:-1], 0  # the final EOS is never part of the prefix
        while n < min(len(own), len(body)) and body[n] == own[n]:
            n += 1
        lengths.append(n)
    return lengths


@dataclass
class ScoredPositions:
    """Which positions of each item's target ``score_pairs`` scores: all but a leading ``bos`` (unless
    ``include_bos``), the item's ``prefix[w]`` tokens after it and the final EOS (unless ``include_eos``)."""

    bos: int | None
    include_bos: bool
    include_eos: bool
    prefix: list[int]

    def positions(self, w: int, tgt: list[int]) -> slice | list[int]:
        """The scored positions of item ``w`` (token ids ``tgt``): a slice, or a list when they are not
        contiguous (``<s>`` scored, a prefix after it not)."""
        has_bos = self.bos is not None and tgt[:1] == [self.bos]
        start = int(has_bos) + self.prefix[w]
        stop = len(tgt) - (0 if self.include_eos else 1)
        if has_bos and self.include_bos and start > 1:  # <s> scored, the prefix after it not
            return [0, *range(start, stop)]
        return slice(0 if has_bos and self.include_bos else start, stop)


@dataclass
class PairWork:
    """The distinct work of a ``score_pairs`` call: sources by text, (source, target) items, their tokens.

    Pairs are the caller's targets; items the distinct (source text, target) pairs, each scored once.
    """

    pair_item: list[int]  # per pair: its item
    item_src: list[int]  # per item: its distinct source
    src_lens: list[int]  # per distinct source: its length in tokens
    src_ids: list[list[int]] | None  # per distinct source: token ids (None: the caller's encoder states)
    src_cut: list[bool] | None  # per distinct source: truncated (None: the caller's to say)
    src_rows: list[int] | None  # per distinct source, with encoder states: its row in them
    tgt_ids: list[list[int]]  # per item: target token ids, ending with EOS
    tgt_cut: list[bool]  # per item: target truncated


def plan_work(
    tokenizer,
    sources: list[str],
    targets: list[str],
    pair_source_index: list[int],
    *,
    eos: int,
    max_source_length: int | None,
    max_target_length: int | None,
    encoder_states: tuple[torch.Tensor, torch.Tensor] | None,
    reuse_encoder: bool,
    strip_bos: int | None = None,
) -> PairWork:
    """Distinct sources (by text) and items, tokenized (sources measured from ``encoder_states`` if given);
    ``strip_bos``: a BOS id removed from the front of every target (after truncation)."""
    uniq_src: dict[str, int] = {}
    pair_src = [uniq_src.setdefault(sources[int(s)], len(uniq_src)) for s in pair_source_index]
    src_texts = list(uniq_src)
    uniq_item: dict[tuple[int, str], int] = {}
    pair_item = [uniq_item.setdefault((s, t), len(uniq_item)) for s, t in zip(pair_src, targets, strict=True)]
    src_ids = src_cut = src_rows = None
    if encoder_states is None:
        src_ids, src_cut = tokenize(tokenizer, src_texts, max_length=max_source_length, eos=eos)
        src_lens = [len(x) for x in src_ids]
    else:
        first: dict[str, int] = {}
        for i, text in enumerate(sources):
            first.setdefault(text, i)
        src_rows = [first[text] for text in src_texts]  # the first row of each distinct source
        src_lens = given_lengths(encoder_states, len(sources), src_rows, reuse_encoder)
    targets_of_items = [t for _, t in uniq_item]
    tgt_ids, tgt_cut = tokenize(
        tokenizer, targets_of_items, target=True, max_length=max_target_length, eos=eos
    )
    if strip_bos is not None:
        tgt_ids = [ids[1:] if ids[:1] == [strip_bos] else ids for ids in tgt_ids]
    item_src = [s for s, _ in uniq_item]
    return PairWork(pair_item, item_src, src_lens, src_ids, src_cut, src_rows, tgt_ids, tgt_cut)


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


#: what one more decoder forward costs, in padded target positions: the forward's fixed cost (its weights
#: streamed once, the framework's per-call work) over one position's. Measured on 2 CPU threads: ~80 for a
#: BART-base-shaped model through its own forward, ~40 for t5-small through the fast T5 decoder.
BATCH_OVERHEAD = 64


def plan_windows(src_lens: list[int], item_src: list[int], tgt_lens: list[int], budget: int) -> list[tuple]:
    """Windows of sources (by length, desc) holding at most ``budget`` padded source tokens; each window's
    items sorted by target length (desc) and cut into batches by :func:`cut_batches` (each within ``budget``
    padded tokens, counted as ``pairs * (window source width + target width)``). Returns ``(sources,
    batches)`` per window."""
    items: dict[int, list[int]] = {}
    for w, s in enumerate(item_src):
        items.setdefault(s, []).append(w)
    order = sorted(items, key=lambda s: (-src_lens[s], s))
    windows, start = [], 0
    while start < len(order):
        width = src_lens[order[start]]
        stop = start + max(1, budget // max(1, width))
        window = order[start:stop]
        work = sorted((w for s in window for w in items[s]), key=lambda w: (-tgt_lens[w], w))
        runs = cut_batches([tgt_lens[w] for w in work], width, budget)
        windows.append((window, [work[a:b] for a, b in runs]))
        start = stop
    return windows


def cut_batches(
    lens: list[int], width: int, budget: int, overhead: int | None = None
) -> list[tuple[int, int]]:
    """Batches of targets with lengths ``lens`` (sorted descending) as ``(start, stop)`` runs covering them in
    order: the cut that minimises the padded target positions (``pairs * longest`` per batch) plus
    ``overhead`` (default :data:`BATCH_OVERHEAD`) per batch, each batch within ``budget`` (``pairs * (width +
    longest) <= budget``; one pair always fits). Dynamic programming over where the runs end (an optimal
    batching of sorted lengths is contiguous); on ties the larger first batch. A batch of ``n`` pairs is
    padded by at most ``overhead * (1 + 1/2 + ... + 1/(n - 1))`` positions: otherwise some split would save
    more than a batch costs."""
    overhead = BATCH_OVERHEAD if overhead is None else overhead
    n = len(lens)
    best = np.zeros(n + 1, dtype=np.int64)  # best[i]: the cost of batching lens[i:]
    end = np.full(n + 1, n, dtype=np.int64)  # end[i]: where the first batch of lens[i:] stops
    sizes = np.arange(1, n + 1, dtype=np.int64)
    for i in range(n - 1, -1, -1):
        fit = min(n - i, max(1, budget // max(1, width + lens[i])))  # most pairs a batch led by lens[i] holds
        cost = best[i + 1 : i + fit + 1] + sizes[:fit] * lens[i]
        k = fit - 1 - int(cost[::-1].argmin())  # the last minimum: the largest batch among the cheapest
        best[i], end[i] = cost[k] + overhead, i + k + 1
    runs, i = [], 0
    while i < n:
        runs.append((i, int(end[i])))
        i = int(end[i])
    return runs


def equal_runs(batch: list[int], tgt_lens: list[int]) -> list[list[int]]:
    """``batch`` (sorted by target length) cut into its runs of equal target length, for a decoder whose
    output at a position depends on the padded length (``equal_lengths``)."""
    runs: list[list[int]] = []
    for w in batch:
        if runs and tgt_lens[runs[-1][0]] == tgt_lens[w]:
            runs[-1].append(w)
        else:
            runs.append([w])
    return runs
