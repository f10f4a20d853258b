"""Teacher-forced scoring of (source, target) pairs under any ``AutoModelForSeq2SeqLM``; pure torch.

The target is tokenized as labels (``tokenizer(text_target=...)``); the decoder input is the labels
shifted right behind the model's own ``decoder_start_token_id`` (read with
:func:`t5score.engine.modeling.special_tokens`, so T5 with start=pad=0 and BART with start=eos=2 both work).
Per-token statistics come from :func:`t5score.engine.stats.token_stats`, i.e. the same numbers decoding reports.

Which tokens are scored:

* **EOS** -- the target always ends with the model's EOS (the tokenizer appends it for T5 and BART; it is
  appended when a tokenizer does not). ``include_eos=True`` (default) scores it, as the model's own loss does;
  ``include_eos=False`` drops exactly that term from every statistic and from ``num_tokens``.
* **BOS** -- BART-style tokenizers prepend ``<s>`` to the labels. By default the decoder input keeps it
  (that is the format the model was trained on); ``include_bos=True`` (default) also scores the ``<s>``
  term, as the model's loss and BARTScore do, ``include_bos=False`` leaves that near-certain term out of
  the score. ``strip_bos=True`` removes ``<s>`` from the target altogether, so the decoder starts from
  ``decoder_start_token_id`` alone, as lm-evaluation-harness does for seq2seq models (its continuations
  are tokenized with ``add_special_tokens=False``; ``max_target_length`` still counts the ``<s>``).
  Tokenizers without a BOS (T5) are unaffected.
* **Prefix** -- ``unscored_prefix``: a text every target begins with (a decoder-side prompt). Its tokens
  are fed to the decoder but left out of every statistic (see
  :func:`t5score.engine.forced_inputs.prefix_lengths`); a leading ``<s>`` is still scored or not by
  ``include_bos``.

Speed: sources are taken in windows (by length) of at most ``max_tokens_per_batch`` padded source tokens
(:func:`~t5score.engine.forced_inputs.plan_windows`); each distinct source of a window is encoded once, in
runs of similar length each padded to its own longest (:func:`~t5score.engine.forced_inputs.cut_batches`).
The window's pairs are sorted by target length and cut into batches of at most ``max_tokens_per_batch``
padded tokens (``pairs * (source width + target width)``) wherever the padding a cut saves outweighs one
more decoder forward (:data:`~t5score.engine.forced_inputs.BATCH_OVERHEAD` positions). The decoder is the
engine :func:`t5score.engine.engines.forced_decoder` picks. For T5/mT5 (``engine="auto"`` or ``"t5"``) the
fast decoder of :mod:`t5score.engine.t5.forced` projects each distinct source's cross-attention keys/values
once and runs the output layer on real target positions only. Otherwise (``"hf"``, BART, ...) the model's
own forward runs (:mod:`t5score.engine.hf`): for the classes :mod:`t5score.engine.hf_reuse` admits (BART,
mBART, Marian, Pegasus, M2M100/NLLB, Blenderbot, LED, ..., T5 relatives) each source's keys/values are
projected once and handed to it, and for the BART family its output layer (``lm_head`` plus
``final_logits_bias``) runs on the real positions only (elsewhere inside the forward, on every position);
classes not admitted get encoder states index-expanded to the pairs. ``reuse_encoder=False`` is the
per-pair baseline (BARTScore's way): the same engine and batches, but each pair's source re-encoded (and
its keys/values re-projected); both give the same numbers. The output layer takes :data:`HEAD_ROWS`
positions per call (fewer for a large vocabulary), :func:`token_stats` :data:`STATS_FLOATS` logits.
Identical (source, target) pairs are scored once. BARTScore's directions build on this in
:mod:`t5score.scoring.directions`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from t5score.engine.engines import forced_decoder
from t5score.engine.forced_inputs import (
    PairWork,
    ScoredPositions,
    check_pairs,
    cut_batches,
    equal_runs,
    plan_windows,
    plan_work,
    prefix_lengths,
    prepended_bos,
)
from t5score.engine.modeling import SpecialTokens, special_tokens
from t5score.engine.stats import token_stats
from t5score.engine.tokens import pad_right

SCORE_FIELDS = ("sum_logprob", "mean_logprob", "penalised_logprob")
# Output layer: HEAD_ROWS positions per call (fewer where that exceeds HEAD_FLOATS logits), so that one pass
# over its matrix (154 MB for BART) serves many; token_stats: STATS_FLOATS logits per call (8 MiB slices stay
# in cache). In flight: <= 8M logits (32 MiB, float32) + token_stats' two temporaries of <= 2M (8 MiB) each.
HEAD_ROWS, HEAD_FLOATS, STATS_FLOATS = 128, 1 << 23, 1 << 21
# per-position values kept for each item, in this order (the label ids first)
ITEM_COLUMNS = ("token_logprobs", "entropies", "top1_probs", "topk_ids", "topk_logprobs", "nonfinite")


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


@contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
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
    strip_bos: bool = False,
    unscored_prefix: str | None = None,
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
    keeps the top-k ids and log-probabilities at each position. See the module docstring for EOS/BOS,
    ``unscored_prefix``, ``reuse_encoder`` and ``engine`` (``"auto"``, ``"hf"`` or ``"t5"``, as in decoding).
    ``encoder_states`` = ``(hidden [len(sources), S, D], mask [len(sources), S])``, right-padded: the
    sources' encoder output when the caller already has it (decoding shares it with reference scoring);
    the sources are then neither tokenized nor encoded here (``source_truncated`` is the caller's to set).
    """
    sources, targets = list(sources), list(targets)
    lengths = {"max_source_length": max_source_length, "max_target_length": max_target_length}
    pair_source_index = check_pairs(sources, targets, pair_source_index, max_tokens_per_batch, top_k, lengths)
    if not targets:
        return []
    ids = special_tokens(model)
    bos = prepended_bos(tokenizer) if not include_bos or strip_bos or unscored_prefix else None
    work = plan_work(
        tokenizer,
        sources,
        targets,
        pair_source_index,
        eos=ids.eos_token_id,
        max_source_length=max_source_length,
        max_target_length=max_target_length,
        encoder_states=encoder_states,
        reuse_encoder=reuse_encoder,
        strip_bos=bos if strip_bos else None,
    )
    skip = [0] * len(work.tgt_ids)  # per item: prefix tokens left unscored
    if unscored_prefix:
        skip = prefix_lengths(tokenizer, unscored_prefix, work.tgt_ids, bos=bos, eos=ids.eos_token_id)
    with _eval_mode(model):
        decoder = forced_decoder(model, engine)  # chosen in eval mode: the fast path never runs dropout
        scorer = _Scorer(model, decoder, work, ids, top_k)
        tgt_lens = [len(x) for x in work.tgt_ids]
        for window, batches in plan_windows(work.src_lens, work.item_src, tgt_lens, max_tokens_per_batch):
            shared = scorer.window_context(window, encoder_states) if reuse_encoder else None
            for batch in batches:
                for part in equal_runs(batch, tgt_lens) if scorer.equal_lengths else [batch]:
                    scorer.score_batch(part, window, shared)
    kept = ScoredPositions(bos, include_bos, include_eos, skip)
    return _pair_scores(work, scorer.results, pair_source_index, kept, alpha)


class _Scorer:
    """The batch loop of :func:`score_pairs`: contexts per window (or per pair), decoder, statistics."""

    def __init__(self, model: torch.nn.Module, decoder, work: PairWork, ids: SpecialTokens, top_k: int):
        self.decoder, self.encoder = decoder, model.get_encoder()
        self.work, self.ids, self.top_k = work, ids, top_k
        self.equal_lengths = getattr(decoder, "equal_lengths", False)  # never pad its targets (ProphetNet)
        self.device = next(model.parameters()).device
        self.results: list[list | None] = [None] * len(work.item_src)  # per item: ITEM_COLUMNS lists

    def encode(self, sources: list[int], runs: bool = False):
        """The decoder context of ``sources`` (distinct ones, or one per pair), encoded here; with ``runs``
        (sources sorted longest first, as a window's are) in runs of similar length (:func:`cut_batches`),
        each padded only to its own longest source, their states zero-padded to the longest of all."""
        enc_ids, enc_mask = pad_right(
            [self.work.src_ids[s] for s in sources], self.ids.pad_token_id, self.device
        )
        if not runs:
            hidden = self.encoder(input_ids=enc_ids, attention_mask=enc_mask).last_hidden_state  # [B, S, D]
            return self.decoder.context(hidden, enc_mask)
        lens = [max(1, self.work.src_lens[s]) for s in sources]  # (an empty source: one padded position)
        hidden = None
        for a, b in cut_batches(lens, 0, len(lens) * lens[0]):
            part = self.encoder(input_ids=enc_ids[a:b, : lens[a]], attention_mask=enc_mask[a:b, : lens[a]])
            states = part.last_hidden_state  # [b - a, <= lens[a], D]
            if hidden is None:
                hidden = states.new_zeros(len(lens), enc_ids.shape[1], states.shape[-1])
            hidden[a:b, : states.shape[1]] = states
        return self.decoder.context(hidden, enc_mask)

    def window_context(self, window: list[int], encoder_states: tuple | None):
        """The context of each distinct source of ``window``, built once: from the caller's encoder states
        (their rows ``work.src_rows``) or encoded here."""
        if encoder_states is None:
            return self.encode(window, runs=True)
        rows = torch.tensor([self.work.src_rows[s] for s in window])
        width = max(self.work.src_lens[s] for s in window)
        hidden, enc_mask = (x.index_select(0, rows.to(x.device))[:, :width] for x in encoder_states)
        return self.decoder.context(hidden, enc_mask)

    def score_batch(self, batch: list[int], window: list[int], shared) -> None:
        """Score the items ``batch``; ``shared`` is the window's context (None: each pair's source encoded)."""
        work, ids = self.work, self.ids
        targets = [work.tgt_ids[w] for w in batch]
        labels, label_mask = pad_right(targets, ids.pad_token_id, self.device)  # [N, T]
        start = torch.full_like(labels[:, :1], ids.decoder_start_token_id)
        decoder_input_ids = torch.cat([start, labels[:, :-1]], dim=1)  # labels shifted right, [N, T]
        if shared is not None:
            local = {s: i for i, s in enumerate(window)}
            index = torch.tensor([local[work.item_src[w]] for w in batch], device=self.device)
            ctx = self.decoder.select(shared, index, max(work.src_lens[work.item_src[w]] for w in batch))
        else:  # per-pair baseline: the source encoded (and its context built) for every pair
            ctx = self.encode([work.item_src[w] for w in batch])
        rows = self.decoder.positions(ctx, decoder_input_ids)  # [N * T, ...]
        self.collect(rows, labels, label_mask, batch)

    def collect(
        self, rows: torch.Tensor, labels: torch.Tensor, label_mask: torch.Tensor, batch: list[int]
    ) -> None:
        """Statistics of the real (label-mask) positions of ``rows`` (``[N * T, ...]``): through the output
        layer :data:`HEAD_ROWS` at a time (at most :data:`HEAD_FLOATS` logits), each chunk through
        :func:`token_stats` in parts of at most :data:`STATS_FLOATS` logits; stored per item as CPU lists."""
        real = label_mask.flatten().nonzero().squeeze(1)  # row-major: pair by pair
        labels, lens = labels.flatten().index_select(0, real), label_mask.sum(1).tolist()
        vocab = self.decoder.vocab_size
        step = max(1, STATS_FLOATS // vocab)  # rows per token_stats call
        head = max(step, min(HEAD_ROWS, HEAD_FLOATS // vocab))  # rows per output-layer call
        chunks = []
        for a in range(0, real.shape[0], head):
            logits, tokens = self.decoder.head(rows.index_select(0, real[a : a + head])), labels[a : a + head]
            for b in range(0, logits.shape[0], step):
                chunks.append(
                    token_stats(logits[b : b + step], tokens=tokens[b : b + step], top_k=self.top_k)
                )
        cols = [labels.tolist()] + [
            torch.cat([getattr(st, name) for st in chunks]).tolist() for name in ITEM_COLUMNS
        ]
        start = 0
        for w, n in zip(batch, lens, strict=True):
            self.results[w] = [col[start : start + n] for col in cols]
            start += n


def _pair_scores(
    work: PairWork, results: list, pair_source_index: list[int], kept: ScoredPositions, alpha: float
) -> list[PairScore]:
    """One :class:`PairScore` per pair, from its item's statistics, cut to the scored positions."""
    scores = []
    for p, w in enumerate(work.pair_item):
        s, tgt = work.item_src[w], work.tgt_ids[w]
        cut = (bool(work.src_cut and work.src_cut[s]), work.tgt_cut[w])
        scores.append(_finish(results[w], p, int(pair_source_index[p]), kept.positions(w, tgt), alpha, *cut))
    return scores


def _finish(raw, pair_index, source_index, keep, alpha, src_cut, tgt_cut) -> PairScore:
    pick = (lambda col: col[keep]) if isinstance(keep, slice) else (lambda col: [col[i] for i in keep])
    token_ids, logps, ents, top1, topk_ids, topk_lp, nonfinite = (pick(col) for col in raw)
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
