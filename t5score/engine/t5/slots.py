"""Decoder slots of a T5-family model for in-flight batching (:mod:`t5score.engine.inflight`).

Each of ``slots`` rows of the cache holds one source being decoded, at its own position: a step writes
each slot's key/value at that slot's position and adds that position's row of the self-attention bias
(relative position bias, keys after the position masked), so slots that started at different times share
one batched step. :meth:`T5Slots.admit` puts new sources into free slots (their cross-attention keys and
values, projected from the encoder output; the positions of the source's padding masked); nothing needs
clearing, as a slot at position ``t`` has written its own keys ``0..t`` before it attends to them.
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


class T5Slots:
    """``slots`` decoder rows of up to ``max_steps`` positions each, over sources of up to ``source_length``."""

    def __init__(
        self,
        model: torch.nn.Module,
        slots: int,
        max_steps: int,
        source_length: int,
        dtype: torch.dtype,
        device: torch.device,
    ):
        self.p = p = prepare(model, pack=True)
        heads, d_kv = p["heads"], p["d_kv"]
        cache = (slots, heads, max_steps, d_kv)  # self-attention keys/values [N, H, T, dk] per layer
        cross = (slots, heads, source_length, d_kv)  # cross-attention keys/values [N, H, S, dk] per layer
        self.self_k = [torch.zeros(cache, dtype=dtype, device=device) for _ in p["layers"]]
        self.self_v = [torch.zeros_like(k) for k in self.self_k]
        self.cross_k = [torch.zeros(cross, dtype=dtype, device=device) for _ in p["layers"]]
        self.cross_v = [torch.zeros_like(k) for k in self.cross_k]
        self.cross_bias = torch.full(
            (slots, 1, 1, source_length), torch.finfo(dtype).min, dtype=dtype, device=device
        )
        bias = self_attention_bias(p, max_steps, dtype, device)  # [H, T, T] (query, key)
        self.self_bias = bias.permute(1, 0, 2).unsqueeze(2).contiguous()  # [T, H, 1, T]: row t for query t
        self.max_steps = max_steps

    def admit(self, slot: torch.Tensor, encoder_hidden: torch.Tensor, mask: torch.Tensor) -> None:
        """Put sources (encoder output ``[k, s, D]``, mask ``[k, s]``, ``s <= source_length``) into the
        slots ``slot`` (``[k]``)."""
        s = encoder_hidden.shape[1]
        keys, values = cross_kv(self.p, encoder_hidden)  # [k, H, s, dk] per layer
        for i, (k, v) in enumerate(zip(keys, values, strict=True)):
            self.cross_k[i][slot, :, :s] = k.to(self.cross_k[i].dtype)  # (autocast: bf16 into the cache)
            self.cross_v[i][slot, :, :s] = v.to(self.cross_v[i].dtype)
        bias = torch.full_like(self.cross_bias[: len(slot)], torch.finfo(self.cross_bias.dtype).min)
        bias[..., :s] = cross_attention_bias(mask, self.cross_bias.dtype).to(bias.dtype)  # [k, 1, 1, s]
        self.cross_bias[slot] = bias

    def select(self, keep: torch.Tensor) -> None:
        """Keep only the slots ``keep`` (when no source is left to fill the others)."""
        for cache in (self.cross_k, self.cross_v, self.self_k, self.self_v):
            cache[:] = [c.index_select(0, keep) for c in cache]
        self.cross_bias = self.cross_bias.index_select(0, keep)

    def step(
        self, ids: torch.Tensor, pos: torch.Tensor, length: int, width: int | None = None
    ) -> torch.Tensor:
        """Logits ``[N, V]`` of the tokens ``ids`` (``[N]``) at positions ``pos`` (``[N]``); ``length`` =
        ``max(pos) + 1``, the cache positions any slot attends to; ``width``: the longest source among the
        slots (source positions after it are masked in every slot, so they are left out)."""
        if length > self.max_steps:
            raise RuntimeError(f"decoder cache holds {self.max_steps} steps")
        rows = torch.arange(len(ids), device=ids.device)
        bias = self.self_bias.index_select(0, pos)[..., :length]  # [N, H, 1, L]: keys after pos masked

        def cached(i: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """Write each slot's key/value ``[N, H, 1, dk]`` at its position; attend to positions ``< L``."""
            self.self_k[i][rows, :, pos] = k[:, :, 0].to(self.self_k[i].dtype)
            self.self_v[i][rows, :, pos] = v[:, :, 0].to(self.self_v[i].dtype)
            return self.self_k[i][:, :, :length], self.self_v[i][:, :, :length]  # [N, H, L, dk]

        hidden = self.p["embed"](ids[:, None])  # [N, 1, D]
        w = width or self.cross_bias.shape[-1]
        cross = (
            [k[:, :, :w] for k in self.cross_k],
            [v[:, :, :w] for v in self.cross_v],
            self.cross_bias[..., :w],
        )
        hidden = decoder_layers(self.p, hidden, bias, cross, cached)
        return output_logits(self.p, hidden[:, 0])  # [N, V]
