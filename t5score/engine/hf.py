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

Here the context is the encoder states themselves and ``positions`` already returns logits.

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


HFContext = tuple[torch.Tensor, torch.Tensor]  # encoder states [B, S, D], mask [B, S]


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
    """The model's own forward (encoder states index-expanded to pairs); works for any seq2seq model."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        head = model.get_output_embeddings()  # sizes the output chunks (FSMT: its target vocabulary)
        self.vocab_size = head.weight.shape[0] if head is not None else model.config.vocab_size
        model_type = getattr(model.config, "model_type", None)
        self.equal_lengths = model_type in LENGTH_DEPENDENT  # batch only targets of one length
        self.causal_from_input_ids = model_type in CAUSAL_FROM_INPUT_IDS

    def context(self, hidden: torch.Tensor, mask: torch.Tensor) -> HFContext:
        return hidden, mask

    def select(self, ctx: HFContext, index: torch.Tensor, width: int) -> HFContext:
        hidden, mask = ctx
        return hidden[:, :width].index_select(0, index), mask[:, :width].index_select(0, index)

    def positions(self, ctx: HFContext, decoder_input_ids: torch.Tensor) -> torch.Tensor:
        """Logits ``[N * T, V]`` of every decoder position."""
        hidden, mask = ctx
        extra = {"input_ids": decoder_input_ids} if self.causal_from_input_ids else {}  # (masks only)
        out = self.model(
            encoder_outputs=encoder_output(self.model, hidden),
            attention_mask=mask,
            decoder_input_ids=decoder_input_ids,
            use_cache=False,
            **extra,
        )
        return out.logits.flatten(0, 1)

    def head(self, rows: torch.Tensor) -> torch.Tensor:
        return rows
