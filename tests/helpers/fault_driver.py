"""Run ``t5score`` in a subprocess with one fault injected at a chosen point, for the lifecycle tests.

``python -m tests.helpers.fault_driver FAULT t5score-args...``, FAULT one of:

- ``kill-decode``: SIGKILL itself once 2 batches are on disk (no ``finally`` runs, as with ``kill -9``);
- ``kill-merge``: SIGKILL while writing the second chunk of the merged output;
- ``kill-report``: SIGKILL while writing the report;
- ``slow``: sleep 1 s in every batch (a run long enough to signal or to race);
- ``sigint-merge``: send itself SIGINT while writing the merged output (a Ctrl-C during the merge).
"""

from __future__ import annotations

import os
import signal
import sys
import time

import t5score.reports
import t5score.runs.runner
import t5score.runs.writer
from t5score.cli import main

MERGE_CHUNK_ROWS = 4  # small chunks: the merge has several


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def inject(fault: str) -> None:
    writer = t5score.runs.writer
    writer.MERGE_CHUNK_ROWS = MERGE_CHUNK_ROWS
    if fault == "kill-decode":
        real_part, calls = writer.write_part, []

        def write_part(*args, **kwargs):
            if len(calls) == 2:
                _kill()
            calls.append(1)
            return real_part(*args, **kwargs)

        writer.write_part = write_part
    elif fault in ("kill-merge", "sigint-merge"):
        real_write, chunks = writer.TableWriter.write, []

        def write(self, frame):
            if len(chunks) == 1:
                if fault == "kill-merge":
                    _kill()
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)  # the handler raises here
            chunks.append(1)
            return real_write(self, frame)

        writer.TableWriter.write = write
    elif fault == "kill-report":
        t5score.reports.write_report = lambda *a, **k: _kill()
    elif fault == "slow":
        from t5score.runs.predict import Seq2SeqPredictor

        real_step = Seq2SeqPredictor.predict_step

        def predict_step(self, batch, batch_idx=0):
            time.sleep(1.0)
            return real_step(self, batch, batch_idx)

        Seq2SeqPredictor.predict_step = predict_step
    else:
        raise SystemExit(f"unknown fault {fault!r}")


if __name__ == "__main__":
    inject(sys.argv[1])
    sys.exit(main(sys.argv[2:]))
