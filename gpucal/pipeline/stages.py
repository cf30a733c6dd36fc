"""How a process overlaps its tasks' reading, compute and writing, with memory bounded.

A task's work has three stages: reading its raw frames (and hashing them, for the record)
on the host, computing its product on the device, and writing the product (and hashing it
as written) on the host. On a GPU the compute of a 2048² science frame takes milliseconds
and the host's reading and writing tens of them, so the executors run more tasks than
compute slots, and :class:`Stages` gates each stage per process:

* at most ``compute`` tasks compute at once (one on a GPU: no two tasks share the device,
  and every device operation of a task — upload, compute, download — happens inside its
  turn);
* at most ``writers`` tasks write at once; a task waiting to write holds its product (host
  arrays), so products waiting are bounded by the executor's threads (:attr:`Stages.threads`);
* raw frames read but not yet computed stay within ``read_ahead_bytes`` (a task that
  needs more than that reads alone, when no other holds any).

An executor runs :attr:`Stages.threads` tasks at once per process: while one computes, one
reads ahead and ``writers`` write. The gates live in the process (one set per distinct
``Stages``), so a Dask worker running several task threads overlaps the same way.
"""

import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass

from ..backend import load_backend

__all__ = ["STAGES", "Stages", "busy_seconds"]

#: The stages, in a task's order (the keys of :func:`busy_seconds`).
STAGES = ("read", "compute", "write")


@dataclass(frozen=True)
class Stages:
    """Limits on one process's tasks at once, per stage (hashable and picklable: the gates
    themselves are made in each process that uses them).

    Parameters
    ----------
    compute : int, default 1
        Tasks computing at once.
    writers : int, optional
        Tasks writing at once; default :func:`default_writers`.
    read_ahead_bytes : int, optional
        Raw bytes (file sizes) read but not yet computed, at most; default an eighth of the
        memory available now, in whole 64 MiB, at least 64 MiB.

    Examples
    --------
    >>> from gpucal.pipeline.stages import Stages
    >>> stages = Stages(compute=1, writers=2, read_ahead_bytes=10**8)
    >>> stages.threads  # one computing, one reading ahead, two writing
    4
    >>> with stages.reading(10**6), stages.computing():
    ...     pass
    """

    compute: int = 1
    writers: int = None
    read_ahead_bytes: int = None

    def __post_init__(self):
        if self.writers is None:
            object.__setattr__(self, "writers", default_writers())
        if self.read_ahead_bytes is None:
            # whole 64 MiB: the default made twice is the same Stages, with the same gates
            unit = 64 << 20
            memory = load_backend("numpy").available_memory()
            object.__setattr__(self, "read_ahead_bytes", max(1, memory // 8 // unit) * unit)
        for name in ("compute", "writers", "read_ahead_bytes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1; got {getattr(self, name)}")

    @property
    def threads(self):
        """Tasks an executor runs at once in one process: compute, one reading ahead, writers."""
        return self.compute + 1 + self.writers

    def reading(self, nbytes):
        """Hold `nbytes` of the read-ahead budget while the block reads (and the caller
        computes: :meth:`computing` inside it releases it when the compute is done)."""
        return _gates(self).budget.holding(nbytes)

    def computing(self):
        """A compute turn (a context manager)."""
        return _timed("compute", _gates(self).compute)

    def writing(self):
        """A writing turn (a context manager)."""
        return _timed("write", _gates(self).write)


def default_writers():
    """Tasks writing at once by default: one per four CPUs, between 2 and 4.

    A 2048² product takes a core for its SHA-256 and about as long again to encode and
    write, then waits for the disk (fsync): two writers keep one writing while the other
    waits; more than one per four CPUs would share the disk, not the work.
    """
    return max(2, min(4, load_backend("numpy").threads // 4))


class _Budget:
    """Bytes held by tasks between their reading and the end of their compute."""

    def __init__(self, limit):
        self.limit, self.used, self.peak = limit, 0, 0
        self._cond = threading.Condition()

    @contextmanager
    def holding(self, nbytes):
        with self._cond:  # one task always may: a task larger than the budget reads alone
            self._cond.wait_for(lambda: self.used == 0 or self.used + nbytes <= self.limit)
            self.used += nbytes
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            with self._cond:
                self.used -= nbytes
                self._cond.notify_all()


class _Gates:
    def __init__(self, stages):
        self.compute = threading.BoundedSemaphore(stages.compute)
        self.write = threading.BoundedSemaphore(stages.writers)
        self.budget = _Budget(stages.read_ahead_bytes)


_made = {}
_made_lock = threading.Lock()
_busy = Counter()  # stage -> seconds spent in it by this process's tasks (not waiting)
_busy_lock = threading.Lock()


def _gates(stages):
    with _made_lock:
        if stages not in _made:
            _made[stages] = _Gates(stages)
        return _made[stages]


@contextmanager
def _timed(stage, gate=None):
    """Take `gate` (if any), then count the block's time as `stage`'s busy time."""
    if gate is not None:
        gate.acquire()
    started = time.perf_counter()
    try:
        yield
    finally:
        with _busy_lock:
            _busy[stage] += time.perf_counter() - started
        if gate is not None:
            gate.release()


def timed_read():
    """Count the block's time as reading (reads are bounded by bytes, not turns)."""
    return _timed("read")


def busy_seconds():
    """{stage: seconds} this process's tasks have spent reading, computing and writing (not
    waiting for a turn), since the process started: the sum of the stages, to set against a
    night's wall time (how well they overlapped)."""
    with _busy_lock:
        return {stage: _busy[stage] for stage in STAGES}
