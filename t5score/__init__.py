"""t5score: decode, score and evaluate seq2seq models with the logits kept."""

__version__ = "0.1.0"
__all__ = ["Predictor", "load_logits", "greedy_decode", "__version__"]

_LAZY = {  # heavy imports (torch, transformers) only when asked for, so `t5score compare` starts fast
    "Predictor": "t5score.api",
    "load_logits": "t5score.engine.logits_store",
    "greedy_decode": "t5score.engine.decode",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 't5score' has no attribute {name!r}")
