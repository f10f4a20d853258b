"""Optional int8 dynamic quantisation of a model's linear layers, for faster decoding on CPU.

Opt-in (``--model.quantize int8``): the weights of every ``nn.Linear`` are stored as int8 with one scale
per output row (per-channel), and activations are quantised on the fly, per batch, at each product
(``torch.ao`` dynamic quantisation). Embeddings, layer norms and attention stay in float32.

It changes the numbers: logits move by a small fraction of their spread, so log-probabilities and
entropies shift slightly and greedy tokens can differ from the float32 model where two candidates
are close. Activations are quantised with one scale per tensor, i.e. per batch: a row's numbers then
depend slightly on the other rows of its batch (float32 decoding is batch-invariant, int8 is not). ``reports/benchmarks.md`` gives the measured effect on a t5-small-shaped model.
"""

from __future__ import annotations

import copy
import warnings

import torch

QUANTIZE_MODES = ("none", "int8")


def quantize_int8(model: torch.nn.Module, inplace: bool = False) -> torch.nn.Module:
    """A copy of ``model`` (or ``model`` itself with ``inplace=True``) with int8 dynamically quantised linears.

    CPU only, float32 models only (quantised kernels exist for x86 and Arm CPUs).

    >>> m = torch.nn.Sequential(torch.nn.Linear(8, 4))
    >>> type(quantize_int8(m)[0]).__name__
    'Linear'
    >>> quantize_int8(m)[0].weight().dtype
    torch.qint8
    """
    params = list(model.parameters())
    if any(p.device.type != "cpu" for p in params):
        raise ValueError("quantize='int8' is for CPU models: move the model to the CPU first")
    if any(p.is_floating_point() and p.dtype != torch.float32 for p in params):
        raise ValueError("quantize='int8' needs a float32 model (load it without a dtype / precision 32)")
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    target = model if inplace else copy.deepcopy(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notices: the API still works in torch 2.x
        quantize_dynamic(
            target, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True
        )
    return target.eval()


def apply_quantize(model: torch.nn.Module, mode: str | None) -> torch.nn.Module:
    """``model`` unchanged for ``None``/``"none"``, its int8 version for ``"int8"``; else a ValueError."""
    if mode in (None, "none"):
        return model
    if mode == "int8":
        return quantize_int8(model, inplace=True)
    raise ValueError(f"quantize must be one of {QUANTIZE_MODES}, got {mode!r}")
