"""The BART workload of ``bench_inflight.py``: in-flight batching through the model's own forward.

A random model of BART-base's shape (d_model 768, 6+6 layers, 12 heads, d_ff 3072, vocab 50,265, seed 0,
``init_std`` 0.1) with a CNN-summariser-like generation config: forced BOS/EOS, ``no_repeat_ngram_size`` 3
and ``exponential_decay_length_penalty`` (its EOS score raised step by step, so each row ends at its own EOS
at its own length: a random BART otherwise never reaches EOS). Sources of 32-256 random tokens between
``<s>`` and ``</s>``, longest first. CTranslate2 is not run here (its converter wants a BART tokenizer).
"""

from __future__ import annotations

from pathlib import Path

import torch

BART_BASE = {
    "vocab_size": 50265,
    "d_model": 768,
    "encoder_layers": 6,
    "decoder_layers": 6,
    "encoder_attention_heads": 12,
    "decoder_attention_heads": 12,
    "encoder_ffn_dim": 3072,
    "decoder_ffn_dim": 3072,
    "max_position_embeddings": 1024,
}


def bart_workload(rows: int, steps: int, decay: float, tmp: Path):
    from bench_inflight import Workload
    from transformers import BartConfig, BartForConditionalGeneration, GenerationConfig

    torch.manual_seed(0)
    model = BartForConditionalGeneration(BartConfig(**BART_BASE, init_std=0.1)).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=2,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
        forced_bos_token_id=0,
        forced_eos_token_id=2,
        no_repeat_ngram_size=3,
        exponential_decay_length_penalty=(1, decay),
        max_length=steps + 1,
    )
    g = torch.Generator().manual_seed(4)
    lengths = sorted(torch.randint(32, 257, (rows,), generator=g).tolist(), reverse=True)
    ids = torch.ones(rows, lengths[0], dtype=torch.long)  # pad 1
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(4, BART_BASE["vocab_size"], (n,), generator=g)
        ids[i, 0], ids[i, n - 1] = 0, 2  # <s> ... </s>
    mask = (ids != 1).long()
    return Workload(
        "bart",
        f"random BART-base-shaped BART (d_model 768, 6+6 layers, 12 heads, d_ff 3072, vocab 50,265, seed 0, "
        f"init_std 0.1; the model's own forward: in-flight through HFSlots), generation config forced BOS/EOS, "
        f"no_repeat_ngram_size 3, exponential_decay_length_penalty (1, {decay}): {rows} rows, sources of "
        f"32-256 random tokens, max_new_tokens {steps}, each row's own EOS",
        model,
        ids,
        mask,
        steps,
        [],
        None,
        None,
        tmp,
    )
