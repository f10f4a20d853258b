"""Tiny random seq2seq models and word-level tokenizers, built offline for the tests.

A random T5 at default init emits nearly constant output; ``initializer_factor=5`` makes rows differ and
a lifted EOS row in the output layer makes some rows stop early, so per-row EOS is exercised.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    BartConfig,
    BartForConditionalGeneration,
    PreTrainedTokenizerFast,
    T5Config,
    T5ForConditionalGeneration,
)

WORDS = (
    "the a of to and in is it for on with as by at from this that be are was not or an which def return "
    "self if else none true false value name list dict string file path data number index key line text "
    "object class function type error result count item get set add new open read write close run test "
    "check make find load save start stop time size part copy move sort join split first last next"
).split()
KINDS = ("t5", "t5v1.1", "bart")


def make_tiny_model(
    kind: str = "t5", seed: int = 0, vocab_size: int | None = None, init_scale: float = 5.0
) -> torch.nn.Module:
    """A small random model of ``kind`` (T5, T5 v1.1 with gated-gelu and untied embeddings, or BART).

    ``init_scale`` 5 gives varied outputs but saturated logits (std ~25, float32 rounding ~1e-5 relative);
    2 gives logits of std ~4, for tests that compare across batch shapes at an absolute tolerance.
    """
    torch.manual_seed(seed)
    vocab = vocab_size or len(WORDS) + 4
    if kind == "bart":
        eos_bias = {5.0: 10.0}.get(init_scale, 2.0)
        cfg = BartConfig(
            vocab_size=vocab,
            d_model=32,
            encoder_layers=2,
            decoder_layers=2,
            encoder_attention_heads=4,
            decoder_attention_heads=4,
            encoder_ffn_dim=64,
            decoder_ffn_dim=64,
            max_position_embeddings=256,
            init_std=0.1 * init_scale,
            forced_bos_token_id=None,
            forced_eos_token_id=None,
            no_repeat_ngram_size=0,
            bos_token_id=0,
            pad_token_id=1,
            eos_token_id=2,
            decoder_start_token_id=2,
        )
        model = BartForConditionalGeneration(cfg)
        with torch.no_grad():
            model.final_logits_bias[0, 2] += eos_bias  # make EOS reachable
    else:
        extra = {"feed_forward_proj": "gated-gelu", "tie_word_embeddings": False} if kind == "t5v1.1" else {}
        cfg = T5Config(
            vocab_size=vocab,
            d_model=32,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            decoder_start_token_id=0,
            eos_token_id=1,
            pad_token_id=0,
            initializer_factor=init_scale,
            **extra,
        )
        model = T5ForConditionalGeneration(cfg)
        if kind == "t5v1.1":
            # transformers 5 always ties T5's config (tie_word_embeddings=False only turns off output scaling),
            # so untie by hand: an lm_head of its own, as the T5 v1.1 / Flan-T5 checkpoints have
            head = (
                torch.randn_like(model.lm_head.weight) * init_scale
            )  # HF init of an untied head: factor * 1.0
            model.lm_head.weight = torch.nn.Parameter(head)
        with torch.no_grad():
            model.lm_head.weight[1] *= 2.5  # EOS reachable, so some rows stop early
            model.lm_head.weight[0] *= 0.1  # pad rarely chosen
    return model.eval()


def make_tiny_tokenizer(folder: Path, kind: str = "t5") -> PreTrainedTokenizerFast:
    """A word-level tokenizer over ``WORDS`` with the special ids ``kind`` expects, saved into ``folder``."""
    if kind == "bart":
        specials = ["<s>", "<pad>", "</s>", "<unk>"]
        template = "<s> $A </s>"
    else:
        specials = ["<pad>", "</s>", "<unk>", "<s>"]
        template = "$A </s>"
    vocab = {tok: i for i, tok in enumerate(specials + WORDS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(
        single=template, special_tokens=[(t, vocab[t]) for t in ("<s>", "</s>")]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", bos_token="<s>"
    )
    folder.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(folder)
    return tok


def make_tiny_model_dir(folder: Path, kind: str = "t5", seed: int = 0, init_scale: float = 2.0) -> Path:
    """Save a tiny model and its tokenizer as a Hugging Face folder that ``from_pretrained`` loads.

    ``init_scale`` 2 keeps logits moderate, so results of differently padded batches agree to ~1e-5.
    """
    model = make_tiny_model(kind, seed, init_scale=init_scale)
    model.save_pretrained(folder)
    make_tiny_tokenizer(folder, kind)
    return folder
