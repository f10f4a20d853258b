"""Diverse beam search (``num_beam_groups > 1``, ``diversity_penalty``) against an independent reference.

The reference is a direct per-step implementation of Hamming-diverse beam search (Vijayakumar et al. 2018,
as transformers 4.x's ``_group_beam_search`` ran it), one source at a time, over the full vocabulary, the
model recomputed without cache on every prefix: within a step the groups are decoded in turn; group ``g``'s
log-probabilities are lowered by ``diversity_penalty`` times the number of times each token was chosen by
the earlier groups at this step; each group keeps its ``n`` best continuations by accumulated score
(``2n`` looked at: an EOS among the first ``n`` finishes a hypothesis with ``score / length **
length_penalty``, the others continue); at the last step every kept continuation finishes; the candidates
are the best finished hypotheses of all groups. ``early_stopping="never"`` (with ``length_penalty >= 0``,
where stopping early is exact) and ``True`` (a group takes no more hypotheses once it has ``n``).
With one group, diverse beam search is plain beam search: ``generate``'s candidates.
"""

from __future__ import annotations

import pytest
import torch

from t5score.engine.beam import beam_search
from t5score.engine.options import DecodeOptions
from tests.engine.test_beam import STEPS, assert_matches, inputs, reference, tiny


def slow_diverse(model, input_ids, mask, beams, groups, penalty, length_penalty, early, returned, steps):
    """``[(score, tokens)]`` of one source (``input_ids`` ``[1, S]``), best first (see the module doc)."""
    n = beams // groups
    config = model.generation_config
    start, eos = config.decoder_start_token_id, config.eos_token_id
    running = [[([start], 0.0)] for _ in range(groups)]  # per group: (decoder ids, accumulated score)
    pools: list[list[tuple[float, list[int]]]] = [[] for _ in range(groups)]
    for t in range(steps):
        counts = torch.zeros(model.config.vocab_size, dtype=torch.float64)
        for g in range(groups):
            ids = torch.tensor([seq for seq, _ in running[g]])
            with torch.no_grad():
                logits = model(
                    input_ids=input_ids.expand(len(ids), -1),
                    attention_mask=mask.expand(len(ids), -1),
                    decoder_input_ids=ids,
                    use_cache=False,
                ).logits[:, -1]
            logprobs = torch.log_softmax(logits.double(), -1) - penalty * counts
            cands = [
                (score + float(logprobs[i, v]), i, v)
                for i, (_, score) in enumerate(running[g])
                for v in range(logprobs.shape[1])
            ]
            cands.sort(key=lambda c: -c[0])
            following = []
            full = early is True and len(pools[g]) == n  # a full group takes no more (as of the step's start)
            for rank, (score, i, v) in enumerate(cands[: 2 * n]):
                seq = running[g][i][0] + [v]
                last = t == steps - 1
                if v == eos or last:
                    if rank < n and not full:
                        pools[g] = sorted(
                            pools[g] + [(score / (t + 1) ** length_penalty, seq)], key=lambda p: -p[0]
                        )[:n]
                if v != eos and len(following) < n:  # (at the last step: their tokens count for later groups)
                    following.append((seq, score))
            running[g] = following
            for seq, _ in following:
                counts[seq[-1]] += 1
    merged = sorted((p for pool in pools for p in pool), key=lambda p: -p[0])
    return [(score, seq[1:]) for score, seq in merged[:returned]]


@pytest.mark.parametrize(
    "kind,engine,beams,groups,penalty,length_penalty,early",
    [
        ("bart", "hf", 6, 3, 1.0, 1.0, "never"),
        ("bart", "hf", 4, 2, 0.5, 0.0, True),
        ("t5v1.1", "t5", 6, 2, 2.0, 2.0, "never"),
        ("t5v1.1", "hf", 4, 4, 0.0, 1.0, True),
        ("t5", "t5", 6, 3, 0.7, 1.0, True),
    ],
)
def test_diverse_beam_search_equals_the_slow_reference(
    kind, engine, beams, groups, penalty, length_penalty, early
):
    model = tiny(kind)
    input_ids, mask = inputs(model.config.vocab_size, batch=3)
    returned = beams - 1
    opts = DecodeOptions(
        STEPS,
        engine=engine,
        num_beams=beams,
        num_return_sequences=returned,
        num_beam_groups=groups,
        diversity_penalty=penalty,
        length_penalty=length_penalty,
        early_stopping=early,
    )
    out = beam_search(model, input_ids, mask, opts)
    for b in range(input_ids.shape[0]):
        width = int(mask[b].sum())
        expected = slow_diverse(
            model,
            input_ids[b : b + 1, :width],
            mask[b : b + 1, :width],
            beams,
            groups,
            penalty,
            length_penalty,
            early,
            returned,
            STEPS,
        )
        for r, (score, seq) in enumerate(expected):
            row = b * returned + r
            n = int(out.num_tokens[row])
            assert out.token_ids[row, :n].tolist() == seq, (b, r)
            assert float(out.sequence_scores[row]) == pytest.approx(score, rel=1e-4, abs=1e-5)
            total = float(out.token_processed_logprobs[row, :n].double().sum()) / n**length_penalty
            assert total == pytest.approx(score, rel=1e-4, abs=1e-5)
    if penalty > 0:  # the groups differ: a penalty changes what later groups choose
        plain = beam_search(
            model,
            input_ids,
            mask,
            DecodeOptions(
                STEPS,
                engine=engine,
                num_beams=beams,
                num_return_sequences=returned,
                length_penalty=length_penalty,
                early_stopping=early,
            ),
        )
        assert out.token_ids.tolist() != plain.token_ids.tolist()


@pytest.mark.parametrize("kind,engine", [("bart", "hf"), ("t5", "t5")])
def test_one_group_is_plain_beam_search(kind, engine):
    model = tiny(kind)
    input_ids, mask = inputs(model.config.vocab_size)
    opts = DecodeOptions(STEPS, engine=engine, num_beams=4, num_return_sequences=4, num_beam_groups=1)
    out = beam_search(model, input_ids, mask, opts)
    assert_matches(model, out, reference(model, input_ids, mask, 4, 4, max_new_tokens=STEPS), 1.0)
