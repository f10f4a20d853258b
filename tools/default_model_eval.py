"""Scoring and outputs of the embedded default model after training: losses, greedy ROUGE-L, the
candidates file for ``t5score rerank`` and the ``training.json`` record.

Part of ``tools/train_default_model.py`` (see its docstring).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
from pathlib import Path

import lightning as L
import sentencepiece as spm
import torch
import transformers
from rouge_score import rouge_scorer
from torch.utils.data import DataLoader
from transformers import GenerationConfig, T5Config

REPO = Path(__file__).resolve().parents[1]


@torch.no_grad()
def generate(model, tokenizer, sources: list[str], max_source_length: int, batch_size: int = 32, **kwargs):
    """Decode ``sources`` in batches; returns one string per source (or ``num_return_sequences`` per source)."""
    model.eval()
    outputs = []
    for start in range(0, len(sources), batch_size):
        enc = tokenizer(
            sources[start : start + batch_size],
            max_length=max_source_length,
            truncation=True,
            padding=True,
            return_tensors="pt",
        )
        ids = model.generate(**enc, **kwargs)
        outputs.extend(tokenizer.batch_decode(ids, skip_special_tokens=True))
    return outputs


def rouge_l(predictions: list[str], references: list[str]) -> float:
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    scores = [scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, references, strict=True)]
    return statistics.fmean(scores)


def make_candidates(model, tokenizer, rows: list[dict], args) -> list[dict]:
    """Greedy output first, then distinct seeded samples, 4-8 candidates per source."""
    torch.manual_seed(args.seed)
    greedy = generate(model, tokenizer, [r["source"] for r in rows], args.max_source_length, do_sample=False)
    samples = generate(
        model,
        tokenizer,
        [r["source"] for r in rows],
        args.max_source_length,
        batch_size=8,
        do_sample=True,
        top_k=0,
        top_p=0.95,
        temperature=1.0,
        num_return_sequences=12,
    )
    records = []
    for i, row in enumerate(rows):
        candidates = [greedy[i]]
        for text in samples[i * 12 : (i + 1) * 12]:
            if text.strip() and text not in candidates and len(candidates) < args.num_candidates:
                candidates.append(text)
        for text in samples[i * 12 : (i + 1) * 12]:  # rare: too few distinct samples, repeat to reach 4
            if len(candidates) >= 4:
                break
            candidates.append(text)
        records.append(
            {"id": row["id"], "source": row["source"], "reference": row["target"], "candidates": candidates}
        )
    return records


def write_candidates(model, tokenizer, test_rows: list[dict], args: argparse.Namespace) -> None:
    """``code_summary_candidates.jsonl`` for ``t5score rerank`` (see :func:`make_candidates`)."""
    candidates = make_candidates(model, tokenizer, test_rows[: args.num_candidate_sources], args)
    with (args.data_dir / "code_summary_candidates.jsonl").open("w", encoding="utf-8") as f:
        for rec in candidates:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def greedy_generation_config(config: T5Config, args: argparse.Namespace) -> GenerationConfig:
    """What ``generation_config.json`` ships: greedy decoding up to the training target length."""
    return GenerationConfig(
        max_new_tokens=args.max_target_length,
        num_beams=1,
        do_sample=False,
        decoder_start_token_id=config.decoder_start_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    )


def shuffled_sources(rows: list[dict]) -> list[dict]:
    """The same targets, each with another row's source (row ``i + 37``): the loss gap to the true
    sources is what the model takes from its input."""
    return [{**r, "source": rows[(i + 37) % len(rows)]["source"]} for i, r in enumerate(rows)]


def evaluate(
    trainer: L.Trainer,
    module: L.LightningModule,
    tokenizer,
    loaders: tuple[DataLoader, DataLoader],
    val_rows: list[dict],
    test_rows: list[dict],
    args: argparse.Namespace,
) -> dict:
    """Validation loss with the true and the shuffled sources (``loaders``), greedy outputs and ROUGE-L on
    validation and test; sets the model's greedy generation config."""
    model = module.model
    model.eval()
    val_loss = trainer.validate(module, loaders[0], verbose=False)[0]["val_loss"]
    shuffled_loss = trainer.validate(module, loaders[1], verbose=False)[0]["val_loss"]
    model.generation_config = greedy_generation_config(model.config, args)
    val_pred = generate(model, tokenizer, [r["source"] for r in val_rows], args.max_source_length)
    test_pred = generate(model, tokenizer, [r["source"] for r in test_rows], args.max_source_length)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    test_scores = [
        scorer.score(r["target"], p)["rougeL"].fmeasure for r, p in zip(test_rows, test_pred, strict=True)
    ]
    return {
        "val_loss": val_loss,
        "shuffled_loss": shuffled_loss,
        "val_rouge": rouge_l(val_pred, [r["target"] for r in val_rows]),
        "test_rouge": rouge_l(test_pred, [r["target"] for r in test_rows]),
        "test_pred": test_pred,
        "test_scores": test_scores,
    }


def git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return None


def training_info(
    args, config, splits, trainer, fit_seconds: float, val_losses: list[float], scores: dict
) -> dict:
    """What ``training.json`` records: arguments, sizes, losses, scores, versions and examples."""
    train_rows, val_rows, test_rows = splits
    test_pred, test_scores = scores["test_pred"], scores["test_scores"]
    best = sorted(range(len(test_rows)), key=lambda i: (-test_scores[i], i))[:4]
    return {
        "task": "code summarisation: Python stdlib function (docstring removed) -> first docstring sentence",
        "seed": args.seed,
        "arguments": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "model_config": {
            k: getattr(config, k)
            for k in ("vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_heads")
        },
        "num_parameters": sum(p.numel() for p in trainer.lightning_module.model.parameters()),
        "data": {"train": len(train_rows), "validation": len(val_rows), "test": len(test_rows)},
        "optimizer_steps": trainer.global_step,
        "epochs_completed": trainer.current_epoch,
        "train_wall_seconds": round(fit_seconds, 1),
        "val_loss_per_epoch": [round(v, 4) for v in val_losses],
        "validation": {
            "loss": round(scores["val_loss"], 4),
            "loss_with_shuffled_sources": round(scores["shuffled_loss"], 4),
            "rougeL_f": round(scores["val_rouge"], 4),
        },
        "test": {
            "rougeL_f": round(scores["test_rouge"], 4),
            "rows_with_rougeL_above_0": sum(x > 0 for x in test_scores),
            "distinct_greedy_outputs": len(set(test_pred)),
        },
        "rouge": "rouge_score RougeScorer(['rougeL'], use_stemmer=True), mean F-measure, greedy decoding",
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "lightning": L.__version__,
            "sentencepiece": spm.__version__,
        },
        "torch_threads": args.threads,
        "git_commit": git_commit(),
        "best_examples": [
            {"id": test_rows[i]["id"], "reference": test_rows[i]["target"], "prediction": test_pred[i]}
            | {"rougeL_f": round(test_scores[i], 4)}
            for i in best
        ],
        "examples": [
            {"id": r["id"], "reference": r["target"], "prediction": p}
            for r, p in zip(test_rows[:8], test_pred[:8], strict=True)
        ],
    }
