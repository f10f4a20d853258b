"""Scoring built on the engine's teacher-forced scores: BARTScore directions, reranking, meta-evaluation.

``t5score.scoring.score_pairs`` is the engine's :func:`t5score.engine.forced.score_pairs`; the options of
``t5score score`` and ``t5score rerank`` are one :class:`~t5score.scoring.options.ScoreOptions`.
"""

from t5score.engine.forced import SCORE_FIELDS, PairScore, score_pairs
from t5score.scoring.options import ScoreOptions

__all__ = ["SCORE_FIELDS", "PairScore", "ScoreOptions", "score_pairs"]
