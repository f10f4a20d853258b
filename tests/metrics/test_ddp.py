"""Two CPU processes (gloo), each updating half the batches, give exactly the single-process compute()."""

from __future__ import annotations

import datetime
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from t5score.metrics import (
    BrierScore,
    CalibrationError,
    SequenceLogLikelihood,
    TokenEntropy,
)

N_BATCHES = 6


def _batches(seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Dyadic values (multiples of 1/1024, lengths powers of 2): float64 sums are exact in any order."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(N_BATCHES):
        conf = torch.randint(0, 1025, (300,), generator=gen).double() / 1024  # includes 0.0 and 1.0
        lengths = 2 ** torch.randint(0, 4, (8,), generator=gen)
        mask = torch.arange(8)[None, :] < lengths[:, None]
        out.append(
            {
                "conf": conf,
                "correct": torch.rand(300, generator=gen) < conf,
                "entropies": torch.randint(0, 4096, (8, 8), generator=gen).double() / 1024,
                "logprobs": -torch.randint(0, 8192, (8, 8), generator=gen).double() / 1024,
                "mask": mask,
            }
        )
    return out


def _metrics() -> dict[str, torch.nn.Module]:
    return {
        "ece": CalibrationError(n_bins=10, norm="l1"),
        "rmsce": CalibrationError(n_bins=10, norm="l2"),
        "mce": CalibrationError(n_bins=10, norm="max"),
        "brier": BrierScore(),
        "entropy": TokenEntropy(),
        "loglik": SequenceLogLikelihood(alpha=2.0),
    }


def _run(batches: list[dict[str, torch.Tensor]]) -> dict[str, object]:
    metrics = _metrics()
    for b in batches:
        for key in ("ece", "rmsce", "mce", "brier"):
            metrics[key].update(b["conf"], b["correct"])
        metrics["entropy"].update(entropies=b["entropies"], mask=b["mask"])
        metrics["loglik"].update(b["logprobs"], b["mask"])
    out: dict[str, object] = {key: m.compute() for key, m in metrics.items()}
    out["bins"] = tuple(metrics["ece"].reliability())
    out["local_count"] = int(metrics["ece"].count.sum())  # states are restored after the synced compute
    return out


def _worker(rank: int, port: int, result_dir: str) -> None:
    """Join a 2-process gloo group as ``rank``, update with every other batch, save the synced results."""
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=2,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        torch.save(_run(_batches()[rank::2]), f"{result_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _spawned_worker(index: int, port: int, result_dir: str) -> None:
    _worker(index + 1, port, result_dir)  # spawned process 0 is rank 1


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_equals_single_process(tmp_path):
    """Rank 0 runs in this process, rank 1 in a spawned one (one extra interpreter keeps this fast)."""
    single = _run(_batches())
    threads = torch.get_num_threads()
    context = mp.spawn(_spawned_worker, args=((port := _free_port()), str(tmp_path)), nprocs=1, join=False)
    try:
        _worker(0, port, str(tmp_path))
        assert context.join(timeout=120), "the spawned rank 1 did not finish"
    finally:
        torch.set_num_threads(threads)
        for process in context.processes:
            if process.is_alive():
                process.terminate()
    for rank in (0, 1):
        ranked = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        assert ranked["local_count"] == 300 * N_BATCHES // 2
        for key in ("ece", "rmsce", "mce", "brier", "entropy"):
            assert torch.equal(ranked[key], single[key]), (rank, key, ranked[key], single[key])
        for key, value in single["loglik"].items():
            assert torch.equal(ranked["loglik"][key], value), (rank, key)
        for got, want in zip(ranked["bins"], single["bins"], strict=True):
            assert torch.equal(got.nan_to_num(-1), want.nan_to_num(-1))
    assert int(single["bins"][4].sum()) == 300 * N_BATCHES
