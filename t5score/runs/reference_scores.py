"""Teacher-forced scores of the references of decoded rows (the ``ref_*`` columns of ``predictions.parquet``).

Each source's reference is scored once, from the encoder output its decoding already computed, and every
candidate (sample or beam) of that source carries the scores.
"""

from __future__ import annotations

import torch

from t5score.records import REFERENCE_COLUMNS, PredictionRecord, fill_from_pair


def reference_scores_per_source(model, tokenizer, good, decoded, hidden, mask, per_source: int) -> None:
    """Score each row's target once (:func:`add_reference_scores`) and give the ``ref_*`` fields (and a
    reference error) to each of its ``per_source`` records, which follow each other in ``decoded``."""
    heads = [PredictionRecord(r.position, r.id, r.source, target=r.target) for r in good]
    add_reference_scores(model, tokenizer, heads, hidden, mask)
    for i, head in enumerate(heads):
        for rec in decoded[i * per_source : (i + 1) * per_source]:
            for name in REFERENCE_COLUMNS:
                value = getattr(head, name)
                setattr(rec, name, list(value) if isinstance(value, list) else value)
            rec.error = rec.error or head.error


def add_reference_scores(
    model, tokenizer, records: list[PredictionRecord], hidden: torch.Tensor, mask: torch.Tensor
) -> None:
    """Teacher-forced scores of the targets (``ref_*`` fields) of ``records``, whose sources' encoder
    output is ``hidden`` / ``mask`` (row ``i`` for record ``i``); rows without a target are left as they are."""
    from t5score.engine.forced import score_pairs

    todo = [i for i, r in enumerate(records) if r.error is None and r.target and r.target.strip()]
    if not todo:
        return
    index = torch.tensor(todo, device=hidden.device)
    scores = score_pairs(
        model,
        tokenizer,
        [records[i].source for i in todo],
        [records[i].target for i in todo],
        top_k=1,
        encoder_states=(hidden.index_select(0, index), mask.index_select(0, index)),
    )
    for i, sc in zip(todo, scores, strict=True):
        rec = records[i]
        if sc.nonfinite:  # keep the row, flag it, and keep NaN out of the reference columns
            rec.error = rec.error or "non-finite logits (NaN or inf) while scoring the reference; try float32"
            continue
        fill_from_pair(rec, sc, REFERENCE_COLUMNS)
