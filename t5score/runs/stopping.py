"""Stopping a run cleanly on Ctrl-C (SIGINT) or SIGTERM: after the current batch, resumable.

While the model decodes, the first signal only sets a flag: the batch in progress finishes and is
written, then :class:`StopAfterBatch` raises :class:`RunStopped`, and the command says how to resume. A
second Ctrl-C interrupts at once (the batch in progress is lost; every earlier one is on disk). During the
merge and the report a signal interrupts at once: the batches stay on disk and ``--resume`` finishes
the run.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from lightning.pytorch.callbacks import Callback

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunStopped(Exception):
    """The run stopped on a signal; what is on disk is complete and ``--resume`` continues it."""

    def __init__(self, signum: int, phase: str):
        self.signum, self.phase = signum, phase
        super().__init__(f"stopped by {signal.Signals(signum).name} {phase}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


class StopAfterBatch(Callback):
    """Raises :class:`RunStopped` at the end of the batch during which a signal arrived.

    Register it after the part writer, so the batch is on disk first."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def on_predict_batch_end(self, *args: Any, **kwargs: Any) -> None:
        if self.signum is not None:
            raise RunStopped(self.signum, "after the batch in progress")


@contextmanager
def _handling(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """``handler`` for SIGINT and SIGTERM inside the block (main thread only: signals reach no other);
    the previous handlers come back after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def stop_after_batch(callback: StopAfterBatch) -> AbstractContextManager[None]:
    """Inside the block, SIGINT and SIGTERM ask ``callback`` to stop after the current batch (a second
    SIGINT raises ``KeyboardInterrupt``)."""

    def handler(signum: int, frame: Any) -> None:
        if callback.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        callback.signum = signum

    return _handling(handler)


def stop_at_once(phase: str) -> AbstractContextManager[None]:
    """Inside the block, SIGINT and SIGTERM raise :class:`RunStopped` at once (merge, report)."""

    def handler(signum: int, frame: Any) -> None:
        raise RunStopped(signum, phase)

    return _handling(handler)
