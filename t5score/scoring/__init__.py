"""Scoring built on the engine's teacher-forced scores: BARTScore directions, reranking, meta-evaluation.

``t5score.scoring.score_pairs`` is the engine's :func:`t5score.engine.forced.score_pairs`.
"""

from t5score.engine.forced import SCORE_FIELDS, PairScore, score_pairs

__all__ = ["SCORE_FIELDS", "PairScore", "score_pairs"]
