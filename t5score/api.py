"""Python API for notebooks and scripts: load a model once, decode or score texts, no Trainer needed.

>>> from t5score import Predictor                       # doctest: +SKIP
>>> p = Predictor.from_pretrained("default")            # doctest: +SKIP
>>> df = p.predict(["def add(a, b):\\n    return a + b"])  # doctest: +SKIP
>>> df[["prediction", "mean_logprob", "mean_entropy"]]  # doctest: +SKIP

The DataFrame has the columns of the CLI's ``predictions.parquet`` (see README, "Output contract").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch

from t5score.data.frames import frame_rows
from t5score.data.rows import build_rows, plan_batches, rows_from_texts
from t5score.engine.modeling import load_model_and_tokenizer
from t5score.engine.options import DecodeOptions
from t5score.records import PredictionRecord, SourceRow
from t5score.runs.decode_rows import decode_rows, resolve_generation_for


class Predictor:
    """A seq2seq model and its tokenizer, with t5score's decoding and scoring around them."""

    def __init__(self, model: torch.nn.Module, tokenizer, name: str | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str = "default",
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        trust_remote_code: bool = False,
    ) -> Predictor:
        """Load from a hub id or a local folder; ``"default"`` is the tiny model shipped with t5score.

        A model whose config names its own Python code (``auto_map``) is refused unless
        ``trust_remote_code=True``."""
        model, tokenizer = load_model_and_tokenizer(
            name_or_path, dtype=dtype, trust_remote_code=trust_remote_code
        )
        if device is not None:
            model = model.to(device)
        return cls(model, tokenizer, name_or_path)

    def _rows(self, data, source_column, target_column, id_column, targets, prefix) -> list[SourceRow]:
        if isinstance(data, pd.DataFrame):
            records = frame_rows(data, "<DataFrame>", first_line=0)  # rows numbered as the ids: from 0
            return build_rows(records, "<DataFrame>", source_column, target_column, id_column, prefix)
        if isinstance(data, str):
            raise TypeError("pass a list of texts (or a DataFrame), not a single string")
        return rows_from_texts(list(data), targets, prefix)

    def predict_records(
        self,
        data: Sequence[str] | pd.DataFrame,
        *,
        targets: Sequence[str | None] | None = None,
        source_column: str = "source",
        target_column: str | None = None,
        id_column: str | None = None,
        prefix: str = "",
        batch_size: int = 16,
        max_source_length: int | None = 512,
        score_references: bool = True,
        logits_dir: str | Path | None = None,
        **options,
    ) -> list[PredictionRecord]:
        """Decode texts (or a DataFrame's ``source_column``) into records, in input order.

        ``options`` are those of :class:`t5score.engine.options.DecodeOptions` (``max_new_tokens``,
        ``top_k``, ``capture``, ``num_samples``, ``num_beams``, ``num_return_sequences``,
        ``num_beam_groups``, ``diversity_penalty``, ``length_penalty``, ``early_stopping``,
        ``generation_config`` overrides, ``use_generation_config``, ``forced_bos_token``...). The model's
        generation config is honoured as ``generate`` honours it; settings the decoding ignores are named in
        one warning per call. With ``num_beams > 1`` each source gives ``num_return_sequences`` records, best
        first (``candidate_index``, ``sequence_score``). With references (``targets`` or ``target_column``)
        the records also hold their teacher-forced scores (not when sampling).
        """
        opts = DecodeOptions(**options)
        generation = resolve_generation_for(self.model, self.tokenizer, opts, warn=True)
        rows = self._rows(data, source_column, target_column, id_column, targets, prefix)
        out: list[PredictionRecord] = []
        folder = Path(logits_dir) if logits_dir is not None else None
        if opts.capture == "full" and folder is None:
            raise ValueError("capture='full' needs logits_dir, the folder to stream logits into")
        for index, positions in enumerate(plan_batches(rows, batch_size)):
            batch = [rows[p] for p in positions]
            records = decode_rows(
                self.model,
                self.tokenizer,
                batch,
                opts,
                max_source_length,
                folder,
                index,
                score_references=score_references,
                generation=generation,
            )
            out.extend(records)
        if folder is not None:
            from t5score.engine.logits_store import merge_index

            merge_index(folder)
        out.sort(key=lambda r: (r.position, r.sample_index or 0, r.candidate_index or 0))
        return out

    def predict(self, data: Sequence[str] | pd.DataFrame, **kwargs) -> pd.DataFrame:
        """Like :meth:`predict_records`, as a DataFrame with the columns of ``predictions.parquet``."""
        records = self.predict_records(data, **kwargs)
        frame = pd.DataFrame([asdict(r) for r in records], columns=PredictionRecord.column_names())
        for unused in (["sample_index"], ["candidate_index", "sequence_score"]):
            if frame[unused[0]].isna().all():  # not sampled / no beam search
                frame = frame.drop(columns=unused)
        return frame.drop(columns=["position"])

    def score(self, sources: Sequence[str], targets: Sequence[str], **kwargs) -> pd.DataFrame:
        """Teacher-forced scores of ``targets`` given ``sources`` (see :func:`t5score.engine.forced.score_pairs`)."""
        from t5score.engine.forced import score_pairs

        scores = score_pairs(self.model, self.tokenizer, list(sources), list(targets), **kwargs)
        return pd.DataFrame([asdict(s) for s in scores])
