"""Train the tiny T5 shipped as t5score's embedded default (``t5score/assets/tiny-code-t5``).

Steps, all seeded: (1) build the code-summarisation data if the training split is missing
(``tools/build_code_summary_data.py``); (2) train a SentencePiece unigram tokenizer on the training
sources and targets and wrap it as a Hugging Face ``T5Tokenizer`` (``tokenizer.json``); (3) train a small
``T5ForConditionalGeneration`` from scratch with ``lightning.Trainer.fit`` and Adafactor on CPU;
(4) score it on the validation split (teacher-forced loss, greedy ROUGE-L) and the test split (ROUGE-L);
(5) write the model, tokenizer, ``generation_config.json``, ``training.json``, the model card ``README.md``
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
import io
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import lightning as L  # noqa: E402
import sentencepiece as spm  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from rouge_score import rouge_scorer  # noqa: E402
from sentencepiece import sentencepiece_model_pb2  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    GenerationConfig,
    T5Config,
    T5ForConditionalGeneration,
    T5Tokenizer,
)

from t5score.runs.training import BucketBatchSampler, PairCollator, Seq2SeqFitModule, tokenize_pairs  # noqa: E402

DATA_DIR = REPO / "t5score" / "assets" / "data"
TRAIN_FILE = REPO / "build" / "code_summary" / "code_summary_train.jsonl"
OUT_DIR = REPO / "t5score" / "assets" / "tiny-code-t5"


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def train_tokenizer(
    rows: list[dict], vocab_size: int, out_dir: Path, isolate_space: bool = True, model_max_length: int = 512
) -> T5Tokenizer:
    """Train a SentencePiece unigram model (T5 ids: pad 0, eos 1, unk 2; no sentinels) and save it for HF.

    With ``isolate_space`` the word-boundary mark ``▁`` is a piece of its own, so a word is spelled with
    the same pieces in prose (``▁ content``) and inside an identifier (``get_content_type``): copying a
    name's words into the summary is then an identity map, which a tiny model learns much faster.
    """
    texts = [" ".join(r["source"].split()) for r in rows] + [r["target"] for r in rows]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=buf,
        vocab_size=vocab_size,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        character_coverage=1.0,
        num_threads=1,
        shuffle_input_sentence=False,
        input_sentence_size=0,
        max_sentence_length=8192,
        minloglevel=2,
        user_defined_symbols=["▁"] if isolate_space else [],
    )
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(buf.getvalue())
    tokenizer = T5Tokenizer(
        vocab=[(p.piece, p.score) for p in proto.pieces],
        extra_ids=0,
        _spm_precompiled_charsmap=proto.normalizer_spec.precompiled_charsmap,
        model_max_length=model_max_length,  # the source length the model was trained with
    )
    tokenizer.save_pretrained(out_dir)
    loaded = AutoTokenizer.from_pretrained(out_dir)  # check what users will load, not the in-memory object
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    for r in rows[:500]:
        ids = loaded(r["target"])["input_ids"]
        if ids[:-1] != sp.encode(r["target"]) or loaded.decode(ids, skip_special_tokens=True) != r["target"]:
            raise RuntimeError(f"tokenizer does not round-trip {r['target']!r}")
    return loaded


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


def write_model_card(info: dict, path: Path) -> None:
    """Write the model card (``README.md`` next to the weights) from the numbers in ``training.json``."""
    cfg, data, size_mb, args = info["model_config"], info["data"], info["size_on_disk_mb"], info["arguments"]
    examples = "\n".join(
        f"| `{e['id']}` | {e['reference']} | {e['prediction']} |" for e in info["examples"][:6]
    )
    best = "\n".join(
        f"| `{e['id']}` | {e['reference']} | {e['prediction']} | {e['rougeL_f']:.2f} |"
        for e in info.get("best_examples", [])
    )
    text = f"""# tiny-code-t5: t5score's embedded default model

A deliberately small T5 (`T5ForConditionalGeneration`, {info["num_parameters"]:,} parameters, {size_mb:.1f} MB on
disk) trained from scratch by `tools/train_default_model.py` so that `t5score` has a real model and real
data to run on without a model hub. It is a *demo* model: its summaries are partly right and partly
wrong, which is what makes entropy, calibration and reranking reports informative. Do not use it for
anything else.

## Task and data
Code summarisation: the input is a Python function from the standard library of CPython
{info["versions"]["python"]} (code printed by `ast.unparse`, docstring and comments removed), the output
is the first sentence of its docstring. Built by `tools/build_code_summary_data.py`: targets of 3-30
words, sources of at most 60 lines / 2000 characters, deduplicated by source, split **by module family**
(top-level package, e.g. all of `email.*` in one split), so no test module was seen in training.

| split | rows | shipped |
|---|---|---|
| train | {data["train"]} | no (rebuild with the script into `build/code_summary/`) |
| validation | {data["validation"]} | `t5score/assets/data/code_summary_validation.jsonl` |
| test | {data["test"]} | `t5score/assets/data/code_summary_test.jsonl` |

JSONL fields: `id` (`"module:qualname"`), `source`, `target`.

## Model and tokenizer
T5 v1.0 layout (ReLU feed-forward, tied input/output embeddings, relative position buckets):
d_model {cfg["d_model"]}, d_ff {cfg["d_ff"]}, {cfg["num_layers"]} encoder + {cfg["num_layers"]} decoder layers,
{cfg["num_heads"]} heads of {cfg["d_kv"]}, float32 weights.

SentencePiece unigram vocabulary of {cfg["vocab_size"]} pieces trained on the training split (`<pad>`=0,
also the decoder start token, `</s>`=1, `<unk>`=2, no `<extra_id_*>` sentinels), saved as
`tokenizer.json` for `AutoTokenizer`. Two choices differ from stock T5 tokenizers:
- the word-boundary mark `▁` is a piece of its own{"" if args["isolate_space"] else " (not in this build)"},
  so `content` is the same piece in `get_content_type` and in the summary "Return the content type";
  copying words from names is then an identity map, which a tiny model learns far faster. Sequences
  are about 1.5 times longer in tokens; decoding gives back the exact text.
- like every T5 tokenizer it collapses whitespace, so newlines and indentation reach the model as
  single spaces. This happens inside the tokenizer, identically at training and inference, and the
  shipped sources need no preprocessing.

Sources are truncated to {args["max_source_length"]} tokens (the signature and first lines; the
tokenizer's `model_max_length` is set to this, so `truncation=True` applies it), targets to
{args["max_target_length"]}; `generation_config.json` sets greedy decoding with
`max_new_tokens={args["max_target_length"]}`.

## Training
`lightning.Trainer.fit` with `t5score.runs.training.Seq2SeqFitModule` on CPU ({info["torch_threads"]} torch
thread(s)), seed {info["seed"]}: {args["optimizer"]} (lr {args["learning_rate"]}, weight decay {args["weight_decay"]},
{args["warmup_steps"]} warm-up steps, cosine decay to 10%), batch {args["batch_size"]} (length-bucketed), dropout
{args["dropout"]}, gradient clipping 1.0; {info["epochs_completed"]} epochs / {info["optimizer_steps"]} steps in
{info["train_wall_seconds"] / 60:.1f} minutes of wall time on a 2-core machine shared with other jobs (one
thread is faster than two there). Adafactor rather than AdamW: T5 does not scale attention scores, and
with AdamW's fixed-size steps this tiny model learned to ignore its source (validation loss with the
true source and with a shuffled source were the same). All settings, library versions and per-epoch
validation losses are in `training.json`.

## Scores
| split | teacher-forced loss (nats/token) | ROUGE-L F (greedy) |
|---|---|---|
| validation | {info["validation"]["loss"]:.3f} | {info["validation"]["rougeL_f"]:.3f} |
| test | - | {info["test"]["rougeL_f"]:.3f} |

With each validation target paired with another row's source the loss is
{info["validation"]["loss_with_shuffled_sources"]:.3f}: the gap is what the model takes from its input.

ROUGE-L: `rouge_score` with stemming, mean F-measure over rows. {info["test"]["distinct_greedy_outputs"]} of
{data["test"]} greedy test outputs are distinct and {info["test"].get("rows_with_rougeL_above_0", "-")} have some
ROUGE-L overlap with their reference. The first test rows (the `pprint` module), as they come:

| id | reference | greedy prediction |
|---|---|---|
{examples}

The test rows with the highest ROUGE-L (chosen, so better than typical):

| id | reference | greedy prediction | ROUGE-L F |
|---|---|---|---|
{best}

## Candidates file (for `t5score rerank`)
`t5score/assets/data/code_summary_candidates.jsonl`: one JSON object per line for the first
{info["arguments"]["num_candidate_sources"]} test sources, in test order:
`{{"id": ..., "source": ..., "reference": ..., "candidates": [greedy, sample, ...]}}`. `candidates[0]`
is the greedy output; the rest are distinct nucleus samples (top-p 0.95, temperature 1, seeded), 4-
{info["arguments"]["num_candidates"]} candidates per source in all. `reference` is the test target.

## Reproduce
```
python tools/build_code_summary_data.py
python tools/train_default_model.py      # writes this folder and the candidates file
```
Results are seeded; exact numbers can differ with the torch version and thread count.
"""
    path.write_text(text, encoding="utf-8")


def git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return None


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


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.card_only:
        write_model_card(json.loads((args.out_dir / "training.json").read_text()), args.out_dir / "README.md")
        return
    torch.set_num_threads(args.threads)
    L.seed_everything(args.seed, workers=True)
    if not args.train_file.exists():
        subprocess.run([sys.executable, str(REPO / "tools" / "build_code_summary_data.py")], check=True)
    train_rows = read_jsonl(args.train_file)
    val_rows = read_jsonl(args.data_dir / "code_summary_validation.jsonl")
    test_rows = read_jsonl(args.data_dir / "code_summary_test.jsonl")
    args.out_dir.mkdir(parents=True, exist_ok=True)

    tokenizer = train_tokenizer(
        train_rows, args.vocab_size, args.out_dir, args.isolate_space, args.max_source_length
    )
    config = T5Config(
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
    L.seed_everything(args.seed, workers=True)
    model = T5ForConditionalGeneration(config)
    n_params = sum(p.numel() for p in model.parameters())

    def loader(rows: list[dict], shuffle: bool) -> DataLoader:
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

    train_loader, val_loader = loader(train_rows, True), loader(val_rows, False)
    module = Seq2SeqFitModule(
        model,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        optimizer=args.optimizer,
        warmup_steps=args.warmup_steps,
    )
    trainer = L.Trainer(
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
    start = time.time()
    trainer.fit(module, train_loader, val_loader)
    train_seconds = time.time() - start
    print(
        f"fit done in {train_seconds:.0f}s; val losses per epoch: {[round(v, 3) for v in module.val_losses]}"
    )

    val_loss_per_epoch = list(module.val_losses)
    model.eval()
    val_loss = trainer.validate(module, val_loader, verbose=False)[0]["val_loss"]
    # the same targets with another row's source: the gap to val_loss is what the model takes from its input
    rotated = [{**r, "source": val_rows[(i + 37) % len(val_rows)]["source"]} for i, r in enumerate(val_rows)]
    shuffled_loss = trainer.validate(module, loader(rotated, False), verbose=False)[0]["val_loss"]
    model.generation_config = GenerationConfig(
        max_new_tokens=args.max_target_length,
        num_beams=1,
        do_sample=False,
        decoder_start_token_id=config.decoder_start_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    )
    val_pred = generate(model, tokenizer, [r["source"] for r in val_rows], args.max_source_length)
    test_pred = generate(model, tokenizer, [r["source"] for r in test_rows], args.max_source_length)
    val_rouge = rouge_l(val_pred, [r["target"] for r in val_rows])
    test_rouge = rouge_l(test_pred, [r["target"] for r in test_rows])
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    test_scores = [
        scorer.score(r["target"], p)["rougeL"].fmeasure for r, p in zip(test_rows, test_pred, strict=True)
    ]
    best = sorted(range(len(test_rows)), key=lambda i: (-test_scores[i], i))[:4]
    print(f"val_loss {val_loss:.4f}  val ROUGE-L {val_rouge:.4f}  test ROUGE-L {test_rouge:.4f}")

    model.save_pretrained(args.out_dir)
    reloaded = AutoModelForSeq2SeqLM.from_pretrained(args.out_dir)
    check = generate(reloaded, tokenizer, [r["source"] for r in test_rows[:16]], args.max_source_length)
    if check != test_pred[:16]:
        raise RuntimeError("the saved model does not reproduce the in-memory greedy outputs")

    candidates = make_candidates(model, tokenizer, test_rows[: args.num_candidate_sources], args)
    with (args.data_dir / "code_summary_candidates.jsonl").open("w", encoding="utf-8") as f:
        for rec in candidates:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")

    info = {
        "task": "code summarisation: Python stdlib function (docstring removed) -> first docstring sentence",
        "seed": args.seed,
        "arguments": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "model_config": {
            k: getattr(config, k)
            for k in ("vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_heads")
        },
        "num_parameters": n_params,
        "data": {"train": len(train_rows), "validation": len(val_rows), "test": len(test_rows)},
        "optimizer_steps": trainer.global_step,
        "epochs_completed": trainer.current_epoch,
        "train_wall_seconds": round(train_seconds, 1),
        "val_loss_per_epoch": [round(v, 4) for v in val_loss_per_epoch],
        "validation": {
            "loss": round(val_loss, 4),
            "loss_with_shuffled_sources": round(shuffled_loss, 4),
            "rougeL_f": round(val_rouge, 4),
        },
        "test": {
            "rougeL_f": round(test_rouge, 4),
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
    info["size_on_disk_mb"] = round(
        sum(f.stat().st_size for f in args.out_dir.iterdir() if f.name != "README.md") / 2**20, 2
    )
    (args.out_dir / "training.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    write_model_card(info, args.out_dir / "README.md")
    print(json.dumps({k: info[k] for k in ("num_parameters", "data", "validation", "test")}, indent=2))


if __name__ == "__main__":
    main()
