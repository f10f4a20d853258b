"""Python API for notebooks and scripts: load a model once, decode or score texts, no Trainer needed.

>>> from t5score import Predictor                       # doctest: +SKIP
>>> p = Predictor.from_pretrained("default")            # doctest: +SKIP
>>> df = p.predict(["def add(a, b):\\n    return a + b"])  # doctest: +SKIP
>>> df[["prediction", "mean_logprob", "mean_entropy"]]  # doctest: +SKIP

:meth:`Predictor.predict` returns the rows of the CLI's ``predictions.parquet`` and :meth:`Predictor.score`
those of ``scores.parquet`` (see README, "Output contract"): the same columns in the same order and the
same values, since the records of each batch go through the runs' own merge and finishing steps
(:func:`t5score.runs.runner.finish_rows`: ROUGE against references, unused columns dropped).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from t5score.data.frames import frame_rows
from t5score.data.rows import build_rows, plan_batches, rows_from_texts
from t5score.engine.modeling import load_model_and_tokenizer
from t5score.engine.options import DecodeOptions
from t5score.engine.tokens import source_length_limit
from t5score.records import PredictionRecord, SourceRow
from t5score.runs.decode_rows import decode_rows, resolve_generation_for

if TYPE_CHECKING:
    from t5score.runs.runner import RunSpec


def _table(batches: Iterator[list[Any]], spec: RunSpec) -> pd.DataFrame:
    """The output table a run with ``spec`` writes for these batches of records, read back as the CLI's
    Parquet file reads: the parts are written and merged in a temporary folder by the runs' own code
    (which loads Lightning: on the first call, not when t5score.api is imported)."""
    from t5score.runs.runner import finish_rows
    from t5score.runs.writer import write_part

    with tempfile.TemporaryDirectory(prefix="t5score-api-") as folder:
        for index, records in enumerate(batches):
            write_part(Path(folder), index, records, spec.record_type)
        finish_rows(Path(folder), spec)
        return pd.read_parquet(Path(folder) / spec.output_name)


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

    def _rows(
        self, data, source_column, target_column, id_column, targets, prefix, reference_column=None
    ) -> list[SourceRow]:
        if isinstance(data, pd.DataFrame):
            records = frame_rows(data, "<DataFrame>", first_line=0)  # rows numbered as the ids: from 0
            return build_rows(
                records, "<DataFrame>", source_column, target_column, id_column, prefix, reference_column
            )
        if isinstance(data, str):
            raise TypeError("pass a list of texts (or a DataFrame), not a single string")
        return rows_from_texts(list(data), targets, prefix)

    def _decode(
        self,
        data: Sequence[str] | pd.DataFrame,
        targets: Sequence[str | None] | None,
        source_column: str,
        target_column: str | None,
        id_column: str | None,
        prefix: str,
        batch_size: int,
        max_source_length: int | None,
        score_references: bool,
        logits_dir: str | Path | None,
        options: dict[str, Any],
    ) -> tuple[list[SourceRow], DecodeOptions, Iterator[list[PredictionRecord]]]:
        """The rows, the options, and the records of each batch as they are decoded (the CLI's batches)."""
        opts = DecodeOptions(**options)
        generation = resolve_generation_for(self.model, self.tokenizer, opts, warn=True)
        rows = self._rows(data, source_column, target_column, id_column, targets, prefix)
        folder = Path(logits_dir) if logits_dir is not None else None
        if opts.capture == "full" and folder is None:
            raise ValueError("capture='full' needs logits_dir, the folder to stream logits into")
        length = source_length_limit(self.tokenizer, max_source_length)

        def batches() -> Iterator[list[PredictionRecord]]:
            for index, positions in enumerate(plan_batches(rows, batch_size)):
                yield decode_rows(
                    self.model,
                    self.tokenizer,
                    [rows[p] for p in positions],
                    opts,
                    length,
                    folder,
                    index,
                    score_references=score_references,
                    generation=generation,
                )
            if folder is not None:
                from t5score.engine.logits_store import merge_index

                merge_index(folder)

        return rows, opts, batches()

    def predict_records(
        self,
        data: Sequence[str] | pd.DataFrame,
        *,
        targets: Sequence[str | None] | None = None,
        source_column: str = "source",
        target_column: str | None = None,
        id_column: str | None = None,
        prefix: str = "",
        batch_size: int = 128,
        max_source_length: int | None = None,
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
        the records also hold their teacher-forced scores (not when sampling). Ids, batching and the
        source length (default: the tokenizer's ``model_max_length`` when that is a real limit, else 512)
        are those of ``t5score predict``; a DataFrame's column named ``id`` gives the ids unless
        ``id_column`` names another (``""``: row numbers).
        """
        _, _, batches = self._decode(
            data,
            targets,
            source_column,
            target_column,
            id_column,
            prefix,
            batch_size,
            max_source_length,
            score_references,
            logits_dir,
            options,
        )
        out = [record for batch in batches for record in batch]
        out.sort(key=lambda r: (r.position, r.sample_index or 0, r.candidate_index or 0))
        return out

    def predict(
        self,
        data: Sequence[str] | pd.DataFrame,
        *,
        targets: Sequence[str | None] | None = None,
        source_column: str = "source",
        target_column: str | None = None,
        id_column: str | None = None,
        prefix: str = "",
        batch_size: int = 128,
        max_source_length: int | None = None,
        score_references: bool = True,
        logits_dir: str | Path | None = None,
        **options,
    ) -> pd.DataFrame:
        """Like :meth:`predict_records` (same arguments), as the table ``t5score predict`` writes to
        ``predictions.parquet``: its columns in its order (with references the ``ref_*`` and ``rouge1/2/L``
        columns; ``sample_index`` only when sampling, ``candidate_index`` and ``sequence_score`` only with
        beam search), its values, list columns as NumPy arrays as ``pandas.read_parquet`` gives them."""
        from t5score.runs.predict import predict_spec

        rows, opts, batches = self._decode(
            data,
            targets,
            source_column,
            target_column,
            id_column,
            prefix,
            batch_size,
            max_source_length,
            score_references,
            logits_dir,
            options,
        )
        module = SimpleNamespace(options=opts, do_score_references=score_references, output_dir=None)
        return _table(batches, predict_spec(rows, module))

    def score(
        self,
        data: Sequence[str] | pd.DataFrame,
        targets: Sequence[str] | None = None,
        *,
        references: Sequence[str | Sequence[str] | None] | None = None,
        source_column: str = "source",
        target_column: str = "target",
        reference_column: str | None = None,
        id_column: str | None = None,
        prefix: str = "",
        batch_size: int = 16,
        max_source_length: int | None = None,
        directions: Sequence[str] = (),
        **options,
    ) -> pd.DataFrame:
        """Teacher-forced scores of ``targets`` given the sources, as ``t5score score`` writes them to
        ``scores.parquet`` (same columns, order and values; flagged rows kept with ``error``).

        ``data`` is a list of source texts (with ``targets``, and optionally ``references``: per row a text,
        a list of texts or None), or a DataFrame read through ``source_column``, ``target_column`` and
        ``reference_column``. ``directions`` are added to ``src->hyp`` (``ref->hyp``, ``hyp->ref``, ``F``,
        ...; see :mod:`t5score.scoring.directions`); ``options`` are those of
        :class:`t5score.scoring.options.ScoreOptions` (``score``, ``aggregate``, ``include_eos``,
        ``alpha``, ``max_target_length``, ``max_tokens_per_batch``, ``engine``...).
        """
        from t5score.engine.engines import uses_t5_kernels
        from t5score.runs.score import score_rows, score_spec
        from t5score.scoring.options import ScoreOptions

        if isinstance(directions, str):
            directions = [directions]
        opts = ScoreOptions(directions=("src->hyp", *directions), **options)
        uses_t5_kernels(self.model, opts.engine)  # engine "t5" on another model: refused before any row
        if not isinstance(data, pd.DataFrame):
            if isinstance(data, str):
                raise TypeError("pass a list of texts (or a DataFrame), not a single string")
            if targets is None:
                raise ValueError("score needs targets: one text to score per source")
            columns = {"source": list(data), "target": list(targets)}
            if references is not None:
                columns["references"] = list(references)
            lengths = {name: len(values) for name, values in columns.items()}
            if len(set(lengths.values())) > 1:
                raise ValueError(f"sources, targets and references differ in length: {lengths}")
            data = pd.DataFrame(columns)
            source_column, target_column, id_column = "source", "target", None
            reference_column = "references" if references is not None else None
        rows = (
            self._rows(data, source_column, target_column, id_column, None, prefix, reference_column)
            if len(data)
            else []
        )
        length = source_length_limit(self.tokenizer, max_source_length)
        batches = (
            score_rows(self.model, self.tokenizer, [rows[p] for p in positions], opts, length)
            for positions in plan_batches(rows, batch_size)
        )
        return _table(batches, score_spec(rows))
