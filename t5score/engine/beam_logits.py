"""Raw logits of beam-search candidates (capture ``full``), kept on disk until the finalists are known.

Beams are reordered at every step and most of them never reach the output, so the logits of a step cannot
go to the run's logits file at once. :class:`StepLogitsStore` writes each step's ``[B*N, V]`` raw logits
to a temporary memory-mapped file (``[steps, B*N, V]`` float32, sparse on disk: steps never reached take
no space), and :meth:`StepLogitsStore.replay` hands each returned candidate's rows to the run's sink, read
along the candidate's ``beam_indices``. Memory holds one step at a time.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

import numpy as np
import torch


class StepLogitsStore:
    """Every step's beam logits in a temporary file; see the module docstring."""

    def __init__(self, steps: int, rows: int, vocab: int):
        handle, self.path = tempfile.mkstemp(prefix="t5score-beam-logits-", suffix=".npy")
        os.close(handle)
        shape = (max(steps, 1), rows, vocab)
        self.array = np.lib.format.open_memmap(self.path, mode="w+", dtype=np.float32, shape=shape)

    def write(self, step: int, logits: torch.Tensor) -> None:
        """Store the raw logits ``[B*N, V]`` of decoder step ``step``."""
        self.array[step] = logits.detach().float().cpu().numpy()

    def replay(self, out, sink: Callable[[int, torch.Tensor, torch.Tensor], None]) -> None:
        """``sink(step, candidate_rows [A], logits [A, V])`` for each step of the returned candidates of
        ``out`` (a DecodeOutput with ``beam_indices``), then the temporary file is removed."""
        index = out.beam_indices.cpu()  # [B*R, T], -1 after a candidate's end
        try:
            for step in range(index.shape[1]):
                rows = (index[:, step] >= 0).nonzero().squeeze(-1)  # [A] candidates alive at this step
                if len(rows):
                    beams = index[rows, step].numpy()
                    sink(step, rows, torch.from_numpy(np.asarray(self.array[step, beams])))
        finally:
            self.close()

    def close(self) -> None:
        del self.array
        os.unlink(self.path)
