"""A zoo of tiny random models, one per ``AutoModelForSeq2SeqLM`` family, for the parity tests.

Each family is built offline in a fraction of a second: small sizes, an init scale raised so that outputs
vary (and the EOS row of the output layer lifted so that decoding stops within a few steps), eval mode,
seeded. Its word-level tokenizer puts the special tokens where the family's real checkpoints have them
(T5: pad = start = 0, eos = 1; BART: bos = 0, pad = 1, eos = 2, start = eos; Marian: eos = 0, pad = the last
id = start; mBART / M2M100 / NLLB: a source-language token in front, target-language tokens in the
vocabulary; ...), and the model carries the generation config its real checkpoints carry, scaled down
(BART-large-CNN: forced BOS/EOS, ``no_repeat_ngram_size`` 3, ``min_length``, beams; Marian opus-mt:
``bad_words_ids=[[pad]]``; mBART-50 / M2M100 / NLLB: ``forced_bos_token_id`` = the target language; ...).

``make_family(name)`` returns ``(model, tokenizer)``; :data:`FAMILIES` lists the names, and
:func:`processor_free` gives a copy of a model whose generation config adds no logits processors.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import GenerationConfig, PreTrainedTokenizerFast

from tests.helpers.tiny_models import WORDS

BART_SIZES = {
    "d_model": 16,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_ffn_dim": 32,
    "decoder_ffn_dim": 32,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "max_position_embeddings": 64,
}
T5_SIZES = {"d_model": 16, "d_kv": 4, "d_ff": 32, "num_layers": 2, "num_heads": 4}
T5_IDS = {"pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0}
T5_SPECIALS = ("<pad>", "</s>", "<unk>")
BART_IDS = {"bos_token_id": 0, "pad_token_id": 1, "eos_token_id": 2, "decoder_start_token_id": 2}
BART_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
MAX = {"max_length": 16}  # the real checkpoints' max_length, scaled down
CNN = {
    "no_repeat_ngram_size": 3,
    "min_length": 4,
    "num_beams": 4,
    "length_penalty": 2.0,
    "early_stopping": True,
}
CHAT = {"no_repeat_ngram_size": 3, "min_length": 4, "num_beams": 10, "length_penalty": 0.65}


@dataclass(frozen=True)
class Spec:
    """How to build one family: classes, special tokens (ids 0.. in order), tokenizer template, config."""

    config: str  # transformers config class
    model: str  # transformers model class
    specials: tuple[str, ...]  # special tokens, ids 0.. in this order
    template: str  # the tokenizer's post-processing template ("$A" = the text)
    kwargs: dict  # config arguments: sizes, special ids, the raised init scale
    generation: dict = field(default_factory=dict)  # generation settings (may name tokens: "tok:<name>")
    extra: tuple[str, ...] = ()  # language tokens etc., after the words
    pad_last: bool = False  # Marian: "<pad>" is the last id
    eos_lift: float = 2.0  # the EOS row of the output layer scaled by this (rows stop within a few steps)
    pad_scale: float = 0.1  # the pad row scaled by this (Marian: kept, so only bad_words_ids bans it)


def _t5(config: str, model: str, factor: float = 2.5, eos_lift: float = 2.0, **kwargs) -> Spec:
    cfg = {**T5_SIZES, **T5_IDS, "initializer_factor": factor, **kwargs}
    return Spec(config, model, T5_SPECIALS, "$A </s>", cfg, eos_lift=eos_lift)


def _bart(config: str, model: str, std: float = 0.6, specials=BART_SPECIALS, ids=BART_IDS, **kw) -> Spec:
    generation, lift = kw.pop("generation", {}), kw.pop("eos_lift", 2.0)
    template, extra = kw.pop("template", "$A </s>"), kw.pop("extra", ())
    cfg = {**BART_SIZES, **ids, "init_std": std, **kw}
    return Spec(config, model, specials, template, cfg, generation, extra, eos_lift=lift)


T5GEMMA_MODULE = {
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 4,
    "query_pre_attn_scalar": 4,
    "sliding_window": 8,
    "max_position_embeddings": 64,
    "initializer_range": 0.6,
    "pad_token_id": 0,
    "eos_token_id": [1, 4],
    "bos_token_id": 2,
}
PROPHETNET_IDS = {"pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 2, "decoder_start_token_id": 2}
BLENDER_IDS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "decoder_start_token_id": 1}
PEGASUS_IDS = {"pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0}

SPECS: dict[str, Spec] = {
    "t5": _t5("T5Config", "T5ForConditionalGeneration", eos_lift=3.0),
    "flan-t5": _t5(
        "T5Config",
        "T5ForConditionalGeneration",
        1.5,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        eos_lift=4.0,
    ),
    "mt5": _t5("MT5Config", "MT5ForConditionalGeneration", 1.5, eos_lift=4.0),
    "umt5": _t5("UMT5Config", "UMT5ForConditionalGeneration", 2.5),
    "longt5-local": _t5(
        "LongT5Config", "LongT5ForConditionalGeneration", 2.5, encoder_attention_type="local", local_radius=3
    ),
    "longt5-tglobal": _t5(
        "LongT5Config",
        "LongT5ForConditionalGeneration",
        2.5,
        encoder_attention_type="transient-global",
        local_radius=3,
        global_block_size=4,
    ),
    "switch": _t5(
        "SwitchTransformersConfig",
        "SwitchTransformersForConditionalGeneration",
        2.0,
        num_experts=4,
        expert_capacity=64,
        num_sparse_encoder_layers=1,
        num_sparse_decoder_layers=1,
        num_decoder_layers=2,
        eos_lift=1.0,
    ),
    "t5gemma": Spec(
        "T5GemmaConfig",
        "T5GemmaForConditionalGeneration",
        ("<pad>", "<eos>", "<bos>", "<unk>", "<end_of_turn>"),
        "$A",
        {"encoder": T5GEMMA_MODULE, "decoder": T5GEMMA_MODULE, "vocab_size": None},
    ),
    "bart": _bart(
        "BartConfig",
        "BartForConditionalGeneration",
        template="<s> $A </s>",
        generation={**CNN, **MAX, "forced_bos_token_id": 0, "forced_eos_token_id": 2},
    ),
    "mbart": _bart(
        "MBartConfig",
        "MBartForConditionalGeneration",
        template="en_XX $A </s>",
        extra=("en_XX", "ro_RO"),
        generation={**MAX, "num_beams": 5, "forced_bos_token_id": "tok:ro_RO", "forced_eos_token_id": 2},
    ),
    "plbart": _bart(
        "PLBartConfig",
        "PLBartForConditionalGeneration",
        template="$A </s> __java__",
        extra=("__java__", "__python__"),
        generation={**MAX, "forced_eos_token_id": 2},
        eos_lift=1.5,
    ),
    "pegasus": _bart(
        "PegasusConfig",
        "PegasusForConditionalGeneration",
        specials=("<pad>", "</s>", "<mask_1>", "<unk>"),
        ids=PEGASUS_IDS,
        generation={**MAX, "num_beams": 8, "length_penalty": 0.8, "forced_eos_token_id": 1},
    ),
    "pegasus_x": _bart(
        "PegasusXConfig",
        "PegasusXForConditionalGeneration",
        specials=("<pad>", "</s>", "<mask_1>", "<unk>"),
        ids=PEGASUS_IDS,
        block_size=4,
        num_global_tokens=2,
        generation={**MAX, "num_beams": 8, "length_penalty": 0.8, "forced_eos_token_id": 1},
    ),
    "bigbird_pegasus": _bart(
        "BigBirdPegasusConfig",
        "BigBirdPegasusForConditionalGeneration",
        specials=("<pad>", "</s>", "<s>", "<unk>"),
        ids={**PEGASUS_IDS, "bos_token_id": 2},
        attention_type="original_full",
        generation={**MAX, "num_beams": 5, "length_penalty": 0.8},
        eos_lift=3.0,
    ),
    "marian": Spec(
        "MarianConfig",
        "MarianMTModel",
        ("</s>", "<unk>"),
        "$A </s>",
        {**BART_SIZES, "eos_token_id": 0, "init_std": 0.6, "scale_embedding": True},
        {**MAX, "num_beams": 4, "bad_words_ids": "pad"},
        pad_last=True,
        eos_lift=1.0,
        pad_scale=1.0,
    ),
    "m2m100": _bart(
        "M2M100Config",
        "M2M100ForConditionalGeneration",
        template="__en__ $A </s>",
        extra=("__en__", "__fr__"),
        scale_embedding=True,
        generation={**MAX, "num_beams": 5, "early_stopping": True, "forced_bos_token_id": "tok:__fr__"},
    ),
    "nllb": _bart(
        "M2M100Config",
        "M2M100ForConditionalGeneration",
        template="eng_Latn $A </s>",
        extra=("eng_Latn", "fra_Latn"),
        scale_embedding=True,
        generation={**MAX, "num_beams": 4, "forced_bos_token_id": "tok:fra_Latn"},
    ),
    "nllb_moe": _bart(
        "NllbMoeConfig",
        "NllbMoeForConditionalGeneration",
        template="eng_Latn $A </s>",
        extra=("eng_Latn", "fra_Latn"),
        num_experts=4,
        expert_capacity=64,
        encoder_sparse_step=2,
        decoder_sparse_step=2,
        scale_embedding=True,
        generation={**MAX, "num_beams": 4, "forced_bos_token_id": "tok:fra_Latn"},
    ),
    "led": _bart(
        "LEDConfig",
        "LEDForConditionalGeneration",
        template="<s> $A </s>",
        attention_window=4,
        max_encoder_position_embeddings=64,
        max_decoder_position_embeddings=64,
        generation={**CNN, **MAX},
    ),
    "prophetnet": Spec(
        "ProphetNetConfig",
        "ProphetNetForConditionalGeneration",
        ("[PAD]", "[UNK]", "[SEP]", "[X_SEP]"),
        "$A [SEP]",
        {
            "hidden_size": 16,
            "encoder_ffn_dim": 32,
            "decoder_ffn_dim": 32,
            "num_encoder_layers": 2,
            "num_decoder_layers": 2,
            "num_encoder_attention_heads": 4,
            "num_decoder_attention_heads": 4,
            "max_position_embeddings": 64,
            "ngram": 2,
            "num_buckets": 8,
            "relative_max_distance": 16,
            "init_std": 0.6,
            **PROPHETNET_IDS,
        },
        {**MAX, "no_repeat_ngram_size": 3, "min_length": 4, "num_beams": 4, "length_penalty": 2.0},
        eos_lift=4.0,
    ),
    "blenderbot": _bart(
        "BlenderbotConfig",
        "BlenderbotForConditionalGeneration",
        specials=("<pad>", "<s>", "</s>", "<unk>"),
        ids=BLENDER_IDS,
        generation={**CHAT, **MAX, "encoder_no_repeat_ngram_size": 3, "forced_eos_token_id": 2},
    ),
    "blenderbot_small": _bart(
        "BlenderbotSmallConfig",
        "BlenderbotSmallForConditionalGeneration",
        specials=("__null__", "__start__", "__end__", "__unk__"),
        ids=BLENDER_IDS,
        template="$A __end__",
        generation={**CHAT, **MAX},
        eos_lift=4.0,
    ),
    "fsmt": Spec(
        "FSMTConfig",
        "FSMTForConditionalGeneration",
        BART_SPECIALS,
        "$A </s>",
        {**BART_SIZES, **BART_IDS, "langs": ["en", "de"], "init_std": 0.6, "tie_word_embeddings": False},
        {**MAX, "num_beams": 5, "forced_eos_token_id": 2},
    ),
}
FAMILIES = tuple(SPECS)
# families whose classes this transformers version lacks (filled at import): name -> why
MISSING = {
    name: f"transformers {transformers.__version__} has no {spec.model}"
    for name, spec in SPECS.items()
    if not hasattr(transformers, spec.model) or not hasattr(transformers, spec.config)
}


def vocabulary(spec: Spec) -> list[str]:
    """The tokens by id: specials, words, extra tokens (and Marian's pad last)."""
    tokens = list(spec.specials) + list(WORDS) + list(spec.extra)
    return tokens + ["<pad>"] if spec.pad_last else tokens


def make_tokenizer(spec: Spec) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over :func:`vocabulary` with the family's special tokens and template."""
    tokens = vocabulary(spec)
    vocab = {tok: i for i, tok in enumerate(tokens)}
    names = {"pad": ("<pad>", "[PAD]", "__null__"), "eos": ("</s>", "<eos>", "[SEP]", "__end__")}
    names |= {"unk": ("<unk>", "[UNK]", "__unk__"), "bos": ("<s>", "<bos>", "__start__")}
    roles = {role: next((t for t in cands if t in vocab), None) for role, cands in names.items()}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=roles["unk"]))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    used = [t for t in spec.template.split() if t != "$A"]
    core.post_processor = processors.TemplateProcessing(
        single=spec.template, special_tokens=[(t, vocab[t]) for t in used]
    )
    kwargs = {f"{role}_token": tok for role, tok in roles.items() if tok is not None}
    tok = PreTrainedTokenizerFast(tokenizer_object=core, **kwargs)
    if spec.extra:  # language tokens are special: never split, skipped when decoding
        tok.add_special_tokens({"additional_special_tokens": list(spec.extra)})
    return tok


def _config(spec: Spec, vocab_size: int, pad: int):
    cls = getattr(transformers, spec.config)
    kwargs = dict(spec.kwargs)
    if spec.config == "T5GemmaConfig":
        module = {**kwargs.pop("encoder"), "vocab_size": vocab_size}
        kwargs.pop("decoder")
        kwargs |= {"encoder": dict(module), "decoder": dict(module), "vocab_size": vocab_size}
        kwargs |= {"pad_token_id": 0, "eos_token_id": [1, 4], "bos_token_id": 2}
    elif spec.config == "FSMTConfig":
        kwargs |= {"src_vocab_size": vocab_size, "tgt_vocab_size": vocab_size}
    elif spec.pad_last:  # Marian: pad = decoder start = the last id
        kwargs |= {"vocab_size": vocab_size, "pad_token_id": pad, "decoder_start_token_id": pad}
    else:
        kwargs["vocab_size"] = vocab_size
    return cls(**kwargs)


def _generation(spec: Spec, config, vocab: dict[str, int]) -> GenerationConfig:
    """The family's generation config: its special ids from the model config, and the spec's settings."""
    settings = {}
    for key, value in spec.generation.items():
        if isinstance(value, str) and value.startswith("tok:"):
            value = vocab[value[4:]]
        elif key == "bad_words_ids":
            value = [[config.pad_token_id]]
        settings[key] = value
    ids = {}
    for name in ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id"):
        value = getattr(config, name, None)
        if value is None and spec.config == "T5GemmaConfig":
            value = getattr(config.decoder, name, None)
        if value is not None:
            ids[name] = value
    return GenerationConfig(**ids, **settings)


def make_family(name: str, seed: int = 0) -> tuple[torch.nn.Module, PreTrainedTokenizerFast]:
    """The tiny random model of family ``name`` (eval mode, seeded) and its tokenizer."""
    if name in MISSING:
        raise ValueError(MISSING[name])
    spec = SPECS[name]
    tokenizer = make_tokenizer(spec)
    vocab = tokenizer.get_vocab()
    torch.manual_seed(seed)
    config = _config(spec, len(vocabulary(spec)), len(vocabulary(spec)) - 1)
    model = getattr(transformers, spec.model)(config).eval()
    model.generation_config = _generation(spec, config, vocab)
    eos = model.generation_config.eos_token_id
    eos = eos[0] if isinstance(eos, list) else eos
    with torch.no_grad():  # EOS reachable (rows stop early), pad rarely chosen
        head = model.get_output_embeddings().weight
        head[eos] *= spec.eos_lift
        pad = model.generation_config.pad_token_id
        if pad is not None and pad != eos:
            head[pad] *= spec.pad_scale
    return model, tokenizer


def processor_free(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` whose generation config keeps only its special ids (no logits processors)."""
    plain = copy.deepcopy(model)
    old = model.generation_config
    ids = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")
    plain.generation_config = GenerationConfig(
        **{k: getattr(old, k) for k in ids if getattr(old, k) is not None}
    )
    return plain
