"""A saved tiny T5 that gives NaN for long enough inputs: one NaN entry in a relative position bias.

The approach of ``tests/runs/test_numerical_faults.py``: the bias bucket of relative distance ``DISTANCE``
becomes NaN, so a sequence of more than ``DISTANCE`` tokens (which has that distance) goes NaN and a
shorter one stays exactly as on the intact model. ``encoder=True`` spoils the encoder self-attention (long
sources, and in ``hyp->ref`` long hypotheses), ``decoder=True`` the decoder self-attention (long targets).
Score one pair per forward pass (one source per batch, a small ``max_tokens_per_batch``): a short row
padded beside a long one would be spoiled too (a masked position's zero attention weight times its NaN
value is NaN).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from transformers import AutoModelForSeq2SeqLM
from transformers.models.t5.modeling_t5 import T5Attention

DISTANCE = 7


def nan_bias_model(t5_dir: Path, folder: Path, *, encoder: bool = True, decoder: bool = True) -> Path:
    """Save a copy of the T5 in ``t5_dir`` with the bias of distance ``DISTANCE`` set to NaN."""
    model = AutoModelForSeq2SeqLM.from_pretrained(t5_dir)
    cfg = model.config

    def bucket(distance: int, bidirectional: bool) -> int:
        return int(
            T5Attention._relative_position_bucket(
                torch.tensor(distance),
                bidirectional=bidirectional,
                num_buckets=cfg.relative_attention_num_buckets,
                max_distance=cfg.relative_attention_max_distance,
            )
        )

    with torch.no_grad():
        if encoder:
            bias = model.encoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight
            bias[bucket(DISTANCE, True), 0] = float("nan")
        if decoder:
            bias = model.decoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight
            bias[bucket(-DISTANCE, False), 0] = float("nan")
    model.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (t5_dir / name).exists():
            shutil.copy(t5_dir / name, folder / name)
    return folder
