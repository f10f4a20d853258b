"""What :class:`t5score.engine.hf.HFForcedDecoder` shares among a source's pairs and leaves out of padding.

* **Cross-attention keys/values once per source.** :func:`cross_keys_values` runs the model's own decoder
  on one start token per distinct source with a fresh ``EncoderDecoderCache`` (``use_cache=True``) and keeps
  its cross-attention half: every decoder layer's keys/values ``[B, H, S, d]``, projected by the model's own
  modules. :func:`select_cross` index-selects them to a batch's pairs (cut to the batch's widest source) and
  :func:`cross_cache` hands them back to the model's forward as the cross half of an ``EncoderDecoderCache``
  with ``is_updated`` set for every layer, so the attention layers reuse them instead of projecting each
  pair's encoder states again (transformers 5.x: ``BartAttention.forward`` and its copies read
  ``cache.cross_attention_cache.layers[i].keys/values`` when ``cache.is_updated[i]``).
* **The output layer on real positions only.** :func:`output_head` is the model's own head,
  ``lm_head(h) + final_logits_bias``, for classes whose forward is exactly that on the base model's decoder
  states; the decoder then returns states and the scoring loop applies the head to the label positions.

Which classes take each, decided here (:data:`CROSS_CACHE`, :data:`OWN_HEAD`): the exact transformers
classes whose code was read and whose numbers the tests compare with their own forward on each pair alone
(tests/engine/test_hf_forced.py, test_families_scoring.py). Subclasses and remote code are not admitted:
their forward may differ. Anything else keeps the plain forward (encoder states index-expanded to pairs).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import transformers
from transformers import DynamicCache, EncoderDecoderCache
from transformers.cache_utils import DynamicLayer

#: classes whose decoder attention reuses the cross half of an EncoderDecoderCache when ``is_updated[i]``
#: (BartAttention and its copies in each family) and whose forward is ``lm_head(base_model(...)[0])`` plus
#: ``final_logits_bias`` where they have it, nothing else: they take both.
BART_LIKE = (
    "BartForConditionalGeneration",
    "MBartForConditionalGeneration",
    "PLBartForConditionalGeneration",
    "PegasusForConditionalGeneration",
    "PegasusXForConditionalGeneration",
    "BigBirdPegasusForConditionalGeneration",
    "MarianMTModel",
    "M2M100ForConditionalGeneration",
    "NllbMoeForConditionalGeneration",
    "LEDForConditionalGeneration",
    "BlenderbotForConditionalGeneration",
    "BlenderbotSmallForConditionalGeneration",
)
#: classes whose attention reuses the cache the same way (T5Attention and its copies, T5Gemma's
#: cross-attention) but whose head is more than that (T5: decoder states rescaled when tied; T5Gemma: a
#: final logit soft-cap): keys/values once per source, logits from the forward. (T5 and mT5 take the fast
#: T5 engine unless ``engine="hf"``.)
T5_LIKE = (
    "T5ForConditionalGeneration",
    "MT5ForConditionalGeneration",
    "UMT5ForConditionalGeneration",
    "LongT5ForConditionalGeneration",
    "SwitchTransformersForConditionalGeneration",
    "T5GemmaForConditionalGeneration",
)
#: Left out, on the plain forward: FSMT builds its causal mask only with ``use_cache=False`` (never
#: alongside a cache); ProphetNet's decoder (n-gram streams whose values depend on the target's length,
#: targets batched by equal length, a head over its predicting streams) keeps its proven plain path.
CROSS_CACHE = BART_LIKE + T5_LIKE
OWN_HEAD = BART_LIKE


def _is_one_of(model: torch.nn.Module, names: tuple[str, ...]) -> bool:
    return any(type(model) is getattr(transformers, name, None) for name in names)


def reuses_cross(model: torch.nn.Module) -> bool:
    """Whether ``model``'s cross-attention keys/values are computed once per source (:data:`CROSS_CACHE`)."""
    return _is_one_of(model, CROSS_CACHE)


def output_head(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The model's own output layer on decoder states ``[M, D]`` -> logits ``[M, V]`` (:data:`OWN_HEAD`), else
    None (the forward's logits are kept)."""
    lm_head = model.get_output_embeddings()
    if not _is_one_of(model, OWN_HEAD) or lm_head is None or model.base_model is model:
        return None
    bias = getattr(model, "final_logits_bias", None)
    if bias is None:
        return lm_head
    return lambda rows: lm_head(rows) + bias.to(rows.device)


def cross_keys_values(
    model: torch.nn.Module, encoder_outputs, mask: torch.Tensor, start: int
) -> DynamicCache | None:
    """Every decoder layer's cross-attention keys/values of the sources ``[B, S]`` (a ``DynamicCache``), from
    one decoder step of the model's own forward; None when its cache does not hold them (plain path)."""
    first = torch.full((mask.shape[0], 1), start, dtype=torch.long, device=mask.device)
    out = model.base_model(
        encoder_outputs=encoder_outputs,
        attention_mask=mask,
        decoder_input_ids=first,
        cache=EncoderDecoderCache(DynamicCache(), DynamicCache()),
        use_cache=True,
    )
    cache = getattr(out, "cache", None)
    if not isinstance(cache, EncoderDecoderCache):
        return None
    cross = cache.cross_attention_cache
    filled = all(cache.is_updated.get(i) for i in range(len(cross.layers)))
    return cross if cross.layers and filled else None


def select_cross(cross: DynamicCache, index: torch.Tensor, width: int) -> DynamicCache:
    """The keys/values of sources ``index`` (one row per pair), the first ``width`` source positions: one
    ``index_select`` per tensor into layers of a new cache (``DynamicCache(tensors)`` would copy them again,
    ``batch_select_indices``' advanced indexing is 2-3x slower on CPU)."""
    cut = DynamicCache()
    cut.layers = [
        _filled(
            layer.keys[:, :, :width].index_select(0, index), layer.values[:, :, :width].index_select(0, index)
        )
        for layer in cross.layers
    ]
    return cut


def _filled(keys: torch.Tensor, values: torch.Tensor) -> DynamicLayer:
    """A cache layer holding ``keys``/``values`` themselves (what ``DynamicLayer.update`` stores, uncopied)."""
    layer = DynamicLayer()
    layer.lazy_initialization(keys, values)
    layer.keys, layer.values = keys, values
    return layer


def cross_cache(cross: DynamicCache) -> EncoderDecoderCache:
    """A fresh cache for one forward: an empty self-attention half, ``cross`` as the (reused) cross half."""
    cache = EncoderDecoderCache(DynamicCache(), cross)
    cache.is_updated = dict.fromkeys(range(len(cross.layers)), True)
    return cache
