"""Train the tiny T5 shipped as t5score's embedded default (``t5score/assets/tiny-code-t5``).

Steps, all seeded: (1) build the code-summarisation data if the training split is missing
(``tools/build_code_summary_data.py``); (2) train a SentencePiece unigram tokenizer on the training
sources and targets and wrap it as a Hugging Face ``T5Tokenizer`` (``tokenizer.json``); (3) train a small
``T5ForConditionalGeneration`` from scratch with ``lightning.Trainer.fit`` and Adafactor on CPU;
(4) score it on the validation split (teacher-forced loss, greedy ROUGE-L) and the test split (ROUGE-L);
(5) write the model, tokenizer, ``generation_config.json``, ``training.json``, the model card ``README.md``
(text: ``tools/model_card_template.md``, filled by ``tools/model_card.py``)
and ``t5score/assets/data/code_summary_candidates.jsonl`` (greedy output plus seeded samples for the
first test sources, for ``t5score rerank``).

Tokenisation notes: the word-boundary mark ``▁`` is a piece of its own (see ``train_tokenizer``); and,
like every T5 tokenizer, this one collapses runs of whitespace (newlines and indentation included)
into single spaces, so the model reads code as a flat token stream. That is the same at training and
inference time, and the shipped JSONL sources need no preprocessing.

Usage: ``python tools/train_default_model.py [--epochs N] [--out-dir DIR] ...`` (about 15-30 minutes on
2 shared cores, with one torch thread; ``--card-only`` rewrites the model card from ``training.json``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the tools/ modules below

import lightning as L  # noqa: E402
import torch  # noqa: E402
from default_model_eval import (  # noqa: E402
    evaluate,
    generate,
    shuffled_sources,
    training_info,
    write_candidates,
)
from default_model_tokenizer import train_tokenizer  # noqa: E402
from model_card import write_model_card  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForSeq2SeqLM,
    T5Config,
    T5ForConditionalGeneration,
    T5Tokenizer,
)

from t5score.runs.training import BucketBatchSampler, PairCollator, Seq2SeqFitModule, tokenize_pairs  # noqa: E402

DATA_DIR = REPO / "t5score" / "assets" / "data"
TRAIN_FILE = REPO / "build" / "code_summary" / "code_summary_train.jsonl"
OUT_DIR = REPO / "t5score" / "assets" / "tiny-code-t5"


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSONL file (blank lines skipped)."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class EpochPrinter(L.Callback):
    """Print one progress line per epoch (the progress bar is off so that logs stay readable)."""

    def __init__(self) -> None:
        self.start = time.time()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: Seq2SeqFitModule) -> None:
        if not pl_module.val_losses:  # runs after the epoch's validation, so the last loss is this epoch's
            return
        print(
            f"epoch {trainer.current_epoch} step {trainer.global_step} "
            f"val_loss {pl_module.val_losses[-1]:.4f} elapsed {time.time() - self.start:.0f}s",
            flush=True,
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The training settings (all recorded in ``training.json``'s ``arguments``)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out-dir", type=Path, default=OUT_DIR)
    p.add_argument("--data-dir", type=Path, default=DATA_DIR)
    p.add_argument("--train-file", type=Path, default=TRAIN_FILE)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1 is faster than 2 when the 2 cores are shared)",
    )
    p.add_argument("--vocab-size", type=int, default=4000)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--d-ff", type=int, default=512)
    p.add_argument("--num-layers", type=int, default=3)
    p.add_argument("--num-heads", type=int, default=4)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--max-source-length", type=int, default=64)
    p.add_argument("--max-target-length", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--max-steps", type=int, default=-1, help="stop early (for timing runs)")
    p.add_argument("--learning-rate", type=float, default=5e-3)
    p.add_argument("--optimizer", choices=["adafactor", "adamw"], default="adafactor")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--warmup-steps", type=int, default=300)
    p.add_argument(
        "--isolate-space", action=argparse.BooleanOptionalAction, default=True, help="see train_tokenizer"
    )
    p.add_argument("--num-candidates", type=int, default=6)
    p.add_argument("--num-candidate-sources", type=int, default=50)
    p.add_argument("--card-only", action="store_true", help="only rewrite README.md from training.json")
    return p.parse_args(argv)


def load_splits(args: argparse.Namespace) -> tuple[list[dict], list[dict], list[dict]]:
    """The train, validation and test rows; builds the training split first when it is missing."""
    if not args.train_file.exists():
        subprocess.run([sys.executable, str(REPO / "tools" / "build_code_summary_data.py")], check=True)
    train_rows = read_jsonl(args.train_file)
    val_rows = read_jsonl(args.data_dir / "code_summary_validation.jsonl")
    test_rows = read_jsonl(args.data_dir / "code_summary_test.jsonl")
    return train_rows, val_rows, test_rows


def model_config(tokenizer: T5Tokenizer, args: argparse.Namespace) -> T5Config:
    """A T5 v1.0 layout (ReLU feed-forward, tied embeddings) of the requested size, with T5's token ids."""
    return T5Config(
        vocab_size=len(tokenizer),
        d_model=args.d_model,
        d_kv=args.d_model // args.num_heads,
        d_ff=args.d_ff,
        num_layers=args.num_layers,
        num_decoder_layers=args.num_layers,
        num_heads=args.num_heads,
        dropout_rate=args.dropout,
        feed_forward_proj="relu",
        tie_word_embeddings=True,
        decoder_start_token_id=tokenizer.pad_token_id,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )


def make_loader(
    tokenizer: T5Tokenizer, rows: list[dict], args: argparse.Namespace, shuffle: bool
) -> DataLoader:
    """Tokenised pairs in length-bucketed batches (seeded)."""
    pairs = tokenize_pairs(
        tokenizer,
        [r["source"] for r in rows],
        [r["target"] for r in rows],
        args.max_source_length,
        args.max_target_length,
    )
    sampler = BucketBatchSampler(
        [len(p.input_ids) for p in pairs], args.batch_size, seed=args.seed, shuffle=shuffle
    )
    return DataLoader(pairs, batch_sampler=sampler, collate_fn=PairCollator(tokenizer.pad_token_id))


def make_trainer(args: argparse.Namespace) -> L.Trainer:
    """A deterministic CPU Trainer without checkpoints, logger or progress bar (one line per epoch)."""
    return L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=args.epochs,
        max_steps=args.max_steps,
        gradient_clip_val=1.0,
        deterministic=True,
        enable_checkpointing=False,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[EpochPrinter()],
        default_root_dir=REPO / "build" / "train_default_model",
    )


def save_model(
    model: T5ForConditionalGeneration,
    tokenizer: T5Tokenizer,
    test_rows: list[dict],
    args: argparse.Namespace,
    expected: list[str],
) -> None:
    """Save the weights and check that the saved model reproduces the in-memory greedy outputs."""
    model.save_pretrained(args.out_dir)
    reloaded = AutoModelForSeq2SeqLM.from_pretrained(args.out_dir)
    check = generate(reloaded, tokenizer, [r["source"] for r in test_rows[:16]], args.max_source_length)
    if check != expected[:16]:
        raise RuntimeError("the saved model does not reproduce the in-memory greedy outputs")


def main(argv: list[str] | None = None) -> None:
    """Tokenizer, model, fit, scores, then every output file (see the module docstring)."""
    args = parse_args(argv)
    if args.card_only:
        write_model_card(json.loads((args.out_dir / "training.json").read_text()), args.out_dir / "README.md")
        return
    torch.set_num_threads(args.threads)
    L.seed_everything(args.seed, workers=True)
    splits = load_splits(args)
    train_rows, val_rows, test_rows = splits
    args.out_dir.mkdir(parents=True, exist_ok=True)

    tokenizer = train_tokenizer(
        train_rows, args.vocab_size, args.out_dir, args.isolate_space, args.max_source_length
    )
    config = model_config(tokenizer, args)
    L.seed_everything(args.seed, workers=True)
    model = T5ForConditionalGeneration(config)
    train_loader = make_loader(tokenizer, train_rows, args, True)
    val_loader = make_loader(tokenizer, val_rows, args, False)
    module = Seq2SeqFitModule(
        model,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        optimizer=args.optimizer,
        warmup_steps=args.warmup_steps,
    )
    trainer = make_trainer(args)
    start = time.time()
    trainer.fit(module, train_loader, val_loader)
    fit_seconds = time.time() - start
    val_losses = list(module.val_losses)
    print(f"fit done in {fit_seconds:.0f}s; val losses per epoch: {[round(v, 3) for v in val_losses]}")

    shuffled_loader = make_loader(tokenizer, shuffled_sources(val_rows), args, False)
    scores = evaluate(trainer, module, tokenizer, (val_loader, shuffled_loader), val_rows, test_rows, args)
    print(
        f"val_loss {scores['val_loss']:.4f}  val ROUGE-L {scores['val_rouge']:.4f}  "
        f"test ROUGE-L {scores['test_rouge']:.4f}"
    )
    save_model(model, tokenizer, test_rows, args, scores["test_pred"])
    write_candidates(model, tokenizer, test_rows, args)

    info = training_info(args, config, splits, trainer, fit_seconds, val_losses, scores)
    info["size_on_disk_mb"] = round(
        sum(f.stat().st_size for f in args.out_dir.iterdir() if f.name != "README.md") / 2**20, 2
    )
    (args.out_dir / "training.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    write_model_card(info, args.out_dir / "README.md")
    print(json.dumps({k: info[k] for k in ("num_parameters", "data", "validation", "test")}, indent=2))


if __name__ == "__main__":
    main()
