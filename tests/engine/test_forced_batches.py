"""The batch plan of teacher-forced scoring (``forced_inputs.plan_windows``, ``cut_batches``): every pair
once, within the token budget, padding bounded, and the cut the cheapest one by brute force."""

from __future__ import annotations

import pytest
import torch

from t5score.engine.forced_inputs import BATCH_OVERHEAD, cut_batches, plan_windows
from t5score.engine.tokens import pad_right

PAD_CAP = 0.10  # padded share of the decoder positions on the spread-length set below


def _set_partitions(items: list[int]):
    """Every partition of ``items`` into non-empty blocks (not only runs of neighbours)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _set_partitions(rest):
        yield [[first], *part]
        for i in range(len(part)):
            yield [*part[:i], [first, *part[i]], *part[i + 1 :]]


def _cost(blocks: list[list[int]], lens: list[int], overhead: int) -> int:
    return sum(overhead + len(b) * max(lens[i] for i in b) for b in blocks)


def _fits(blocks: list[list[int]], lens: list[int], width: int, budget: int) -> bool:
    return all(len(b) == 1 or len(b) * (width + max(lens[i] for i in b)) <= budget for b in blocks)


def _padding(batch_targets: list[list[int]]) -> tuple[int, int]:
    """(decoder positions, real target tokens) of one batch, counted on the padded tensor itself."""
    _, mask = pad_right(batch_targets, 0, torch.device("cpu"))
    return mask.numel(), int(mask.sum())


@pytest.mark.parametrize("seed", range(12))
def test_cut_is_the_cheapest_batching_by_brute_force(seed):
    """Over all partitions of the targets into batches (any grouping, not only runs of the sorted lengths)
    that fit the budget, none costs less than the cut: padded positions plus the overhead per batch."""
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 8, (1,), generator=g))
    lens = sorted(torch.randint(1, 40, (n,), generator=g).tolist(), reverse=True)
    width, budget = (
        int(torch.randint(1, 30, (1,), generator=g)),
        int(torch.randint(20, 200, (1,), generator=g)),
    )
    overhead = [0, 5, BATCH_OVERHEAD][seed % 3]
    runs = cut_batches(lens, width, budget, overhead)
    blocks = [list(range(a, b)) for a, b in runs]
    assert [i for b in blocks for i in b] == list(range(n))  # runs in order, each target once
    assert _fits(blocks, lens, width, budget)
    feasible = [p for p in _set_partitions(list(range(n))) if _fits(p, lens, width, budget)]
    assert _cost(blocks, lens, overhead) == min(_cost(p, lens, overhead) for p in feasible)


def test_cut_keeps_equal_lengths_whole_and_splits_at_a_jump():
    """Equal targets share one batch; a jump of more than the overhead's worth of padding is a cut."""
    assert cut_batches([30] * 10, 10, 8192, 64) == [(0, 10)]
    assert cut_batches([60] * 5 + [10] * 5, 10, 8192, 64) == [(0, 5), (5, 10)]  # 250 padded > 64
    assert cut_batches([12] * 5 + [10] * 5, 10, 8192, 64) == [(0, 10)]  # 10 padded < 64
    assert cut_batches([50, 40], 10, 100, 64) == [(0, 1), (1, 2)]  # 2 * (10 + 50) > budget
    assert cut_batches([500], 10, 100, 64) == [(0, 1)]  # one pair always fits


@pytest.mark.parametrize("budget", [2048, 8192])
def test_plan_covers_every_pair_once_with_padding_capped(budget):
    """A spread-length set (12 sources of 16-256 tokens, 8 candidates each of 1-128 tokens): every pair in
    exactly one batch of its own window, each batch sorted and within the budget, each padded by at most
    the bound :func:`cut_batches` states, and padding under PAD_CAP of all decoder positions, counted on
    the padded tensors. (Filled to the budget, the earlier plan padded 13% and 21% of them here.)"""
    g = torch.Generator().manual_seed(0)
    src_lens = torch.randint(16, 257, (12,), generator=g).tolist()
    item_src = [s for s in range(12) for _ in range(8)]
    tgt_lens = torch.randint(1, 129, (len(item_src),), generator=g).tolist()
    windows = plan_windows(src_lens, item_src, tgt_lens, budget)
    seen = [w for _, batches in windows for b in batches for w in b]
    assert sorted(seen) == list(range(len(item_src)))
    assert sorted(s for window, _ in windows for s in window) == list(range(12))
    positions = real = 0
    for window, batches in windows:
        width = max(src_lens[s] for s in window)
        for b in batches:
            lens = [tgt_lens[w] for w in b]
            assert all(item_src[w] in window for w in b) and lens == sorted(lens, reverse=True)
            assert len(b) == 1 or len(b) * (width + lens[0]) <= budget
            area, tokens = _padding([[1] * n for n in lens])
            bound = BATCH_OVERHEAD * sum(1 / k for k in range(1, len(b)))
            assert area - tokens <= bound
            positions, real = positions + area, real + tokens
    assert real == sum(tgt_lens)
    assert (positions - real) / positions < PAD_CAP
