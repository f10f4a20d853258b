"""The teacher-forced T5 decoder of :func:`t5score.engine.forced.score_pairs`: whole targets at once.

It reproduces ``T5ForConditionalGeneration``'s decoder from the model's own weights (the fused, prepacked
ones of :mod:`t5score.engine.t5.kernels`, through the same :func:`~t5score.engine.t5.kernels.decoder_layers`
as the decoding step): the cross-attention keys and values of all layers are the context (projected once
per distinct source instead of once per pair), the self-attention bias (relative position bias plus the
causal mask) is built once per target width, and the output layer runs on the real positions only, not on
padding. Its interface is that of :class:`t5score.engine.hf.HFForcedDecoder` (see there).
"""

from __future__ import annotations

import torch

from t5score.engine.t5.kernels import (
    cross_attention_bias,
    cross_kv,
    decoder_layers,
    output_logits,
    prepare,
    self_attention_bias,
)

# keys and values per layer [B, H, S, dk], bias [B, 1, 1, S]
T5Context = tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]


class T5ForcedDecoder:
    """Teacher-forced T5/mT5 decoder over whole targets, from the model's weights (see the module docstring)."""

    def __init__(self, model: torch.nn.Module):
        self.p = prepare(model)
        self.dtype = model.decoder.embed_tokens.weight.dtype
        self.vocab_size = model.config.vocab_size  # (sizes the output-layer chunks)
        self.self_biases: dict[tuple[int, torch.device], torch.Tensor] = {}

    def context(self, hidden: torch.Tensor, mask: torch.Tensor) -> T5Context:
        """Cross-attention keys and values of encoder states ``[B, S, D]``, and the padding bias."""
        keys, values = cross_kv(self.p, hidden)  # [B, H, S, dk] per layer
        return keys, values, cross_attention_bias(mask, hidden.dtype)

    def select(self, ctx: T5Context, index: torch.Tensor, width: int) -> T5Context:
        """Rows ``index`` of ``ctx``, first ``width`` source positions: one context per pair."""
        keys, values, bias = ctx
        return (
            [k[:, :, :width].index_select(0, index) for k in keys],
            [v[:, :, :width].index_select(0, index) for v in values],
            bias[..., :width].index_select(0, index),
        )

    def self_bias(self, steps: int, device: torch.device) -> torch.Tensor:
        """Relative position bias plus causal mask, ``[1, H, T, T]``, built once per width ``T``."""
        key = (steps, device)
        if key not in self.self_biases:
            self.self_biases[key] = self_attention_bias(self.p, steps, self.dtype, device).unsqueeze(0)
        return self.self_biases[key]

    def positions(self, ctx: T5Context, decoder_input_ids: torch.Tensor) -> torch.Tensor:
        """Hidden states ``[N * T, D]`` after the last decoder layer (before the final norm)."""
        self_bias = self.self_bias(decoder_input_ids.shape[1], decoder_input_ids.device)
        hidden = self.p["embed"](decoder_input_ids)  # [N, T, D]
        return decoder_layers(self.p, hidden, self_bias, ctx).flatten(0, 1)

    def head(self, rows: torch.Tensor) -> torch.Tensor:
        """Logits ``[M, V]`` of rows ``[M, D]``: final norm, the model's output scaling, output layer."""
        return output_logits(self.p, rows)
