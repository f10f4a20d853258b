"""An exclusive lock on a run's output folder, held for the run's whole life.

Two runs writing into one folder would delete each other's files (the merge clears its spool folder)
and report success on a short table. :class:`RunLock` takes an OS file lock on
``<output_dir>/.t5score.lock`` (``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows): the OS
releases it when the process ends, however it ends, so the lock of a killed run is simply taken over by
the next one. The file keeps the holder's pid and command for the refusal message.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from t5score.data.io import InputError

LOCK_NAME = ".t5score.lock"


class RunLock:
    """``with RunLock(folder):`` holds the folder's lock or raises :class:`InputError` naming the holder."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise InputError(
                f"{self.path.parent}: cannot write into the output folder ({err.strerror})"
            ) from None
        if not _try_lock(fd):
            holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise InputError(
                f"{self.path.parent}: another t5score run is writing into this folder ({holder}); "
                "wait for it to end or pick another --output_dir"
            )
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}: t5score {' '.join(sys.argv[1:])}"[:4000].encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            _unlock(self._fd)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
