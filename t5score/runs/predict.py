"""The ``t5score predict`` run: the LightningModule that decodes (greedy, sampled or beam search, logits
kept in ``predict_step``) and the finisher that completes the merged rows (ROUGE against references, corpus
metrics, the logits index)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch

from t5score.engine.modeling import DEFAULT_MODEL, load_model_and_tokenizer
from t5score.engine.options import DecodeOptions
from t5score.engine.processors import Generation
from t5score.records import PredictionRecord, SourceBatch, SourceRow
from t5score.runs.decode_rows import (
    candidates_per_source,
    decode_rows,
    resolve_generation_for,
)
from t5score.runs.runner import RunSpec
from t5score.scoring.rouge import ROUGE_KEYS, add_rouge_columns


class Seq2SeqPredictor(L.LightningModule):
    """Decode with a seq2seq model and keep the numbers: per-token log-probabilities, entropies, top-k.

    Args:
        name_or_path: Hugging Face model id or local folder (``from_pretrained``); "default" is the tiny
            code-summarisation T5 shipped with t5score.
        max_new_tokens: Most tokens generated per row (EOS included); default: the model's
            generation_config.max_new_tokens, else its max_length - 1 (the decoder start token counts, as
            in generate), else 64.
        capture: "stats" keeps per-token statistics only; "full" also streams every step's raw logits to
            ``<output_dir>/logits`` (read back with ``t5score.load_logits``).
        top_k: How many top tokens (ids and log-probabilities) to keep per step.
        logits_dtype: "float16" or "float32" for capture "full".
        num_samples: 0 decodes greedily; N > 0 draws N candidates per source by sampling (see temperature,
            top_p, seed), written with a ``sample_index`` so ``t5score rerank`` can take them.
        num_beams: 1 decodes greedily (or samples); N > 1 runs beam search with N beams and writes
            num_return_sequences candidates per source, best first, numbered by ``candidate_index`` (0 = the
            best beam) with their ``sequence_score``; ``t5score rerank`` takes them as they are.
        num_return_sequences: Candidates written per source with beam search (at most num_beams).
        num_beam_groups: Diverse beam search: the beams split into this many groups (num_beams divisible
            by it), each group penalised for tokens the earlier groups chose at the same step.
        diversity_penalty: Diverse beam search: the penalty per earlier group's use of a token (Hamming
            diversity); 0 with one group is plain beam search.
        length_penalty: Beam search: a finished candidate's score is its sum of processed log-probabilities
            divided by its length ** length_penalty; default: the model's generation config (else 1.0).
        early_stopping: Beam search: true stops when num_beams candidates are finished, false stops when no
            better one can be found by a heuristic, "never" when none can be found at all, as generate does;
            default: the model's generation config.
        temperature: Sampling temperature (num_samples > 0).
        top_p: Nucleus sampling mass (num_samples > 0).
        seed: Seed of the sampling; each batch and sample derives its own, so runs are reproducible.
        score_references: When the data has a target column, also score the references teacher-forced.
        eos_check_every: Check for "all rows finished" every N steps (fewer GPU syncs).
        drop_finished: Finished rows leave the (static) batch.
        batching: "inflight" (an ended row's slot goes to the next source), "static" or "auto".
        slots: Rows decoded at once.
        engine: "auto" (the fast T5 decoder step for T5-family models, the model's own forward otherwise),
            "hf" (always the model's forward) or "t5" (require the fast step).
        compile: Opt-in ``torch.compile`` of the fast T5 decoder step (a one-off compilation per batch
            shape, tens of seconds on CPU; pays off for long runs of fixed-shape batches).
        quantize: "none", or "int8" for dynamic int8 quantisation of the linear layers (CPU; opt-in: it
            changes the logits slightly, see reports/benchmarks.md).
        generation_config: Overrides of the model's generation config, as generate takes them, e.g.
            '{"no_repeat_ngram_size": 0}'. The config's logits processors (forced BOS/EOS, min_length,
            no_repeat_ngram_size, bad_words_ids, suppress_tokens, repetition penalties...) choose the tokens
            exactly as generate(do_sample=False, num_beams=1); beam-search and sampling settings are named
            in one warning line and ignored.
        use_generation_config: false decodes from the raw model alone (no processors, length 64 unless
            max_new_tokens is given); the overrides still apply.
        forced_bos_token: The first generated token, a token string or an id: the target language of
            multilingual models (e.g. fra_Latn for NLLB, fr_XX for mBART-50).
        trust_remote_code: Run the Python code a model folder names in its config (``auto_map``) to load
            it; false (the default) refuses such a model in one line, without running its code or asking.
    """

    def __init__(
        self,
        name_or_path: str = DEFAULT_MODEL,
        max_new_tokens: int | None = None,
        capture: str = DecodeOptions.capture,
        top_k: int = DecodeOptions.top_k,
        logits_dtype: str = DecodeOptions.logits_dtype,
        num_samples: int = DecodeOptions.num_samples,
        temperature: float = DecodeOptions.temperature,
        top_p: float = DecodeOptions.top_p,
        seed: int = DecodeOptions.seed,
        num_beams: int = DecodeOptions.num_beams,
        num_return_sequences: int = DecodeOptions.num_return_sequences,
        num_beam_groups: int = DecodeOptions.num_beam_groups,
        diversity_penalty: float = DecodeOptions.diversity_penalty,
        length_penalty: float | None = DecodeOptions.length_penalty,
        early_stopping: bool | str | None = DecodeOptions.early_stopping,
        score_references: bool = True,
        eos_check_every: int = DecodeOptions.eos_check_every,
        drop_finished: bool = DecodeOptions.drop_finished,
        batching: str = DecodeOptions.batching,
        slots: int = DecodeOptions.slots,
        engine: str = DecodeOptions.engine,
        compile: bool = DecodeOptions.compile,
        quantize: str = "none",
        generation_config: dict | None = None,
        use_generation_config: bool = DecodeOptions.use_generation_config,
        forced_bos_token: str | int | None = None,
        trust_remote_code: bool = False,
    ):
        super().__init__()
        self.options = DecodeOptions(
            max_new_tokens=max_new_tokens,
            top_k=top_k,
            capture=capture,
            logits_dtype=logits_dtype,
            num_samples=num_samples,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            num_beams=num_beams,
            num_return_sequences=num_return_sequences,
            num_beam_groups=num_beam_groups,
            diversity_penalty=diversity_penalty,
            length_penalty=length_penalty,
            early_stopping=early_stopping,
            eos_check_every=eos_check_every,
            drop_finished=drop_finished,
            batching=batching,
            slots=slots,
            engine=engine,
            compile=compile,
            generation_config=generation_config,
            use_generation_config=use_generation_config,
            forced_bos_token=forced_bos_token,
        )
        from t5score.engine.quantize import QUANTIZE_MODES

        if quantize not in QUANTIZE_MODES:
            raise ValueError(f"quantize must be one of {QUANTIZE_MODES}, got {quantize!r}")
        self.quantize = quantize
        self.name_or_path = name_or_path
        self.trust_remote_code = trust_remote_code
        self.generation: Generation | None = None  # the generation settings in force, set with the model
        self.do_score_references = score_references
        self.model: torch.nn.Module | None = None  # loaded in configure_model, after the data is checked
        self.tokenizer = None
        self.output_dir: Path | None = None  # set by the runner; capture "full" writes logits below it

    def generation_summary(self) -> dict[str, Any] | None:
        """What ``run.json`` records under ``generation``: the settings in force, with the beam search's."""
        if self.generation is None:
            return None
        summary = self.generation.summary()
        if self.options.num_beams > 1:
            from t5score.engine.beam import beam_settings

            beam = beam_settings(self.generation, self.options)
            summary["beam_search"] = {
                "num_beams": self.options.num_beams,
                "num_return_sequences": self.options.num_return_sequences,
                "num_beam_groups": self.options.num_beam_groups,
                "diversity_penalty": self.options.diversity_penalty,
                "length_penalty": beam.length_penalty,
                "early_stopping": beam.early_stopping,
            }
        return summary

    def configure_model(self) -> None:
        if self.model is None:
            from t5score.engine.quantize import apply_quantize

            self.model, self.tokenizer = load_model_and_tokenizer(
                self.name_or_path, trust_remote_code=self.trust_remote_code
            )
            self.model = apply_quantize(self.model, self.quantize)
            # once per run: the one warning line about settings greedy decoding ignores
            self.generation = resolve_generation_for(self.model, self.tokenizer, self.options, warn=True)

    def forward(self, batch: SourceBatch) -> list[PredictionRecord]:
        return self.predict_step(batch, 0)

    @torch.inference_mode()
    def predict_step(self, batch: SourceBatch, batch_idx: int = 0) -> list[PredictionRecord]:
        self.configure_model()
        self.model.eval()
        logits_dir = self.output_dir / "logits" if self.output_dir is not None else None
        if self.options.capture == "full" and logits_dir is None:
            raise ValueError("capture='full' needs an output folder for the logits")
        return decode_rows(
            self.model,
            self.tokenizer,
            batch.rows,
            self.options,
            batch.max_source_length,
            logits_dir,
            batch.batch_index,
            score_references=self.do_score_references,
            generation=self.generation,
        )


REF_LISTS = [
    "ref_token_ids",
    "ref_token_logprobs",
    "ref_top1_probs",
    "ref_top1_correct",
    "ref_logprob",
    "ref_num_tokens",
]


def row_counts(frame: pd.DataFrame) -> dict[str, Any]:
    """Row counts of a predictions table (errors, non-finite logits, truncated inputs, finished rows)."""
    ok = frame["error"].isna()
    return {
        "rows": len(frame),
        "rows_with_error": int((~ok).sum()),
        "rows_nonfinite": int(frame["error"].fillna("").str.startswith("non-finite").sum()),
        "rows_truncated": int(frame["truncated"].sum()),
        "rows_finished": int(frame["finished"].sum()),
    }


class PredictFinisher:
    """ROUGE per chunk and streaming corpus metrics (:class:`~t5score.runs.corpus_summary.RecordSummary`)."""

    def __init__(self, rows: list[SourceRow], module: Seq2SeqPredictor, n_bins: int = 15):
        from t5score.runs.corpus_summary import RecordSummary

        self.module = module
        self.targets = any(r.target is not None for r in rows)
        sampled = bool(module.options.num_samples)
        self.references = self.targets and getattr(module, "do_score_references", False) and not sampled
        self.metrics = RecordSummary(n_bins)

    def chunk(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Add ROUGE, feed the corpus metrics (each reference once: beam candidates after the first carry
        their source's reference scores too); drop the candidate columns a run does not number rows by."""
        if self.targets:
            frame = add_rouge_columns(frame, "prediction", "target")
        clean = frame[frame["error"].isna()]
        if not self.references:
            clean = clean.drop(columns=REF_LISTS)
        elif self.module.options.num_beams > 1:
            clean = clean.copy()
            clean.loc[clean["candidate_index"] > 0, REF_LISTS] = None
        self.metrics.update(clean)
        unused = [] if self.module.options.num_samples else ["sample_index"]
        if self.module.options.num_beams == 1:
            unused += ["candidate_index", "sequence_score"]
        return frame.drop(columns=unused)

    def summary(self, rows: pd.DataFrame) -> dict[str, Any]:
        """Row counts, corpus metrics and mean ROUGE; merges the logits index of capture "full"."""
        summary = row_counts(rows) | self.metrics.compute()
        has = (
            rows["target"].notna() & rows["prediction"].notna() & rows["error"].isna() if self.targets else []
        )
        if self.targets and has.any():
            means = {key: float(rows.loc[has, key].astype(float).mean()) for key in ROUGE_KEYS}
            summary["rouge"] = means | {"rouge_rows": int(has.sum())}
        if self.module.options.capture == "full" and self.module.output_dir is not None:
            from t5score.engine.logits_store import merge_index

            merge_index(self.module.output_dir / "logits")
        return summary


KEY = ["position", "sample_index", "candidate_index"]  # one predictions row per key


def predict_spec(rows: list[SourceRow], module: Seq2SeqPredictor) -> RunSpec:
    """What the runner needs for a predict run: one row per source (per sample when sampling, per returned
    candidate with beam search)."""
    column, count = candidates_per_source(module.options)
    expected = [
        (r.position, *((n if column == name else None) for name in KEY[1:]))
        for r in rows
        for n in range(count)
    ]
    finisher = PredictFinisher(rows, module)
    return RunSpec("predict", "predictions.parquet", PredictionRecord, expected, KEY, finisher)
