"""Teacher-forced decoder forwards for :func:`t5score.engine.forced.score_pairs`: a fast T5 one and the generic one.

Both engines share one interface, so the scoring loop does not care which runs:

* ``context(encoder_hidden, mask)`` turns encoder states ``[B, S, D]`` into what the decoder attends to;
* ``select(ctx, index, width)`` gives each pair of a batch its source's context (rows ``index``, the first
  ``width`` source positions): with encoder reuse, a context is built once per distinct source and
  indexed to all of its pairs;
* ``positions(ctx, decoder_input_ids)`` runs the decoder over whole targets ``[N, T]`` at once and returns
  one row per position, ``[N * T, ...]`` (row-major);
* ``head(rows)`` turns rows into logits ``[M, V]``; the caller passes only the real (label-mask) positions,
  in chunks (``vocab_size`` sizes them), so padding never reaches the output layer.

:class:`T5ForcedDecoder` reproduces ``T5ForConditionalGeneration``'s decoder from the model's own weights
(the fused, prepacked ones of :mod:`t5score.engine.t5.kernels`): the cross-attention keys and values of all layers
are the context (projected once per distinct source instead of once per pair), the self-attention bias
(relative position bias from ``compute_bias(T, T)`` plus the causal mask) is built once per target
width, and the output layer runs on the real positions only, not on padding. :class:`HFForcedDecoder` is
the model's own forward (any ``AutoModelForSeq2SeqLM``): the context is the encoder states themselves.
"""

from __future__ import annotations

import torch
from transformers.modeling_outputs import BaseModelOutput

from t5score.engine.t5 import kernels as fast_t5
from t5score.engine.t5.kernels import _attend, _cross_kv, _feed_forward, _norm, _prepare

ENGINES = ("auto", "hf", "t5")


class HFForcedDecoder:
    """The model's own forward (encoder states index-expanded to pairs); works for any seq2seq model."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.vocab_size = model.config.vocab_size

    def context(self, hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return hidden, mask

    def select(self, ctx, index: torch.Tensor, width: int):
        hidden, mask = ctx
        return hidden[:, :width].index_select(0, index), mask[:, :width].index_select(0, index)

    def positions(self, ctx, decoder_input_ids: torch.Tensor) -> torch.Tensor:
        hidden, mask = ctx
        out = self.model(
            encoder_outputs=BaseModelOutput(last_hidden_state=hidden),
            attention_mask=mask,
            decoder_input_ids=decoder_input_ids,
            use_cache=False,
        )
        return out.logits.flatten(0, 1)

    def head(self, rows: torch.Tensor) -> torch.Tensor:
        return rows


class T5ForcedDecoder:
    """Teacher-forced T5/mT5 decoder over whole targets, from the model's weights (see the module docstring)."""

    def __init__(self, model: torch.nn.Module):
        self.p = _prepare(model)
        self.attention = model.decoder.block[0].layer[0].SelfAttention  # holds the relative position bias
        self.dtype = model.decoder.embed_tokens.weight.dtype
        self.vocab_size = model.config.vocab_size  # (sizes the output-layer chunks)
        self._self_bias: dict[tuple[int, torch.device], torch.Tensor] = {}

    def context(self, hidden: torch.Tensor, mask: torch.Tensor):
        keys, values = _cross_kv(self.p, hidden)  # [B, H, S, dk] per layer
        bias = ((1 - mask.to(hidden.dtype)) * torch.finfo(hidden.dtype).min)[:, None, None, :]  # [B, 1, 1, S]
        return keys, values, bias

    def select(self, ctx, index: torch.Tensor, width: int):
        keys, values, bias = ctx
        pick = [k[:, :, :width].index_select(0, index) for k in keys]
        return (
            pick,
            [v[:, :, :width].index_select(0, index) for v in values],
            bias[..., :width].index_select(0, index),
        )

    def self_bias(self, steps: int, device: torch.device) -> torch.Tensor:
        """Relative position bias plus causal mask, ``[1, H, T, T]``, built once per width ``T``."""
        key = (steps, device)
        if key not in self._self_bias:
            bias = self.attention.compute_bias(steps, steps, device=device)[0].to(self.dtype)  # [H, T, T]
            causal = torch.ones(steps, steps, dtype=torch.bool, device=device).triu(1)  # key after query
            self._self_bias[key] = bias.masked_fill(causal, torch.finfo(self.dtype).min).unsqueeze(0)
        return self._self_bias[key]

    def positions(self, ctx, decoder_input_ids: torch.Tensor) -> torch.Tensor:
        """Hidden states ``[N * T, D]`` after the last decoder layer (before the final norm)."""
        p, (cross_k, cross_v, cross_bias) = self.p, ctx
        rows, steps = decoder_input_ids.shape
        heads, d_kv = p["heads"], p["d_kv"]
        self_bias = self.self_bias(steps, decoder_input_ids.device)
        hidden = p["embed"](decoder_input_ids)  # [N, T, D]
        for i, w in enumerate(p["layers"]):
            x = _norm(hidden, w["ln_self"], p["eps"])
            q, k, v = w["qkv"](x).view(rows, steps, 3, heads, d_kv).permute(2, 0, 3, 1, 4).unbind(0)
            att = _attend(p, q, k, v, self_bias)  # [N, H, T, dk]
            hidden = hidden + w["o"](att.transpose(1, 2).reshape(rows, steps, heads * d_kv))
            x = _norm(hidden, w["ln_cross"], p["eps"])
            q = w["cross_q"](x).view(rows, steps, heads, d_kv).transpose(1, 2)
            att = _attend(p, q, cross_k[i], cross_v[i], cross_bias)
            hidden = hidden + w["cross_o"](att.transpose(1, 2).reshape(rows, steps, heads * d_kv))
            hidden = hidden + _feed_forward(w, _norm(hidden, w["ln_ff"], p["eps"]))
        return hidden.flatten(0, 1)

    def head(self, rows: torch.Tensor) -> torch.Tensor:
        """Logits ``[M, V]``: final norm, the model's output scaling, output layer."""
        p = self.p
        hidden = _norm(rows, p["final_norm"], p["eps"])
        return p["lm_head"](hidden * p["scale"] if p["scale"] is not None else hidden)


def forced_decoder(model: torch.nn.Module, engine: str = "auto") -> HFForcedDecoder | T5ForcedDecoder:
    """The engine for ``model`` (in eval mode): ``"auto"`` is the T5 one when :func:`fast_t5.supports` it."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "t5" and not fast_t5.supports(model):
        raise ValueError(f"engine='t5' needs a T5/mT5 model in float32/bfloat16, got {type(model).__name__}")
    if engine == "t5" or (engine == "auto" and fast_t5.supports(model)):
        return T5ForcedDecoder(model)
    return HFForcedDecoder(model)
