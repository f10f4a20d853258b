"""Decoder slots of any supported Hugging Face seq2seq model for in-flight batching, through its own forward.

The counterpart of :class:`t5score.engine.t5.slots.T5Slots` for the generic engine (BART, Marian, ..., or
``engine="hf"``). Hugging Face's dynamic cache appends one key/value column per step for every row, so the
slots live in one shared window of columns, each slot's history right-aligned in it:

1. A step appends a column; slot ``s`` at position ``p`` attends to the last ``p + 1`` columns only (a 2-D
   decoder attention mask, ``[N, L]``), so what a slot's earlier occupant left in the window is masked.
2. Columns no slot still needs are cropped from the front: the window is ``max(position) + 1`` wide.
3. A slot's relative distances are its own (right-aligned histories), which is all T5-style relative
   position biases read; a model with absolute decoder positions (``decoder.embed_positions``) gets each
   slot's own row of its position embeddings instead of the window's, through a forward hook that returns
   rows of a table read once from the module itself (:func:`decoder_probe`).
4. :meth:`HFSlots.admit` writes a new source's cross-attention keys/values into its slot: each layer's
   cross-attention module, found by the probe (it is the one called with ``key_value_states``), projects the
   encoder states into a fresh cache; the shared cross-attention cache is marked as computed, so the
   model's forward reads the slots' keys/values instead of projecting the encoder states again.

Which models this covers is :data:`SLOT_CLASSES` (each checked against decoding every row alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import transformers
from transformers import DynamicCache, EncoderDecoderCache
from transformers.cache_utils import DynamicLayer

from t5score.engine.hf import encoder_output

#: the exact transformers classes whose decoder runs right-aligned in a shared window with the same numbers as
#: each row alone (tests/engine/test_inflight_hf.py; subclasses and remote code are not admitted: their forward
#: may differ). Left out: ProphetNet (n-gram streams depend on the target's length), FSMT (builds its causal
#: mask from input_ids only), the mixture-of-experts models (expert capacity makes a row's routing depend on
#: the other rows), T5Gemma (decoder sliding windows), LED (its decoder drops the decoder attention mask on
#: single-token steps).
SLOT_CLASSES = (
    "T5ForConditionalGeneration",
    "MT5ForConditionalGeneration",
    "UMT5ForConditionalGeneration",
    "LongT5ForConditionalGeneration",
    "BartForConditionalGeneration",
    "MBartForConditionalGeneration",
    "PLBartForConditionalGeneration",
    "MarianMTModel",
    "PegasusForConditionalGeneration",
    "PegasusXForConditionalGeneration",
    "M2M100ForConditionalGeneration",
    "BlenderbotForConditionalGeneration",
    "BlenderbotSmallForConditionalGeneration",
    "BigBirdPegasusForConditionalGeneration",
)
#: the families of :data:`SLOT_CLASSES`, for messages
SLOT_FAMILIES = tuple(
    name.removesuffix("ForConditionalGeneration").removesuffix("MTModel") for name in SLOT_CLASSES
)


def supports_slots(model: torch.nn.Module) -> bool:
    """True when :class:`HFSlots` decodes ``model``: its class is one of :data:`SLOT_CLASSES`, exactly."""
    return any(type(model) is getattr(transformers, name, None) for name in SLOT_CLASSES)


@dataclass
class DecoderProbe:
    """What one plain forward of the decoder shows: its cross-attention modules by layer, and the rows of
    its absolute position embeddings (None: it has none)."""

    cross_attention: dict[int, torch.nn.Module]
    positions: torch.Tensor | None  # [T, D] the embedding added at decoder positions 0..T-1


def decoder_probe(
    model: torch.nn.Module, steps: int, start: int, width: int, device: torch.device
) -> DecoderProbe:
    """Run the decoder once over ``steps`` start tokens (one row, zero encoder states) and record which module
    of each layer is called with ``key_value_states`` and what ``decoder.embed_positions`` returns."""
    cross: dict[int, torch.nn.Module] = {}
    seen: list[torch.Tensor] = []

    def attention_call(module, args, kwargs):
        if kwargs.get("key_value_states") is not None and getattr(module, "layer_idx", None) is not None:
            cross[module.layer_idx] = module

    hooks = [
        m.register_forward_pre_hook(attention_call, with_kwargs=True) for m in model.get_decoder().modules()
    ]
    embed = getattr(model.get_decoder(), "embed_positions", None)
    if embed is not None:
        hooks.append(embed.register_forward_hook(lambda module, args, out: seen.append(out)))
    hidden = torch.zeros(1, 1, width, device=device, dtype=next(model.parameters()).dtype)
    try:
        model(
            encoder_outputs=encoder_output(model, hidden),
            attention_mask=torch.ones(1, 1, dtype=torch.long, device=device),
            decoder_input_ids=torch.full((1, steps), start, dtype=torch.long, device=device),
            use_cache=False,
        )
    finally:
        for hook in hooks:
            hook.remove()
    table = seen[0].reshape(steps, -1) if seen else None
    return DecoderProbe(cross, table)


class HFSlots:
    """``slots`` decoder rows through the model's own forward, each at its own position (the T5Slots interface)."""

    def __init__(
        self,
        model: torch.nn.Module,
        slots: int,
        max_steps: int,
        source_length: int,
        dtype: torch.dtype,
        device: torch.device,
        *,
        start: int,
        hidden_size: int,
    ):
        self.model, self.max_steps = model, max_steps
        positions = getattr(model.config, "max_position_embeddings", None) or max_steps  # the probe's length
        self.probe = decoder_probe(model, min(max_steps, positions), start, hidden_size, device)
        self.enc = torch.zeros(slots, source_length, hidden_size, dtype=dtype, device=device)  # [N, S, D]
        self.enc_mask = torch.zeros(slots, source_length, dtype=torch.long, device=device)  # [N, S]
        self.cross_k: list[torch.Tensor] = []  # per layer [N, H, S, dk], allocated at the first admit
        self.cross_v: list[torch.Tensor] = []
        self.self_cache = DynamicCache()
        self.window = 0  # self-attention columns held

    def _project(self, hidden: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each layer's cross-attention keys and values ``[k, H, s, dk]`` of encoder states ``[k, s, D]``."""
        fresh = EncoderDecoderCache(DynamicCache(), DynamicCache())
        query = hidden.new_zeros(hidden.shape[0], 1, hidden.shape[-1])  # [k, 1, D] (its output is unused)
        out = []
        for i in sorted(self.probe.cross_attention):
            self.probe.cross_attention[i](hidden_states=query, key_value_states=hidden, cache=fresh)
            layer = fresh.cross_attention_cache.layers[i]
            out.append((layer.keys, layer.values))
        return out

    def admit(self, slot: torch.Tensor, encoder_hidden: torch.Tensor, mask: torch.Tensor) -> None:
        """Put sources (encoder output ``[k, s, D]``, mask ``[k, s]``) into the slots ``slot`` (``[k]``)."""
        s = encoder_hidden.shape[1]
        projected = self._project(encoder_hidden)
        if not self.cross_k:
            n, width = self.enc.shape[:2]
            for k, _ in projected:
                shape = (n, k.shape[1], width, k.shape[-1])
                self.cross_k.append(torch.zeros(shape, dtype=k.dtype, device=k.device))
                self.cross_v.append(torch.zeros(shape, dtype=k.dtype, device=k.device))
        for i, (k, v) in enumerate(projected):
            self.cross_k[i][slot, :, :s], self.cross_v[i][slot, :, :s] = k, v
        self.enc[slot] = 0
        self.enc[slot, :s] = encoder_hidden.to(self.enc.dtype)
        self.enc_mask[slot] = 0
        self.enc_mask[slot, :s] = mask

    def select(self, keep: torch.Tensor) -> None:
        """Keep only the slots ``keep`` (when no source is left to fill the others)."""
        self.cross_k = [k.index_select(0, keep) for k in self.cross_k]
        self.cross_v = [v.index_select(0, keep) for v in self.cross_v]
        self.enc, self.enc_mask = self.enc.index_select(0, keep), self.enc_mask.index_select(0, keep)
        self.self_cache.batch_select_indices(keep)

    def _cache(self, width: int) -> EncoderDecoderCache:
        """The shared cache of this step: the self-attention window and the slots' cross keys/values,
        marked as computed (the forward reads them instead of projecting the encoder states)."""
        cross = DynamicCache()
        for k, v in zip(self.cross_k, self.cross_v, strict=True):
            layer = DynamicLayer()  # views of the slots' keys/values (update() would copy them)
            layer.lazy_initialization(k, v)
            layer.keys, layer.values = k[:, :, :width], v[:, :, :width]
            cross.layers.append(layer)
        cache = EncoderDecoderCache(self.self_cache, cross)
        for i in range(len(self.cross_k)):
            cache.is_updated[i] = True
        return cache

    def step(
        self, ids: torch.Tensor, pos: torch.Tensor, length: int, width: int | None = None
    ) -> torch.Tensor:
        """Logits ``[N, V]`` of the tokens ``ids`` (``[N]``) at positions ``pos`` (``[N]``); ``length`` =
        ``max(pos) + 1``; ``width``: the longest source among the slots."""
        if length > self.max_steps:
            raise RuntimeError(f"decoder cache holds {self.max_steps} steps")
        drop = self.window - (length - 1)  # columns before every slot's history
        if drop > 0:
            for layer in self.self_cache.layers:
                layer.keys, layer.values = layer.keys[:, :, drop:], layer.values[:, :, drop:]
            self.window -= drop
        columns = torch.arange(self.window + 1, device=ids.device)
        decoder_mask = (columns[None, :] >= self.window - pos[:, None]).long()  # [N, L]: each slot's own
        w = width or self.enc.shape[1]
        hook = None
        if self.probe.positions is not None:  # each slot's own position embedding, not the window's
            if length > len(self.probe.positions):
                raise ValueError(
                    f"decoder position {length - 1} is beyond the model's {len(self.probe.positions)} "
                    "position embeddings (max_position_embeddings); lower max_new_tokens"
                )
            rows = self.probe.positions.index_select(0, pos)[:, None, :]  # [N, 1, D]
            embed = self.model.get_decoder().embed_positions
            hook = embed.register_forward_hook(lambda module, args, out: rows.to(out.dtype))
        try:
            out = self.model(
                encoder_outputs=encoder_output(self.model, self.enc[:, :w]),
                attention_mask=self.enc_mask[:, :w],
                decoder_input_ids=ids[:, None],
                decoder_attention_mask=decoder_mask,
                cache=self._cache(w),
                use_cache=True,
            )
        finally:
            if hook is not None:
                hook.remove()
        self.window += 1
        return out.logits[:, -1, :]
