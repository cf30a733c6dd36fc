"""A night's tasks overlap their reading, compute and writing (gpucal.pipeline.stages): the
same products and rows as one task after another, within the stages' bounds, and a failed
write stops the night in one line as before."""

import errno
import threading
import time
from collections import Counter

import pytest

import gpucal
from gpucal.cli import main
from gpucal.errors import DiskFullError
from gpucal.pipeline import execute as execute_module
from gpucal.pipeline import stages as stages_module
from gpucal.pipeline import tasks
from gpucal.pipeline.execute import SerialExecutor, ThreadExecutor, execute, plan_reduction
from gpucal.pipeline.stages import Stages
from test_faults import _state
from test_reduce import N_PRODUCTS, assert_same_products, products, rows, simulate


class _OneByOne:
    """Each task read, computed and written before the next begins: no overlap at all."""

    name = "one-by-one"

    def map(self, function, tasks):
        for task in tasks:
            yield function(task)


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """A small night reduced task after task: (raw_dir, out_dir)."""
    root = tmp_path_factory.mktemp("overlap")
    simulate(root / "raw", seed=5)
    plan, _ = plan_reduction(root / "raw")
    summary = execute(plan, root / "one", executor=_OneByOne(), device="cpu")
    assert summary.failed == [] and summary.products == N_PRODUCTS
    return root / "raw", root / "one"


@pytest.fixture(params=["cpu", pytest.param("gpu", marks=pytest.mark.gpu)])
def device(request):
    return request.param


class _Watch:
    """Counts how many tasks are in each stage at once (the stages' own functions wrapped)."""

    def __init__(self, monkeypatch):
        self.now, self.most, self.lock = Counter(), Counter(), threading.Lock()
        for stage, name in (("read", "_read"), ("compute", "_compute"), ("write", "_write")):
            monkeypatch.setattr(tasks, name, self._wrap(stage, getattr(tasks, name)))
        monkeypatch.setattr(execute_module, "run_task", self._wrap("task", tasks.run_task))

    def _wrap(self, stage, function):
        def watched(*args, **kwargs):
            with self.lock:
                self.now[stage] += 1
                self.most[stage] = max(self.most[stage], self.now[stage])
            try:
                time.sleep(0.01)  # long enough for the others to catch up, if they may
                return function(*args, **kwargs)
            finally:
                with self.lock:
                    self.now[stage] -= 1
        return watched


@pytest.mark.parametrize("executor", ["serial", "threads"])
def test_overlapping_stages_give_the_products_and_rows_of_one_task_after_another(
        night, tmp_path, monkeypatch, device, executor):
    raw, one = night
    watch = _Watch(monkeypatch)
    # Two tasks computing at once under the CuPy stand-in race on its static threadIdx and
    # blockIdx (execute.default_executor): on the GPU the threads executor here computes one.
    compute = 2 if executor == "threads" and device == "cpu" else 1
    stages = Stages(compute=compute, writers=2, read_ahead_bytes=1)
    chosen = SerialExecutor() if executor == "serial" else ThreadExecutor(compute)
    chosen.stages = stages  # a budget of one byte: a single task's raw frames at a time
    plan, _ = plan_reduction(raw)
    summary = execute(plan, tmp_path / "out", executor=chosen, device=device)
    assert summary.failed == [] and summary.products == N_PRODUCTS
    if device == "cpu":  # the GPU's night matches the CPU's within rounding: test_reduce
        assert_same_products(products(tmp_path / "out"), products(one))
        assert rows(tmp_path / "out") == rows(one)
    assert watch.most["task"] > watch.most["compute"]  # they did overlap
    assert watch.most["compute"] <= stages.compute and watch.most["write"] <= stages.writers
    assert watch.most["task"] <= stages.threads  # tasks (and products) held at once
    budget = stages_module._gates(stages).budget
    assert budget.used == 0 and budget.peak <= max(tasks._raw_bytes(t) for t in
                                                   plan.masters + plan.science)


def test_the_read_ahead_budget_holds_tasks_back_until_bytes_are_free():
    budget = stages_module._Budget(100)
    order = []

    def second():
        with budget.holding(60):
            order.append("second")

    with budget.holding(60):  # 60 + 60 > 100: the second waits for the first
        waiter = threading.Thread(target=second)
        waiter.start()
        time.sleep(0.05)
        order.append("first done")
    waiter.join(5)
    assert order == ["first done", "second"] and budget.peak == 60
    with budget.holding(500):  # larger than the budget: alone, it may
        assert budget.used == 500
    assert budget.used == 0


def _full_disk_on_the_third_write(monkeypatch):
    """From the third product on, the disk is full; (written, attempted) lists of outputs."""
    real, written, attempted = tasks._write, [], []

    def write(out_dir, output, save, raws=()):
        attempted.append(output)
        if len(written) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(out_dir / output))
        written.append(output)
        return real(out_dir, output, save, raws)

    monkeypatch.setattr(tasks, "_write", write)
    return written, attempted


@pytest.mark.parametrize("executor", ["serial", "threads"])
def test_a_full_disk_in_a_writing_thread_stops_the_night_as_before(night, tmp_path, monkeypatch,
                                                                  device, executor, capsys):
    raw, one = night
    workers = 1 if executor == "threads" and device == "gpu" else None  # one computing: above
    written, attempted = _full_disk_on_the_third_write(monkeypatch)
    with pytest.raises(DiskFullError, match="No space left on device"):
        gpucal.reduce(raw, tmp_path / "out", device=device, executor=executor, workers=workers)
    files, recorded, hidden = _state(tmp_path / "out")
    assert files == recorded == set(written) and hidden == []  # complete and recorded
    assert len(attempted) < N_PRODUCTS  # the night stopped: only tasks under way went on
    monkeypatch.undo()
    summary = gpucal.reduce(raw, tmp_path / "out", device=device, executor=executor,
                            workers=workers)
    assert summary.failed == [] and summary.products + summary.reused == N_PRODUCTS
    if device == "cpu":
        assert_same_products(products(tmp_path / "out"), products(one))
    _full_disk_on_the_third_write(monkeypatch)
    assert main(["reduce", str(raw), "-o", str(tmp_path / "cli"), "--device", device,
                 "--executor", executor, *(["--workers", "1"] if workers else [])]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "[" not in line]
    assert len(err) == 1 and err[0].startswith("gpucal reduce: error: No space left on device")
