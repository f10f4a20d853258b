"""Which engine runs a model, decided in one place for decoding and for teacher-forced scoring.

``engine`` is one of :data:`t5score.engine.options.ENGINES`: ``"auto"`` takes the fast T5 kernels
(:mod:`t5score.engine.t5`) when :func:`t5score.engine.t5.kernels.supports` the model and the model's own
forward (:mod:`t5score.engine.hf`) otherwise; ``"hf"`` always the model's forward; ``"t5"`` requires the
fast kernels.
"""

from __future__ import annotations

import torch
from transformers.modeling_outputs import BaseModelOutput

from t5score.engine.hf import HFForcedDecoder, HFStepper
from t5score.engine.options import check_engine
from t5score.engine.t5 import kernels
from t5score.engine.t5.forced import T5ForcedDecoder
from t5score.engine.t5.step import T5Stepper


def uses_t5_kernels(model: torch.nn.Module, engine: str) -> bool:
    """True when ``engine`` runs ``model`` (in eval mode) on the fast T5 kernels; a ValueError when
    ``engine="t5"`` cannot."""
    check_engine(engine)
    supported = kernels.supports(model)
    if engine == "t5" and not supported:
        raise ValueError(f"engine='t5' needs a T5/mT5 model in float32/bfloat16, got {type(model).__name__}")
    return engine == "t5" or (engine == "auto" and supported)


def decoder_stepper(
    model: torch.nn.Module,
    encoder_outputs: BaseModelOutput,
    attention_mask: torch.Tensor,
    max_steps: int,
    engine: str,
    compile: bool | str,
) -> HFStepper | T5Stepper:
    """The decoder-step state of one batch for :func:`t5score.engine.decode.greedy_decode`."""
    fast = uses_t5_kernels(model, engine)
    if compile and not fast:
        raise ValueError("compile=True needs the fast T5 engine (engine='auto' or 't5' on a T5-family model)")
    if fast:
        return T5Stepper(model, encoder_outputs.last_hidden_state, attention_mask, max_steps, compile)
    return HFStepper(model, encoder_outputs, attention_mask)


def forced_decoder(model: torch.nn.Module, engine: str = "auto") -> HFForcedDecoder | T5ForcedDecoder:
    """The teacher-forced decoder of ``model`` (in eval mode) for :func:`t5score.engine.forced.score_pairs`."""
    return T5ForcedDecoder(model) if uses_t5_kernels(model, engine) else HFForcedDecoder(model)
