"""OUT_DIR's run lock and the temporary files a killed run leaves there."""

import fcntl
from pathlib import Path

from ..errors import OutputBusyError
from ..io import TEMPORARY_NAME

LOCK_NAME = ".gpucal.lock"


class _Lock:
    """An exclusive lock on OUT_DIR for the duration of a run (two runs would clash)."""

    def __init__(self, out_dir):
        self.path = Path(out_dir) / LOCK_NAME

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise OutputBusyError(f"another gpucal run is writing {self.path.parent} "
                                  f"(it holds {self.path}); wait for it to finish") from None
        return self

    def __exit__(self, *exc):
        self._file.close()


def lock(out_dir):
    """A context manager holding OUT_DIR's lock (OutputBusyError if a run holds it)."""
    return _Lock(out_dir)


def sweep(out_dir):
    """Remove the temporary files of a killed run (under the lock, none are in use)."""
    for path in Path(out_dir).rglob(".*.tmp"):
        if TEMPORARY_NAME.match(path.name) and path.is_file():
            path.unlink()
