"""One decoder step of a T5-family model for decoding: a preallocated key/value cache, kernels of
:mod:`t5score.engine.t5.kernels`.

Per batch, the cross-attention keys and values of all layers are projected once and the self-attention
position bias of every step is computed once; each step then feeds one token per active row
(:func:`decoder_step`). :class:`T5Stepper` holds that state for :func:`t5score.engine.decode.greedy_decode`.
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


def decoder_step(p, ids, t, pos, self_k, self_v, cross_k, cross_v, cross_bias, self_bias) -> torch.Tensor:
    """Logits ``[A, V]`` of one decoder step for the tokens ``ids`` (``[A]``) at position ``t``.

    Eager (``pos is None``): writes cache slot ``t`` and attends to slots ``0..t``. Static (``pos`` = ``t``
    as a 1-element tensor, for ``torch.compile``): the same, with shapes that do not depend on ``t`` (all
    slots attended, later ones masked by ``self_bias``), so one compiled graph serves every step.
    """
    if pos is None:
        bias = self_bias[t, :, :, : t + 1].unsqueeze(0)  # [1, H, 1, t+1]
    else:
        bias = self_bias.index_select(0, pos)  # [1, H, 1, T]

    def cached(i: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write this step's keys/values ``[A, H, 1, dk]`` into layer ``i``'s cache; attend to the cache."""
        if pos is None:
            self_k[i][:, :, t : t + 1] = k
            self_v[i][:, :, t : t + 1] = v
            return self_k[i][:, :, : t + 1], self_v[i][:, :, : t + 1]  # [A, H, t+1, dk]
        self_k[i].index_copy_(2, pos, k)
        self_v[i].index_copy_(2, pos, v)
        return self_k[i], self_v[i]  # [A, H, T, dk]

    hidden = p["embed"](ids[:, None])  # [A, 1, D]
    hidden = decoder_layers(p, hidden, bias, (cross_k, cross_v, cross_bias), cached)
    return output_logits(p, hidden[:, 0])  # [A, V]


class T5Stepper:
    """Decoder state of one batch: ``step(ids)`` feeds one token per active row and returns its logits.

    ``encoder_hidden`` is ``[B, S, D]``, ``encoder_mask`` ``[B, S]`` (1 = real token), and ``max_steps``
    the number of decoder positions to allocate. ``select(keep)`` drops rows (indices into active rows).
    ``compile`` (``True`` or a backend name) runs the static-shape step through ``torch.compile``; the
    compiled function is kept with the model's prepared weights, so later batches of the same shape reuse it.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        encoder_hidden: torch.Tensor,
        encoder_mask: torch.Tensor,
        max_steps: int,
        compile: bool | str = False,
    ):
        self.p = p = prepare(model, pack=not compile)  # dynamo cannot trace oneDNN-packed weights
        batch, dtype, device = encoder_hidden.shape[0], encoder_hidden.dtype, encoder_hidden.device
        self.cross_k, self.cross_v = cross_kv(p, encoder_hidden)  # [B, H, S, dk] per layer
        self.cross_bias = cross_attention_bias(encoder_mask, dtype)  # [B, 1, 1, S]
        shape = (batch, p["heads"], max_steps, p["d_kv"])  # self-attention cache [B, H, T, dk] per layer
        self.self_k = [torch.zeros(shape, dtype=dtype, device=device) for _ in p["layers"]]
        self.self_v = [torch.zeros_like(k) for k in self.self_k]
        # position bias of every (query step, key step) pair: step t attends to keys 0..t with bias[t]
        bias = self_attention_bias(p, max_steps, dtype, device)  # [H, T, T]
        self.self_bias = bias.permute(1, 0, 2).unsqueeze(2).contiguous()  # [T, H, 1, T]
        self.fn = decoder_step
        if compile:
            backend = compile if isinstance(compile, str) else "inductor"
            if backend not in p["compiled"]:
                p["compiled"][backend] = torch.compile(decoder_step, backend=backend, dynamic=False)
            self.fn = p["compiled"][backend]
        self.static = bool(compile)
        self.t = 0
        self.max_steps = max_steps

    def select(self, keep: torch.Tensor) -> None:
        """Keep only the active rows ``keep`` (indices into the current active rows)."""
        for cache in (self.cross_k, self.cross_v, self.self_k, self.self_v):
            cache[:] = [c.index_select(0, keep) for c in cache]
        self.cross_bias = self.cross_bias.index_select(0, keep)

    def step(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits ``[A, V]`` for the next position, given the last tokens ``ids`` (``[A]``)."""
        t = self.t
        if t >= self.max_steps:
            raise RuntimeError(f"decoder cache holds {self.max_steps} steps")
        self.t += 1
        pos = torch.full((1,), t, dtype=torch.long, device=ids.device) if self.static else None
        caches = (self.self_k, self.self_v, self.cross_k, self.cross_v, self.cross_bias, self.self_bias)
        return self.fn(self.p, ids, None if self.static else t, pos, *caches)
