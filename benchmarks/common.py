"""Shared pieces of the benchmarks: the random t5-small-shaped model, inputs, a tokenizer, timing, machine info.

Not a test and not part of the package: run the scripts in this folder from the repository root.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the repository's t5score, installed or not

import torch  # noqa: E402

# t5-small's shape; random weights (no download). EOS is made unreachable so every row runs all steps.
T5_SMALL = dict(
    vocab_size=32128,
    d_model=512,
    d_kv=64,
    d_ff=2048,
    num_layers=6,
    num_decoder_layers=6,
    num_heads=8,
    decoder_start_token_id=0,
    eos_token_id=1,
    pad_token_id=0,
)
# the memory benchmark runs thousands of rows through the CLI: a smaller model with the same vocabulary
SMALL = dict(T5_SMALL, d_model=128, d_kv=32, d_ff=512, num_layers=2, num_decoder_layers=2, num_heads=4)


def build_model(shape: dict | None = None, seed: int = 0, eos_reachable: bool = False):
    """A randomly initialised ``T5ForConditionalGeneration`` of ``shape`` (default: t5-small's), eval mode.

    ``initializer_factor=2``: at the default init (1) a random T5 emits the same token at every step; at 2
    rows and steps differ, so token agreement between contenders means something; at 3 and more the random
    network is chaotic (float32 rounding differences, e.g. CTranslate2's, flip most tokens).

    With ``eos_reachable=False`` the EOS row of the (tied) output layer is zeroed: EOS's logit is then
    exactly 0 while the maximum logit of a random model is far above 0, so no contender stops early,
    ``generate`` and CTranslate2 included, and all of them do exactly ``max_new_tokens`` steps.
    """
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(T5Config(**(shape or T5_SMALL), initializer_factor=2.0)).eval()
    if not eos_reachable:
        with torch.no_grad():
            model.lm_head.weight[model.config.eos_token_id] = 0.0
    return model


def make_inputs(batch: int, length: int, vocab: int, seed: int = 1):
    """``batch`` sources of ``length`` tokens: random ids (no specials) ending with EOS, no padding."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (batch, length), generator=g)
    ids[:, -1] = 1
    return ids, torch.ones_like(ids)


def save_model_dir(model, folder: Path) -> Path:
    """``save_pretrained`` plus a word-level tokenizer whose vocabulary covers every id (``w<id>``)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    specials = ["<pad>", "</s>", "<unk>"]
    vocab = {tok: i for i, tok in enumerate(specials)}
    vocab.update({f"w{i}": i for i in range(len(specials), model.config.vocab_size)})
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    tok.save_pretrained(folder)
    return folder


def ids_to_text(ids: list[int]) -> str:
    """Text that :func:`save_model_dir`'s tokenizer maps back to ``ids`` (plus its EOS)."""
    return " ".join(f"w{i}" for i in ids)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def machine() -> dict:
    """CPU model, cores, threads and load, for the report."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    busy = ""
    try:
        busy = subprocess.run(
            ["pgrep", "-f", "train_default_model"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "background_training": bool(busy),
        "platform": platform.platform(),
    }


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "ctranslate2", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str))
