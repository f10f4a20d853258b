"""The model's generation config in decoding: transformers' own logits processors, built as ``generate``
builds them for ``generate(do_sample=False, num_beams=1)``.

:func:`resolve_generation` turns a model and :class:`~t5score.engine.options.DecodeOptions` into a
:class:`Generation`: a copy of ``model.generation_config`` (or, with ``use_generation_config=False``, an
empty one carrying only the special tokens) with the options' overrides, ``forced_bos_token`` and length
applied, its special tokens prepared by ``model._prepare_special_tokens``, the decoding length as
``generate`` derives it (``max_new_tokens``, else the config's ``max_length - 1`` -- an encoder-decoder's
decoder input counts the start token --, else 64), and the one warning line that names every setting
greedy decoding does not use (beam search, sampling, stopping criteria...; with ``num_beams > 1`` the
config's ``num_beams``, ``length_penalty`` and ``early_stopping`` are not named: beam search uses them).
:meth:`Generation.processors` builds the batch's processors with ``model._get_logits_processor`` (forced
BOS/EOS, ``min_length``, ``no_repeat_ngram_size``, ``bad_words_ids``, ``suppress_tokens``, repetition
penalties...): none are re-implemented here. A config that adds no processor gives ``None``, and decoding pays nothing for it.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessorList
from transformers.generation.logits_process import (
    EncoderNoRepeatNGramLogitsProcessor,
    EncoderRepetitionPenaltyLogitsProcessor,
)

from t5score.engine.modeling import check_token_ids, special_tokens, vocab_size
from t5score.engine.options import DecodeOptions

DEFAULT_MAX_NEW_TOKENS = 64  # when neither the options nor the generation config give a length

#: Settings of beam search, of sampling, and settings t5score does not implement (stopping criteria,
#: other decoding strategies): named in the warning line when set to a non-default value.
BEAM_SETTINGS = (
    "num_beams",
    "num_beam_groups",
    "diversity_penalty",
    "length_penalty",
    "early_stopping",
    "num_return_sequences",
    "constraints",
    "force_words_ids",
)
#: The generation config's beam settings beam search (options num_beams > 1) uses or replaces by its own.
BEAM_HONOURED = ("num_beams", "length_penalty", "early_stopping")
SAMPLING_SETTINGS = (
    "do_sample",
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "top_h",
    "typical_p",
    "epsilon_cutoff",
    "eta_cutoff",
)
UNSUPPORTED_SETTINGS = (
    "guidance_scale",
    "max_time",
    "stop_strings",
    "token_healing",
    "penalty_alpha",
    "dola_layers",
    "use_mtp",
    "prompt_lookup_num_tokens",
)
#: (settings, how the warning calls one of them / several)
GROUPS = (
    (BEAM_SETTINGS, ("a beam-search setting", "beam-search settings")),
    (SAMPLING_SETTINGS, ("a sampling setting", "sampling settings")),
    (UNSUPPORTED_SETTINGS, ("not supported", "not supported")),
)
#: Settings honoured through the logits processors (reported in run.json when not default).
PROCESSOR_SETTINGS = (
    "min_length",
    "min_new_tokens",
    "repetition_penalty",
    "encoder_repetition_penalty",
    "no_repeat_ngram_size",
    "encoder_no_repeat_ngram_size",
    "bad_words_ids",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "remove_invalid_values",
    "exponential_decay_length_penalty",
    "suppress_tokens",
    "begin_suppress_tokens",
    "sequence_bias",
    "renormalize_logits",
    "watermarking_config",
)
#: Processors holding per-row state (the encoder ids of the batch): rebuilt when rows leave the batch.
PER_ROW_PROCESSORS = (EncoderNoRepeatNGramLogitsProcessor, EncoderRepetitionPenaltyLogitsProcessor)


def _is_set(config: GenerationConfig, name: str, defaults: dict[str, Any]) -> bool:
    value = getattr(config, name, None)
    return value is not None and value != defaults.get(name)


def _beam_names(names: tuple[str, ...], beams: bool) -> tuple[str, ...]:
    """``names`` less the settings beam search honours (or its options replace) when decoding with beams."""
    return tuple(n for n in names if n not in BEAM_HONOURED) if beams else names


def _named(config: GenerationConfig, names: tuple[str, ...], defaults: dict[str, Any]) -> list[str]:
    return [f"{name}={getattr(config, name)!r}" for name in names if _is_set(config, name, defaults)]


@dataclass
class Generation:
    """The generation settings in force for one model and one set of options (see the module doc)."""

    config: GenerationConfig  # prepared: special-token tensors set, do_sample False, num_beams 1
    max_new_tokens: int
    decoder_start_token_id: int
    eos_token_ids: tuple[int, ...]
    pad_token_id: int
    processor_names: list[str] = field(default_factory=list)  # empty: the config adds no processor
    settings: dict[str, Any] = field(default_factory=dict)  # non-default settings honoured
    ignored: list[str] = field(default_factory=list)  # "name=value" of settings greedy decoding ignores
    warning: str | None = None  # the one line naming ``ignored``
    use_generation_config: bool = True  # False: built from the raw model's special tokens alone

    def processors(self, model: torch.nn.Module, input_ids: torch.Tensor) -> LogitsProcessorList | None:
        """The processors of a batch whose encoder input is ``input_ids`` (``[B, S]``), as ``generate``
        builds them; ``None`` when the config adds none."""
        if not self.processor_names:
            return None
        return model._get_logits_processor(
            generation_config=self.config,
            input_ids_seq_length=1,  # the decoder input: its start token
            encoder_input_ids=input_ids,
            device=input_ids.device,
            model_kwargs={},
        )

    def summary(self) -> dict[str, Any]:
        """What ``run.json`` records under ``generation``."""
        return {
            "use_generation_config": self.use_generation_config,
            "max_new_tokens": self.max_new_tokens,
            "decoder_start_token_id": self.decoder_start_token_id,
            "eos_token_ids": list(self.eos_token_ids),
            "settings": self.settings,
            "processors": self.processor_names,
            "ignored": self.ignored,
        }


def has_per_row_state(processors: LogitsProcessorList) -> bool:
    """True when some processor holds per-row state (the batch's encoder ids)."""
    return any(isinstance(p, PER_ROW_PROCESSORS) for p in processors)


def _base_config(model: torch.nn.Module, use_generation_config: bool) -> GenerationConfig:
    if use_generation_config and getattr(model, "generation_config", None) is not None:
        return copy.deepcopy(model.generation_config)
    ids = special_tokens(model)  # the raw model alone: only its special tokens
    return GenerationConfig(
        decoder_start_token_id=ids.decoder_start_token_id,
        bos_token_id=ids.bos_token_id,
        eos_token_id=list(ids.eos_token_ids),
        pad_token_id=ids.pad_token_id,
    )


def resolve_generation(model: torch.nn.Module, options: DecodeOptions, warn: bool = False) -> Generation:
    """The :class:`Generation` of ``model`` under ``options``; ``warn`` emits its warning line (once per
    distinct line, by Python's warning filter). One ValueError line names an unknown override, a bad length,
    a token id outside the vocabulary, or a value transformers' own checks or logits processors refuse
    (these run once here on a dummy step, so a bad setting fails before any row is decoded)."""
    try:
        return _resolve(model, options, warn)
    except (TypeError, IndexError, RuntimeError) as err:  # a value of the wrong type or range
        raise _refused(options, err) from None


def _refused(options: DecodeOptions, err: Exception) -> ValueError:
    """One line: the settings (the overrides given, else the model's own) and transformers' objection."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return ValueError(f"generation_config {options.generation_config or 'of the model'}: {text}")


def _resolve(model: torch.nn.Module, options: DecodeOptions, warn: bool) -> Generation:
    base = _base_config(model, options.use_generation_config)
    overrides = dict(options.generation_config or {})
    if options.forced_bos_token is not None:
        overrides["forced_bos_token_id"] = forced_bos_id(options.forced_bos_token)
    has_default_max_length = overrides.get("max_length") is None and base.max_length is None
    config = base
    config.update(**GenerationConfig._get_default_generation_params(), defaults_only=True)
    unknown = config.update(**overrides)
    if unknown:
        raise ValueError(f"generation_config: unknown setting(s) {', '.join(sorted(unknown))}")
    defaults = GenerationConfig._get_default_generation_params()
    sampled, beams = options.num_samples > 0, options.num_beams > 1
    how = "t5score samples with its own temperature/top_p" if sampled else "t5score decodes greedily"
    if beams:
        how = "t5score decodes with its own beam settings"
    groups = [(_beam_names(names, beams), what) for names, what in GROUPS]
    named = {what: _named(config, names, defaults) for names, what in groups}
    ignored = [item for items in named.values() for item in items]
    warning = None
    if ignored:
        said = "; ".join(
            f"{', '.join(items)} {'are' if len(items) > 1 else 'is'} {what[len(items) > 1]}"
            for what, items in named.items()
            if items
        )
        warning = f"generation config: {said}; {how}, these are ignored"
        if not beams and _is_set(config, "num_beams", defaults):
            warning += "; pass num_beams to decode with beam search"
    config.do_sample, config.num_beams, config.guidance_scale = False, 1, None
    # the length, as generate's _prepare_generated_length for a decoder input of one token
    if options.max_new_tokens is not None:
        config.max_new_tokens = options.max_new_tokens
    if config.max_new_tokens is None and has_default_max_length:
        config.max_new_tokens = DEFAULT_MAX_NEW_TOKENS  # t5score's default, where generate takes 20
    if config.max_new_tokens is not None:
        config.max_length = config.max_new_tokens + 1
    if config.min_new_tokens is not None:
        config.min_length = config.min_new_tokens + 1
    max_new_tokens = int(config.max_length) - 1
    if max_new_tokens < 1:
        raise ValueError(f"generation config max_length={config.max_length} leaves no token to generate")
    device = next(model.parameters()).device
    if config.decoder_start_token_id is None and config.bos_token_id is None:
        config.decoder_start_token_id = special_tokens(model).decoder_start_token_id
    if config.eos_token_id is None:
        config.eos_token_id = list(special_tokens(model).eos_token_ids)
    vocab = vocab_size(model)
    check_token_ids(config, vocab)
    model._prepare_special_tokens(config, kwargs_has_attention_mask=True, device=device)
    eos = tuple(int(i) for i in config._eos_token_tensor.tolist())
    probe = model._get_logits_processor(
        generation_config=config,
        input_ids_seq_length=1,
        encoder_input_ids=torch.ones(1, 1, dtype=torch.long, device=device),
        device=device,
        model_kwargs={},
    )
    start = torch.full((1, 1), int(config._decoder_start_token_tensor), device=device)
    try:  # processors check some settings (bad_words_ids, sequence_bias...) on their first call
        probe(start, torch.zeros(1, vocab, device=device))
    except ValueError as err:
        raise _refused(options, err) from None
    generation = Generation(
        config=config,
        max_new_tokens=max_new_tokens,
        decoder_start_token_id=int(config._decoder_start_token_tensor),
        eos_token_ids=eos,
        pad_token_id=int(config._pad_token_tensor),
        processor_names=[type(p).__name__ for p in probe],
        settings={
            name: getattr(config, name) for name in PROCESSOR_SETTINGS if _is_set(config, name, defaults)
        },
        ignored=ignored,
        warning=warning,
        use_generation_config=options.use_generation_config,
    )
    if warn and warning:
        warnings.warn(warning, UserWarning, stacklevel=3)  # the caller of resolve_generation
    return generation


def forced_bos_id(token: str | int, tokenizer=None) -> int:
    """The id of ``forced_bos_token``: an int, a string of digits, or a token string (``fra_Latn``) looked
    up in ``tokenizer``; a ValueError in one line when it is not a token."""
    if isinstance(token, int) and not isinstance(token, bool):
        return token
    text = str(token).strip()
    if text.isdigit():
        return int(text)
    if tokenizer is None:
        raise ValueError(
            f"forced_bos_token {text!r} is a token string: it needs the tokenizer to find its id"
        )
    found = tokenizer.convert_tokens_to_ids(text)
    unk = getattr(tokenizer, "unk_token_id", None)
    if found is None or (found == unk and text != getattr(tokenizer, "unk_token", None)):
        raise ValueError(f"forced_bos_token {text!r} is not a token of the model's tokenizer")
    return int(found)


def with_token_ids(options: DecodeOptions, tokenizer) -> DecodeOptions:
    """``options`` with ``forced_bos_token`` turned into its id (unchanged when it is unset or an id)."""
    if options.forced_bos_token is None or isinstance(options.forced_bos_token, int):
        return options
    import dataclasses

    return dataclasses.replace(options, forced_bos_token=forced_bos_id(options.forced_bos_token, tokenizer))
