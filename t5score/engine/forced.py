"""Teacher-forced scoring of (source, target) pairs under any ``AutoModelForSeq2SeqLM``; pure torch.

The target is tokenized as labels (``tokenizer(text_target=...)``); the decoder input is the labels
shifted right behind the model's own ``decoder_start_token_id`` (read with
:func:`t5score.engine.modeling.special_tokens`, so T5 with start=pad=0 and BART with start=eos=2 both work).
Per-token statistics come from :func:`t5score.engine.stats.token_stats`, i.e. the same numbers decoding reports.

Which tokens are scored:

* **EOS** -- the target always ends with the model's EOS (the tokenizer appends it for T5 and BART; it is
  appended when a tokenizer does not). ``include_eos=True`` (default) scores it, as the model's own loss does;
  ``include_eos=False`` drops exactly that term from every statistic and from ``num_tokens``.
* **BOS** -- BART-style tokenizers prepend ``<s>`` to the labels. The decoder input keeps it whatever the
  options (that is the format the model was trained on); ``include_bos=True`` (default) also scores the
  ``<s>`` term, as the model's loss and BARTScore do, ``include_bos=False`` leaves that near-certain term
  out of the score. Tokenizers without a BOS (T5) are unaffected.

Speed: sources are taken in windows (by length) of at most ``max_tokens_per_batch`` padded source tokens;
each distinct source of a window is encoded once. The window's pairs are sorted by target length and
packed into batches of at most ``max_tokens_per_batch`` padded tokens, counted as
``pairs * (source width + target width)``, so targets are padded little. The decoder forward is an
engine of :mod:`t5score.engine.forced_decoders`: for T5-family models (``engine="auto"`` or ``"t5"``) a fast
teacher-forced decoder that projects the cross-attention keys/values once per distinct source and runs
the output layer on real target positions only; otherwise (``"hf"``, BART, ...) the model's own forward
on index-expanded encoder states. ``reuse_encoder=False`` is the per-pair baseline (BARTScore's way):
the same engine and batches, but each pair's source is re-encoded (and its keys/values re-projected);
both give the same numbers. Logits are reduced in chunks of ``_STATS_FLOATS`` floats. Identical
(source, target) pairs are scored once. BARTScore's directions build on this in :mod:`t5score.scoring.directions`.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from t5score.engine.forced_decoders import forced_decoder
from t5score.engine.forced_inputs import check_texts, given_lengths, prepended_bos, tokenize
from t5score.engine.modeling import special_tokens
from t5score.engine.stats import token_stats

SCORE_FIELDS = ("sum_logprob", "mean_logprob", "penalised_logprob")
_STATS_FLOATS = 1 << 22  # logits per output-layer + token_stats call (16 MB in float32: cache-sized chunks)


@dataclass
class PairScore:
    """Teacher-forced scores of one target given one source. Lists hold the scored positions only."""

    pair_index: int
    source_index: int
    token_ids: list[int] = field(default_factory=list)
    token_logprobs: list[float] = field(default_factory=list)  # natural log
    token_entropies: list[float] = field(default_factory=list)  # nats
    top1_probs: list[float] = field(default_factory=list)
    topk_ids: list[list[int]] = field(default_factory=list)  # empty unless top_k > 0
    topk_logprobs: list[list[float]] = field(default_factory=list)
    num_tokens: int = 0
    sum_logprob: float = 0.0
    mean_logprob: float | None = None  # sum / num_tokens; None when nothing is scored
    penalised_logprob: float | None = None  # sum / num_tokens ** alpha
    nonfinite: bool = False  # some scored position had NaN/inf logits
    source_truncated: bool = False
    target_truncated: bool = False

    def score(self, name: str) -> float | None:
        """One of :data:`SCORE_FIELDS` by name."""
        if name not in SCORE_FIELDS:
            raise ValueError(f"score must be one of {SCORE_FIELDS}, got {name!r}")
        return getattr(self, name)


def _plan(src_lens: list[int], item_src: list[int], tgt_lens: list[int], budget: int) -> list[tuple]:
    """Windows of sources (by length, desc) holding at most ``budget`` padded source tokens; each window's
    items sorted by target length (desc) and packed into batches of at most ``budget`` padded tokens,
    counted as ``pairs * (window source width + target width)``. Returns ``(sources, batches)`` per window."""
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
        batches, cur = [], []
        for w in work:
            if cur and (len(cur) + 1) * (width + tgt_lens[cur[0]]) > budget:
                batches.append(cur)
                cur = []
            cur.append(w)
        windows.append((window, batches + [cur]))
        start = stop
    return windows


def _pad(rows: list[list[int]], pad: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids.to(device), mask.to(device)


@contextmanager
def _eval_mode(model: torch.nn.Module):
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@torch.inference_mode()
def score_pairs(
    model: torch.nn.Module,
    tokenizer,
    sources: list[str],
    targets: list[str],
    *,
    pair_source_index: list[int] | None = None,
    include_eos: bool = True,
    include_bos: bool = True,
    alpha: float = 1.0,
    max_source_length: int | None = None,
    max_target_length: int | None = None,
    max_tokens_per_batch: int = 8192,
    reuse_encoder: bool = True,
    top_k: int = 0,
    engine: str = "auto",
    encoder_states: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> list[PairScore]:
    """Score ``targets[i]`` given its source under ``model``; one :class:`PairScore` per target, in order.

    ``pair_source_index[i]`` names the source of target ``i`` (many targets may share one source, which
    is then encoded once); ``None`` pairs ``sources[i]`` with ``targets[i]``. Sequence scores: the sum of
    the scored log-probabilities, their mean, and ``sum / num_tokens ** alpha``. ``top_k > 0`` also
    keeps the top-k ids and log-probabilities at each position. See the module docstring for EOS/BOS
    and for ``reuse_encoder`` and ``engine`` (``"auto"``, ``"hf"`` or ``"t5"``, as in decoding).
    ``encoder_states`` = ``(hidden [len(sources), S, D], mask [len(sources), S])``, right-padded: the
    sources' encoder output when the caller already has it (decoding shares it with reference scoring);
    the sources are then neither tokenized nor encoded here (``source_truncated`` is the caller's to set).
    """
    sources, targets = list(sources), list(targets)
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
    for name, value in (("max_source_length", max_source_length), ("max_target_length", max_target_length)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1 or None, got {value}")
    if not targets:
        return []

    ids = special_tokens(model)
    bos = None if include_bos else prepended_bos(tokenizer)
    device = next(model.parameters()).device

    # distinct sources (by text) and distinct (source, target) work items
    uniq_src: dict[str, int] = {}
    pair_src = [uniq_src.setdefault(sources[int(s)], len(uniq_src)) for s in pair_source_index]
    src_texts = list(uniq_src)
    uniq_item: dict[tuple[int, str], int] = {}
    pair_item = [uniq_item.setdefault((s, t), len(uniq_item)) for s, t in zip(pair_src, targets, strict=True)]
    item_src = [s for s, _ in uniq_item]  # source of each work item
    if encoder_states is None:
        src_ids, src_cut = tokenize(
            tokenizer, src_texts, target=False, max_length=max_source_length, eos=ids.eos_token_id
        )
        src_lens = [len(x) for x in src_ids]
    else:
        first: dict[str, int] = {}
        for i, text in enumerate(sources):
            first.setdefault(text, i)
        src_rows = [first[text] for text in src_texts]  # the first row of each distinct source
        src_lens, src_cut = given_lengths(encoder_states, len(sources), src_rows, reuse_encoder), None
    tgt_ids, tgt_cut = tokenize(
        tokenizer, [t for _, t in uniq_item], target=True, max_length=max_target_length, eos=ids.eos_token_id
    )

    results: list[list | None] = [None] * len(item_src)
    with _eval_mode(model):
        decoder = forced_decoder(model, engine)  # chosen in eval mode: the fast path never runs dropout
        encoder = model.get_encoder()
        for window, batches in _plan(src_lens, item_src, [len(x) for x in tgt_ids], max_tokens_per_batch):
            if reuse_encoder and encoder_states is not None:  # the caller's encoder output
                rows, width = torch.tensor([src_rows[s] for s in window]), max(src_lens[s] for s in window)
                hidden, enc_mask = (x.index_select(0, rows.to(x.device))[:, :width] for x in encoder_states)
            elif reuse_encoder:  # each distinct source of the window encoded (and its context built) once
                enc_ids, enc_mask = _pad([src_ids[s] for s in window], ids.pad_token_id, device)
                hidden = encoder(input_ids=enc_ids, attention_mask=enc_mask).last_hidden_state
            if reuse_encoder:
                shared = decoder.context(hidden, enc_mask)
                local = {s: i for i, s in enumerate(window)}
            for batch in batches:
                labels, label_mask = _pad([tgt_ids[w] for w in batch], ids.pad_token_id, device)
                decoder_input_ids = torch.cat(
                    [torch.full_like(labels[:, :1], ids.decoder_start_token_id), labels[:, :-1]], dim=1
                )
                if reuse_encoder:
                    index = torch.tensor([local[item_src[w]] for w in batch], device=device)
                    ctx = decoder.select(shared, index, max(src_lens[item_src[w]] for w in batch))
                else:  # per-pair baseline: the source encoded (and its context built) for every pair
                    enc_ids, enc_mask = _pad([src_ids[item_src[w]] for w in batch], ids.pad_token_id, device)
                    hidden = encoder(input_ids=enc_ids, attention_mask=enc_mask).last_hidden_state
                    ctx = decoder.context(hidden, enc_mask)
                rows = decoder.positions(ctx, decoder_input_ids)
                _collect(decoder, rows, labels, label_mask, batch, results, top_k)

    scores = []
    for p, w in enumerate(pair_item):
        s = item_src[w]
        lo = 1 if bos is not None and tgt_ids[w][0] == bos else 0
        hi = len(tgt_ids[w]) - (0 if include_eos else 1)
        scores.append(
            _finish(
                results[w],
                p,
                int(pair_source_index[p]),
                lo,
                hi,
                alpha,
                bool(src_cut and src_cut[s]),
                tgt_cut[w],
            )
        )
    return scores


def _collect(decoder, rows, labels, label_mask, batch, results, top_k) -> None:
    """Statistics of the real (label-mask) positions of ``rows`` (``[N * T, ...]``): gathered in chunks of
    about :data:`_STATS_FLOATS` logits, through the output layer and :func:`token_stats`; stored per work
    item as CPU lists."""
    real = label_mask.flatten().nonzero().squeeze(1)  # row-major: pair by pair
    labels, lens = labels.flatten().index_select(0, real), label_mask.sum(1).tolist()
    step = max(1, _STATS_FLOATS // decoder.vocab_size)
    chunks = [
        token_stats(
            decoder.head(rows.index_select(0, real[a : a + step])), tokens=labels[a : a + step], top_k=top_k
        )
        for a in range(0, real.shape[0], step)
    ]
    cols = [labels.tolist()] + [
        torch.cat([getattr(st, name) for st in chunks]).tolist()
        for name in ("token_logprobs", "entropies", "top1_probs", "topk_ids", "topk_logprobs", "nonfinite")
    ]
    start = 0
    for w, n in zip(batch, lens, strict=True):
        results[w] = [col[start : start + n] for col in cols]
        start += n


def _finish(raw, pair_index, source_index, lo, hi, alpha, src_cut, tgt_cut) -> PairScore:
    token_ids, logps, ents, top1, topk_ids, topk_lp, nonfinite = (col[lo:hi] for col in raw)
    n = len(logps)
    total = float(torch.tensor(logps, dtype=torch.float64).sum()) if n else 0.0
    return PairScore(
        pair_index=pair_index,
        source_index=source_index,
        token_ids=token_ids,
        token_logprobs=logps,
        token_entropies=ents,
        top1_probs=top1,
        topk_ids=topk_ids,
        topk_logprobs=topk_lp,
        num_tokens=n,
        sum_logprob=total,
        mean_logprob=total / n if n else None,
        penalised_logprob=total / n**alpha if n else None,
        nonfinite=any(nonfinite),
        source_truncated=src_cut,
        target_truncated=tgt_cut,
    )
