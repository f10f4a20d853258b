"""A fast decoder step for T5-family models (T5, T5 v1.1 / Flan-T5, mT5), used by the decoding engine.

It computes what ``T5ForConditionalGeneration`` computes for one new decoder token, from the model's own
weights, with less work per step than the generic Hugging Face forward:

* a preallocated key/value cache (no ``torch.cat`` growth per step) and the cross-attention keys and
  values of all layers projected once, in one matrix product, when the batch starts;
* the self-attention position bias of every step computed once, instead of per step;
* fused query/key/value (and gated feed-forward) weights: fewer, larger matrix products;
* on CPU in float32, weights prepacked once for oneDNN (``torch.ops.mkldnn``) and kept beside the model
  (re-packed when a weight changes): small-batch products then run near memory bandwidth, where the
  default ``addmm`` re-packs the weight at every call (the 32k-row output layer most of all).

Numbers agree with the Hugging Face forward to float32 rounding (other summation orders); the parity
tests in ``tests/test_decoding.py`` compare tokens and logits with ``model.generate``.
Models of other architectures (BART, ...) use the generic forward (``t5score.engine.decode``).
"""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F

_PACKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> (weights key, prepared weights)


def supports(model: torch.nn.Module) -> bool:
    """True for T5/mT5 encoder-decoders in eval mode whose decoder this module reproduces (float32/bfloat16)."""
    cfg = getattr(model, "config", None)
    if getattr(cfg, "model_type", None) not in ("t5", "mt5") or model.training:
        return False  # (in training mode the model's own forward applies dropout; this step would not)
    if not all(hasattr(model, name) for name in ("decoder", "lm_head", "encoder")):
        return False
    if getattr(cfg, "_attn_implementation", None) not in ("sdpa", "eager"):
        return False
    return model.decoder.embed_tokens.weight.dtype in (torch.float32, torch.bfloat16)


def _can_pack(weight: torch.Tensor) -> bool:
    return (
        weight.device.type == "cpu"
        and weight.dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
    )


class Linear:
    """``x @ weight.T`` for small batches; on CPU float32 through a oneDNN-prepacked copy of ``weight``."""

    def __init__(self, weight: torch.Tensor, pack: bool = True):
        self.weight = weight.detach()
        self.out_features = weight.shape[0]
        self.packed = None
        if pack and _can_pack(self.weight):
            try:
                self.packed = torch.ops.mkldnn._reorder_linear_weight(self.weight, 16)
                torch.ops.mkldnn._linear_pointwise(
                    self.weight.new_zeros(1, self.weight.shape[1]), self.packed, None, "none", [], ""
                )
            except (RuntimeError, AttributeError):  # oneDNN unusable on this build/CPU: plain matmul
                self.packed = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.packed is None or x.dtype != self.weight.dtype or torch.is_autocast_enabled(x.device.type):
            return F.linear(x, self.weight)  # (autocast, e.g. bf16-mixed, casts as it does for nn.Linear)
        lead = x.shape[:-1]
        y = torch.ops.mkldnn._linear_pointwise(x.reshape(-1, x.shape[-1]), self.packed, None, "none", [], "")
        return y.view(*lead, self.out_features)


class Fused:
    """Several linear layers applied to the same input, outputs concatenated on the last dim.

    Plain ``nn.Linear`` layers become one product with concatenated weights (:class:`Linear`); other
    layers (e.g. int8 dynamically quantised ones, :mod:`t5score.engine.quantize`) are called one by one.
    """

    def __init__(self, modules: list[torch.nn.Module], pack: bool = True):
        self.modules = None
        self.linear = None
        if all(type(m) is torch.nn.Linear and m.bias is None for m in modules):
            weight = modules[0].weight if len(modules) == 1 else torch.cat([m.weight for m in modules])
            self.linear = Linear(weight, pack)
        else:
            self.modules = modules
        weight = getattr(modules[-1], "weight", None)
        self.dtype = weight.dtype if isinstance(weight, torch.Tensor) else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.linear is not None:
            return self.linear(x)
        outs = [m(x) for m in self.modules]
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)


def _norm(hidden: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """T5LayerNorm: RMS norm with float32 variance, no mean, no bias."""
    variance = hidden.to(torch.float32).pow(2).mean(-1, keepdim=True)
    hidden = hidden * torch.rsqrt(variance + eps)
    if weight.dtype in (torch.float16, torch.bfloat16):
        hidden = hidden.to(weight.dtype)
    return weight * hidden


def _prepare(model: torch.nn.Module, pack: bool = True) -> dict:
    """Fused (and on CPU float32, prepacked) decoder weights of ``model``, cached while they are unchanged."""
    params = list(model.decoder.parameters()) + list(model.lm_head.parameters())
    cfg = model.config
    key = (pack, cfg._attn_implementation, *(id(m) for m in model.decoder.modules()), id(model.lm_head))
    key += tuple((p.data_ptr(), p._version, p.device, p.dtype) for p in params)
    cached = _PACKED.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    layers, cross_kv = [], []
    with torch.no_grad():
        for block in model.decoder.block:
            sa, ca, ff = block.layer[0], block.layer[1], block.layer[2]
            att, cross, dense = sa.SelfAttention, ca.EncDecAttention, ff.DenseReluDense
            gated = hasattr(dense, "wi_0")
            layers.append(
                {
                    "ln_self": sa.layer_norm.weight.detach(),
                    "qkv": Fused([att.q, att.k, att.v], pack),
                    "o": Fused([att.o], pack),
                    "ln_cross": ca.layer_norm.weight.detach(),
                    "cross_q": Fused([cross.q], pack),
                    "cross_o": Fused([cross.o], pack),
                    "ln_ff": ff.layer_norm.weight.detach(),
                    "wi": Fused([dense.wi_0, dense.wi_1] if gated else [dense.wi], pack),
                    "wo": Fused([dense.wo], pack),
                    "act": dense.act,
                    "gated": gated,
                }
            )
            cross_kv += [cross.k, cross.v]
    # the encoder states are projected once per batch (many rows): a plain product, no prepacking
    scaled = getattr(cfg, "scale_decoder_outputs", cfg.tie_word_embeddings)
    prepared = {
        "layers": layers,
        "cross_kv": Fused(cross_kv, pack=False),
        "lm_head": Fused([model.lm_head], pack),
        "embed": model.decoder.embed_tokens,
        "final_norm": model.decoder.final_layer_norm.weight.detach(),
        "heads": cfg.num_heads,
        "d_kv": cfg.d_kv,
        "eps": cfg.layer_norm_epsilon,
        "scale": cfg.d_model**-0.5 if scaled else None,
        "sdpa": cfg._attn_implementation == "sdpa",
        "compiled": {},  # backend -> torch.compile(_decoder_step), reused by every batch of this model
    }
    _PACKED[model] = (key, prepared)
    return prepared


def _attend(p: dict, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Unscaled attention with an additive bias, by the kernel the model is configured with (same numbers)."""
    if p["sdpa"]:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0)
    return torch.matmul((torch.matmul(q, k.transpose(2, 3)) + bias).softmax(-1), v)


def _feed_forward(w: dict, x: torch.Tensor) -> torch.Tensor:
    """The feed-forward block of one decoder layer ``w`` (plain or gated) on normed input ``x``."""
    h = w["wi"](x)
    if w["gated"]:
        gate, lin = h.chunk(2, dim=-1)
        h = w["act"](gate) * lin
    else:
        h = w["act"](h)
    return w["wo"](h if w["wo"].dtype in (None, h.dtype) else h.to(w["wo"].dtype))


def _cross_kv(p: dict, encoder_hidden: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Cross-attention keys and values (``[B, H, S, dk]`` per layer) of all layers, in one product."""
    batch, src, _ = encoder_hidden.shape
    n_layers = len(p["layers"])
    kv = p["cross_kv"](encoder_hidden).view(batch, src, n_layers, 2, p["heads"], p["d_kv"])
    keys = [kv[:, :, i, 0].transpose(1, 2).contiguous() for i in range(n_layers)]
    values = [kv[:, :, i, 1].transpose(1, 2).contiguous() for i in range(n_layers)]
    return keys, values


def _decoder_step(p, ids, t, pos, self_k, self_v, cross_k, cross_v, cross_bias, self_bias) -> torch.Tensor:
    """Logits ``[A, V]`` of one decoder step for the tokens ``ids`` (``[A]``) at position ``t``.

    Eager (``pos is None``): writes cache slot ``t`` and attends to slots ``0..t``. Static (``pos`` = ``t``
    as a 1-element tensor, for ``torch.compile``): the same, with shapes that do not depend on ``t`` (all
    slots attended, later ones masked by ``self_bias``), so one compiled graph serves every step.
    """
    rows, heads, d_kv = ids.shape[0], p["heads"], p["d_kv"]
    hidden = p["embed"](ids)  # [A, D]
    if pos is None:
        bias = self_bias[t, :, :, : t + 1].unsqueeze(0)  # [1, H, 1, t+1]
    else:
        bias = self_bias.index_select(0, pos)  # [1, H, 1, T]
    for i, w in enumerate(p["layers"]):
        x = _norm(hidden, w["ln_self"], p["eps"])
        q, k, v = w["qkv"](x).view(rows, 3, heads, d_kv).unbind(1)  # [A, H, dk] each
        if pos is None:
            self_k[i][:, :, t] = k
            self_v[i][:, :, t] = v
            keys, values = self_k[i][:, :, : t + 1], self_v[i][:, :, : t + 1]
        else:
            self_k[i].index_copy_(2, pos, k.unsqueeze(2))
            self_v[i].index_copy_(2, pos, v.unsqueeze(2))
            keys, values = self_k[i], self_v[i]
        att = _attend(p, q.unsqueeze(2), keys, values, bias)  # [A, H, 1, dk]
        hidden = hidden + w["o"](att.view(rows, heads * d_kv))
        x = _norm(hidden, w["ln_cross"], p["eps"])
        q = w["cross_q"](x).view(rows, heads, 1, d_kv)
        att = _attend(p, q, cross_k[i], cross_v[i], cross_bias)
        hidden = hidden + w["cross_o"](att.view(rows, heads * d_kv))
        hidden = hidden + _feed_forward(w, _norm(hidden, w["ln_ff"], p["eps"]))
    hidden = _norm(hidden, p["final_norm"], p["eps"])
    if p["scale"] is not None:
        hidden = hidden * p["scale"]
    return p["lm_head"](hidden)


class T5Stepper:
    """Decoder state of one batch: ``step(ids)`` feeds one token per active row and returns its logits.

    ``encoder_hidden`` is ``[B, S, D]``, ``encoder_mask`` ``[B, S]`` (1 = real token), and ``max_steps``
    the number of decoder positions to allocate. ``select(keep)`` drops rows (indices into active rows).
    ``compile`` (``True`` or a backend name) runs the static-shape step through ``torch.compile``; the
    compiled function is kept with the model's prepared weights, so later batches of the same shape reuse it.
    """

    def __init__(
        self,
        model,
        encoder_hidden: torch.Tensor,
        encoder_mask: torch.Tensor,
        max_steps: int,
        compile: bool | str = False,
    ):
        self.p = p = _prepare(model, pack=not compile)  # dynamo cannot trace oneDNN-packed weights
        heads, d_kv = p["heads"], p["d_kv"]
        batch = encoder_hidden.shape[0]
        dtype, device = encoder_hidden.dtype, encoder_hidden.device
        n_layers = len(p["layers"])
        self.cross_k, self.cross_v = _cross_kv(p, encoder_hidden)  # [B, H, S, dk] per layer
        neg = torch.finfo(dtype).min
        self.cross_bias = ((1 - encoder_mask.to(dtype)) * neg)[:, None, None, :]  # [B, 1, 1, S]
        # self-attention cache [B, H, T, dk]
        self.self_k = [
            torch.zeros(batch, heads, max_steps, d_kv, dtype=dtype, device=device) for _ in range(n_layers)
        ]
        self.self_v = [torch.zeros_like(k) for k in self.self_k]
        # position bias of every (query step, key step) pair: step t attends to keys 0..t with bias[t]
        first = model.decoder.block[0].layer[0].SelfAttention
        with torch.no_grad():
            bias = first.compute_bias(max_steps, max_steps, device=device)
        causal = torch.ones(max_steps, max_steps, dtype=torch.bool, device=device).triu(1)  # key after query
        bias = bias[0].to(dtype).masked_fill(causal, neg)  # [H, T, T]
        self.self_bias = bias.permute(1, 0, 2).unsqueeze(2).contiguous()  # [T, H, 1, T]
        self.fn = _decoder_step
        if compile:
            backend = compile if isinstance(compile, str) else "inductor"
            if backend not in p["compiled"]:
                p["compiled"][backend] = torch.compile(_decoder_step, backend=backend, dynamic=False)
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
