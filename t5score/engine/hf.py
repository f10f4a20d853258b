"""The generic engine: any ``AutoModelForSeq2SeqLM`` through its own forward (BART, ..., or ``engine="hf"``).

* :class:`HFStepper` -- decoder steps for :func:`t5score.engine.decode.greedy_decode`, with Hugging Face's
  dynamic key/value cache;
* :class:`HFForcedDecoder` -- whole targets for :func:`t5score.engine.forced.score_pairs`.

The forced decoders (this one and :class:`t5score.engine.t5.forced.T5ForcedDecoder`) share one interface,
so the scoring loop does not care which runs:

* ``context(encoder_hidden, mask)`` turns encoder states ``[B, S, D]`` into what the decoder attends to;
* ``select(ctx, index, width)`` gives each pair of a batch its source's context (rows ``index``, the first
  ``width`` source positions): with encoder reuse, a context is built once per distinct source and
  indexed to all of its pairs;
* ``positions(ctx, decoder_input_ids)`` runs the decoder over whole targets ``[N, T]`` at once and returns
  one row per position, ``[N * T, ...]`` (row-major);
* ``head(rows)`` turns rows into logits ``[M, V]``; the caller passes only the real (label-mask) positions,
  in chunks (``vocab_size`` sizes them), so padding never reaches the output layer.

Here the context is the encoder states with, for the classes :mod:`t5score.engine.hf_reuse` admits (BART,
mBART, Marian, Pegasus, M2M100/NLLB, Blenderbot, LED, ... and the T5 relatives), every decoder layer's
cross-attention keys/values, projected once per distinct source by one decoder step of the model's own
forward; ``select`` index-selects them to the pairs and ``positions`` hands them to the model's forward as
the cross half of an ``EncoderDecoderCache`` (``is_updated`` set), so they are not projected per pair. For
the BART family ``positions`` returns the decoder states and ``head`` is the model's own output layer
(``lm_head`` plus ``final_logits_bias``), run on the real positions only; for the others (and every class
not admitted, on the plain forward with encoder states index-expanded to pairs) ``positions`` returns the
forward's logits and ``head`` passes them through. Both give the numbers of the model's own forward.

Two families need more than the plain batched forward to give the numbers of their own forward on each
pair alone: FSMT builds its causal (and target padding) mask only when it is given ``input_ids`` with
``use_cache=False``, so it gets them (the encoder still does not run: its states are passed); ProphetNet's
decoder gives position ``t`` other values when the target is longer (its n-gram streams), so its targets are
batched only with targets of their own length (:attr:`HFForcedDecoder.equal_lengths`), never padded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache, EncoderDecoderCache
from transformers.modeling_outputs import BaseModelOutput

import t5score.engine.hf_reuse as reuse
from t5score.engine.modeling import special_tokens, vocab_size

# model types whose decoder output at a position depends on the target's padded length
LENGTH_DEPENDENT = frozenset({"prophetnet"})
# model types that build their decoder's causal mask only when given input_ids (and use_cache=False)
CAUSAL_FROM_INPUT_IDS = frozenset({"fsmt"})


@dataclass
class EncoderOutput(BaseModelOutput):
    """Encoder states as every seq2seq forward reads them: a :class:`BaseModelOutput` (T5 and others re-wrap
    anything else) whose ``router_logits`` is empty, which the mixture-of-experts forwards
    (SwitchTransformers, NLLB-MoE) read from their encoder's output."""

    router_logits: tuple[torch.Tensor, ...] | None = None


def encoder_output(model: torch.nn.Module, hidden: torch.Tensor) -> EncoderOutput:
    """Encoder states ``hidden`` ``[B, S, D]`` wrapped for ``model(encoder_outputs=...)`` (any family)."""
    return EncoderOutput(last_hidden_state=hidden)


@dataclass
class HFContext:
    """What :class:`HFForcedDecoder`'s decoder attends to: encoder states, mask, cross-attention keys/values."""

    hidden: torch.Tensor  # [B, S, D]
    mask: torch.Tensor  # [B, S]
    cross: DynamicCache | None = (
        None  # each decoder layer's keys/values [B, H, S, d]; None: projected per pair
    )


class HFStepper:
    """Generic decoder steps through the model's own forward and its dynamic key/value cache (any seq2seq)."""

    def __init__(
        self, model: torch.nn.Module, encoder_outputs: BaseModelOutput, attention_mask: torch.Tensor
    ):
        self.model, self.encoder_outputs, self.mask = model, encoder_outputs, attention_mask
        self.cache = EncoderDecoderCache(DynamicCache(), DynamicCache())

    def step(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits ``[A, V]`` for the next position, given the last tokens ``ids`` (``[A]``)."""
        out = self.model(
            encoder_outputs=self.encoder_outputs,
            attention_mask=self.mask,
            decoder_input_ids=ids[:, None],
            cache=self.cache,
            use_cache=True,
        )
        self.cache = out.cache
        return out.logits[:, -1, :]

    def select(self, keep: torch.Tensor) -> None:
        """Keep only the active rows ``keep`` (indices into the current active rows)."""
        self.cache.batch_select_indices(keep)
        self.encoder_outputs.last_hidden_state = self.encoder_outputs.last_hidden_state.index_select(0, keep)
        self.mask = self.mask.index_select(0, keep)


class HFForcedDecoder:
    """The model's own forward, teacher-forced over whole targets; works for any seq2seq model.

    Where :mod:`t5score.engine.hf_reuse` admits the class, each distinct source's cross-attention
    keys/values are computed once (``context``) and index-selected to its pairs (``select``), and the
    output layer runs on the real positions only (``head``); otherwise the encoder states are
    index-expanded to the pairs and ``positions`` returns the forward's logits."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.vocab_size = vocab_size(model)  # sizes the output chunks (FSMT: its target vocabulary; int8 too)
        model_type = getattr(model.config, "model_type", None)
        self.equal_lengths = model_type in LENGTH_DEPENDENT  # batch only targets of one length
        self.causal_from_input_ids = model_type in CAUSAL_FROM_INPUT_IDS
        self.reuse_cross = reuse.reuses_cross(model)
        self.own_head = reuse.output_head(model) if self.reuse_cross else None
        self.start = special_tokens(model).decoder_start_token_id

    def context(self, hidden: torch.Tensor, mask: torch.Tensor) -> HFContext:
        """Encoder states ``[B, S, D]`` and mask ``[B, S]``, with their cross-attention keys/values."""
        if not self.reuse_cross:
            return HFContext(hidden, mask)
        cross = reuse.cross_keys_values(self.model, encoder_output(self.model, hidden), mask, self.start)
        return HFContext(hidden, mask, cross)

    def select(self, ctx: HFContext, index: torch.Tensor, width: int) -> HFContext:
        hidden, mask = (x[:, :width].index_select(0, index) for x in (ctx.hidden, ctx.mask))
        cross = reuse.select_cross(ctx.cross, index, width) if ctx.cross is not None else None
        return HFContext(hidden, mask, cross)

    def positions(self, ctx: HFContext, decoder_input_ids: torch.Tensor) -> torch.Tensor:
        """Decoder states ``[N * T, D]`` of every position where :meth:`head` applies the output layer,
        else logits ``[N * T, V]``."""
        extra = {"input_ids": decoder_input_ids} if self.causal_from_input_ids else {}  # (masks only)
        extra["use_cache"] = ctx.cross is not None
        if ctx.cross is not None:  # the model's attention layers reuse these keys/values
            extra["cache"] = reuse.cross_cache(ctx.cross)
        forward = self.model.base_model if self.own_head is not None else self.model
        out = forward(
            encoder_outputs=encoder_output(self.model, ctx.hidden),
            attention_mask=ctx.mask,
            decoder_input_ids=decoder_input_ids,
            **extra,
        )
        rows = out.logits if self.own_head is None else out.last_hidden_state
        return rows.flatten(0, 1)

    def head(self, rows: torch.Tensor) -> torch.Tensor:
        return rows if self.own_head is None else self.own_head(rows)
