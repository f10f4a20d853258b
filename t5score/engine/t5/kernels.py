"""Fast T5-family kernels (T5, T5 v1.1 / Flan-T5, mT5): the decoder of ``T5ForConditionalGeneration`` and
``MT5ForConditionalGeneration`` recomputed from the model's own weights, with less work than the generic
Hugging Face forward.

* fused query/key/value (and gated feed-forward) weights: fewer, larger matrix products; the
  cross-attention keys and values of all layers projected in one product (:func:`cross_kv`);
* on CPU in float32, weights prepacked once for oneDNN (``torch.ops.mkldnn``) and kept beside the model
  (re-packed when a weight changes): small-batch products then run near memory bandwidth, where the
  default ``addmm`` re-packs the weight at every call (the 32k-row output layer most of all);
* one decoder pass, :func:`decoder_layers`, shared by the one-token step of decoding
  (:mod:`t5score.engine.t5.step`, with a preallocated key/value cache) and the teacher-forced decoder over
  whole targets (:mod:`t5score.engine.t5.forced`).

Numbers agree with the Hugging Face forward to float32 rounding (other summation orders); the parity
tests in ``tests/engine/test_decode.py``, ``tests/engine/test_decode_options.py`` and
``tests/engine/test_t5_forced.py`` compare them with ``model.generate`` and forward passes with labels.
Models of other architectures (BART, ...) use the generic forward (:mod:`t5score.engine.hf`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
import torch.nn.functional as F

PACKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> (weights key, prepared weights)


def _classes() -> dict[type, Callable[[object], bool]]:
    """The model classes whose decoder these kernels reproduce, each with its output scaling: whether its
    forward multiplies the last decoder states by ``d_model ** -0.5`` before the output layer. T5 (and
    T5 v1.1 / Flan-T5) read ``config.scale_decoder_outputs`` (True unless the checkpoint says
    ``tie_word_embeddings: false``); mT5 never rescales (``MT5Config`` forces ``tie_word_embeddings=True``
    while ``MT5ForConditionalGeneration.forward`` has no rescaling). Other T5 variants are not admitted:
    UMT5 has a position bias per layer, LongT5 another encoder, SwitchTransformers experts; they run
    through the model's own forward."""
    from transformers import MT5ForConditionalGeneration, T5ForConditionalGeneration

    return {
        T5ForConditionalGeneration: lambda cfg: bool(cfg.scale_decoder_outputs),
        MT5ForConditionalGeneration: lambda cfg: False,
    }


def scales_output(model: torch.nn.Module) -> bool:
    """Whether ``model``'s own forward rescales the decoder output (see :func:`_classes`); a ValueError for a
    model these kernels do not reproduce."""
    rule = _classes().get(type(model))
    if rule is None:
        raise ValueError(f"the fast T5 kernels do not reproduce {type(model).__name__}")
    return rule(model.config)


def supports(model: torch.nn.Module) -> bool:
    """True for T5 (T5 v1.1, Flan-T5) and mT5 models in eval mode (float32/bfloat16): exactly the classes
    whose decoder this module reproduces, proven against their forward by the tests."""
    if type(model) not in _classes() or model.training:
        return False  # (in training mode the model's own forward applies dropout; this step would not)
    if not all(hasattr(model, name) for name in ("decoder", "lm_head", "encoder")):
        return False
    if getattr(model.config, "_attn_implementation", None) not in ("sdpa", "eager"):
        return False
    return model.decoder.embed_tokens.weight.dtype in (torch.float32, torch.bfloat16)


def can_pack(weight: torch.Tensor) -> bool:
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
        if pack and can_pack(self.weight):
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


def norm(hidden: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """T5LayerNorm: RMS norm with float32 variance, no mean, no bias."""
    variance = hidden.to(torch.float32).pow(2).mean(-1, keepdim=True)
    hidden = hidden * torch.rsqrt(variance + eps)
    if weight.dtype in (torch.float16, torch.bfloat16):
        hidden = hidden.to(weight.dtype)
    return weight * hidden


def prepare(model: torch.nn.Module, pack: bool = True) -> dict:
    """Fused (and on CPU float32, prepacked) decoder weights of ``model``, cached while they are unchanged."""
    params = list(model.decoder.parameters()) + list(model.lm_head.parameters())
    cfg = model.config
    key = (pack, cfg._attn_implementation, *(id(m) for m in model.decoder.modules()), id(model.lm_head))
    key += tuple((p.data_ptr(), p._version, p.device, p.dtype) for p in params)
    cached = PACKED.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    layers, cross_layers = [], []
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
            cross_layers += [cross.k, cross.v]
    # the encoder states are projected once per batch (many rows): a plain product, no prepacking
    scaled = scales_output(model)  # as the model's own forward decides it
    prepared = {
        "layers": layers,
        "cross_kv": Fused(cross_layers, pack=False),
        "lm_head": Fused([model.lm_head], pack),
        "embed": model.decoder.embed_tokens,
        "final_norm": model.decoder.final_layer_norm.weight.detach(),
        "heads": cfg.num_heads,
        "d_kv": cfg.d_kv,
        "eps": cfg.layer_norm_epsilon,
        "scale": cfg.d_model**-0.5 if scaled else None,
        "sdpa": cfg._attn_implementation == "sdpa",
        "position_bias": model.decoder.block[0].layer[0].SelfAttention,  # holds the relative position bias
        "compiled": {},  # backend -> torch.compile(decoder_step), reused by every batch of this model
    }
    PACKED[model] = (key, prepared)
    return prepared


def attend(p: dict, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Unscaled attention with an additive bias, by the kernel the model is configured with (same numbers)."""
    if p["sdpa"]:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0)
    return torch.matmul((torch.matmul(q, k.transpose(2, 3)) + bias).softmax(-1), v)


def feed_forward(w: dict, x: torch.Tensor) -> torch.Tensor:
    """The feed-forward block of one decoder layer ``w`` (plain or gated) on normed input ``x``."""
    h = w["wi"](x)
    if w["gated"]:
        gate, lin = h.chunk(2, dim=-1)
        h = w["act"](gate) * lin
    else:
        h = w["act"](h)
    return w["wo"](h if w["wo"].dtype in (None, h.dtype) else h.to(w["wo"].dtype))


def cross_kv(p: dict, encoder_hidden: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Cross-attention keys and values (``[B, H, S, dk]`` per layer) of all layers, in one product."""
    batch, src, _ = encoder_hidden.shape
    n_layers = len(p["layers"])
    kv = p["cross_kv"](encoder_hidden).view(batch, src, n_layers, 2, p["heads"], p["d_kv"])
    keys = [kv[:, :, i, 0].transpose(1, 2).contiguous() for i in range(n_layers)]
    values = [kv[:, :, i, 1].transpose(1, 2).contiguous() for i in range(n_layers)]
    return keys, values


def cross_attention_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive bias ``[B, 1, 1, S]`` hiding the padded source positions of ``mask`` (``[B, S]``, 1 = real)."""
    return ((1 - mask.to(dtype)) * torch.finfo(dtype).min)[:, None, None, :]


def self_attention_bias(p: dict, steps: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Relative position bias plus causal mask of ``steps`` decoder positions, ``[H, T, T]`` (query, key)."""
    with torch.no_grad():
        bias = p["position_bias"].compute_bias(steps, steps, device=device)[0].to(dtype)  # [H, T, T]
    causal = torch.ones(steps, steps, dtype=torch.bool, device=device).triu(1)  # key after query
    return bias.masked_fill(causal, torch.finfo(dtype).min)


# keys_values(layer, k, v) -> (keys, values): what the queries of one layer attend to, given its new keys
# and values [N, H, T, dk]; the one-token step writes them into its cache and returns the cache.
KeysValues = Callable[[int, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def decoder_layers(
    p: dict,
    hidden: torch.Tensor,
    self_bias: torch.Tensor,
    cross: tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor],
    keys_values: KeysValues | None = None,
) -> torch.Tensor:
    """All decoder layers of T5 on embedded decoder inputs ``hidden`` ``[N, T, D]``; returns ``[N, T, D]``
    (before the final norm). ``self_bias`` is added to the self-attention scores (``[., H, T, T_keys]``);
    ``cross`` = (keys, values per layer ``[N, H, S, dk]``, bias ``[N, 1, 1, S]``) from :func:`cross_kv`.
    ``keys_values`` (default: the new keys and values themselves, as in teacher forcing): see above."""
    rows, steps, _ = hidden.shape
    heads, d_kv, eps = p["heads"], p["d_kv"], p["eps"]
    cross_k, cross_v, cross_bias = cross
    for i, w in enumerate(p["layers"]):
        x = norm(hidden, w["ln_self"], eps)
        qkv = w["qkv"](x).view(rows, steps, 3, heads, d_kv)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # [N, H, T, dk] each
        if keys_values is not None:
            k, v = keys_values(i, k, v)  # [N, H, T_keys, dk]
        att = attend(p, q, k, v, self_bias)  # [N, H, T, dk]
        hidden = hidden + w["o"](att.transpose(1, 2).reshape(rows, steps, heads * d_kv))
        x = norm(hidden, w["ln_cross"], eps)
        q = w["cross_q"](x).view(rows, steps, heads, d_kv).transpose(1, 2)  # [N, H, T, dk]
        att = attend(p, q, cross_k[i], cross_v[i], cross_bias)
        hidden = hidden + w["cross_o"](att.transpose(1, 2).reshape(rows, steps, heads * d_kv))
        hidden = hidden + feed_forward(w, norm(hidden, w["ln_ff"], eps))
    return hidden


def output_logits(p: dict, hidden: torch.Tensor) -> torch.Tensor:
    """Logits ``[..., V]`` of last-layer states ``[..., D]``: final norm, the model's output scaling, output layer."""
    hidden = norm(hidden, p["final_norm"], p["eps"])
    if p["scale"] is not None:
        hidden = hidden * p["scale"]
    return p["lm_head"](hidden)
