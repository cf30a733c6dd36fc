"""The Dask executor: the same night on a 2-worker LocalCluster, and with a worker killed."""

import os
import signal
import sys

import numpy as np
import pytest

import gpucal
from gpucal import Frame
from gpucal.combine import combine_frame
from gpucal.cli import main
from gpucal.pipeline.execute import _executor, execute, plan_reduction
from test_reduce import N_PRODUCTS, assert_same_products, products, rows, simulate

distributed = pytest.importorskip("distributed")
from gpucal.pipeline.dask_executor import DaskExecutor  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def serial_night(tmp_path_factory):
    root = tmp_path_factory.mktemp("dask")
    simulate(root / "raw", seed=3)
    summary = gpucal.reduce(root / "raw", root / "serial", device="cpu", executor="serial")
    assert summary.failed == []
    return root


def test_a_dask_cluster_gives_the_serial_products_and_rows(client, serial_night):
    summary = gpucal.reduce(serial_night / "raw", serial_night / "dask", device="cpu",
                            executor="dask", client=client)
    assert summary.executor == "dask" and summary.failed == []
    assert summary.products == N_PRODUCTS
    assert_same_products(products(serial_night / "dask"), products(serial_night / "serial"))
    assert rows(serial_night / "dask") == rows(serial_night / "serial")
    assert client.status == "running"  # a client passed in is left open


def test_auto_with_a_client_means_dask(client):
    executor, _ = _executor("auto", client, None, "cpu")  # reduce() closes it: a client passed in stays
    assert isinstance(executor, DaskExecutor) and executor.client is client


def test_a_local_cluster_for_the_gpu_has_one_worker():
    """Tasks on one GPU, each worker with its own CUDA context and pool: one, unless asked."""
    with DaskExecutor(device="gpu") as executor:  # the tasks would run on the GPU; none do
        assert len(executor.client.scheduler_info()["workers"]) == 1


class _KillAWorker(DaskExecutor):
    """Kills one worker process with SIGKILL right after the science tasks are submitted."""

    def map(self, function, tasks):
        results = super().map(function, tasks)
        if tasks and type(tasks[0]).__name__ == "ScienceTask":
            self.pids = self.client.run(os.getpid)
            first = next(results)  # the other tasks are on the workers now
            os.kill(min(self.pids.values()), signal.SIGKILL)
            yield first
        yield from results


def test_a_killed_worker_loses_nothing(client, serial_night):
    plan, _ = plan_reduction(serial_night / "raw", serial_night / "killed")
    executor = _KillAWorker(client)
    summary = execute(plan, serial_night / "killed", executor=executor, device="cpu")
    assert summary.failed == [] and summary.products == N_PRODUCTS
    assert_same_products(products(serial_night / "killed"), products(serial_night / "serial"))
    assert rows(serial_night / "killed") == rows(serial_night / "serial")
    leftovers = [p for p in (serial_night / "killed").rglob(".*") if p.name != ".gpucal.lock"]
    assert leftovers == []
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it
    assert min(executor.pids.values()) not in client.run(os.getpid).values()


def test_cli_runs_on_a_local_cluster(serial_night, capsys):
    assert main(["reduce", str(serial_night / "raw"), "-o", str(serial_night / "cli"),
                 "--executor", "dask", "--workers", "2", "--device", "cpu"]) == 0
    assert "(dask executor)" in capsys.readouterr().out
    assert_same_products(products(serial_night / "cli"), products(serial_night / "serial"))


@pytest.mark.parametrize("argv, message", [
    (["--gpus"], "go with --executor dask"),
    (["--executor", "serial", "--workers", "2"], "goes with --executor threads or dask"),
    (["--executor", "dask", "--scheduler", "tcp://x:1", "--workers", "2"],
     "--scheduler connects to a running cluster"),
])
def test_cli_option_errors(tmp_path, capsys, argv, message):
    simulate(tmp_path / "raw", n_science=1)
    assert main(["reduce", str(tmp_path / "raw"), "-o", str(tmp_path / "out"), *argv]) == 1
    assert message in capsys.readouterr().err


def test_without_dask_the_error_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    simulate(tmp_path / "raw", n_science=1)
    with pytest.raises(ImportError, match=r"pip install 'gpucal\[dask\]'"):
        gpucal.reduce(tmp_path / "raw", tmp_path / "out", executor="dask")
    assert main(["reduce", str(tmp_path / "raw"), "-o", str(tmp_path / "out2"),
                 "--executor", "dask"]) == 1
    assert "pip install 'gpucal[dask]'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="executor must be"):
        gpucal.reduce(tmp_path / "raw", tmp_path / "out", executor="processes")


@pytest.fixture(scope="module")
def stack():
    """9 frames with outliers, NaN and a masked file, float32."""
    rng = np.random.default_rng(7)
    data = rng.normal(1000, 20, (9, 120, 90)).astype(np.float32)
    data[2, 5:9, 7] = 1e5
    data[4, 0, 0] = np.nan
    data *= np.linspace(0.9, 1.1, 9, dtype=np.float32)[:, None, None]  # flats at levels
    return data


OPTIONS = [dict(method="median"),
           dict(sigma_clip=True, sigma_clip_func="median", sigma_clip_dev_func="mad_std",
                scale="median"),
           dict(clip_extrema=True, nlow=1, nhigh=2, weights=np.arange(1.0, 10.0)),
           dict(method="sum", minmax_clip=True, minmax_clip_max=5e4)]


@pytest.mark.parametrize("options", OPTIONS)
def test_combine_of_a_dask_array_equals_the_in_memory_result(stack, options):
    dask_array = pytest.importorskip("dask.array")
    lazy = dask_array.from_array(stack, chunks=(3, 50, 45))
    expected, _, _ = combine_frame(stack, **options)
    got, _, _ = combine_frame(lazy, **options, mem_limit="200kB")  # several bands
    as_array = gpucal.combine(lazy, **options, mem_limit="200kB")  # an array in: an array out
    assert isinstance(as_array, np.ndarray)
    np.testing.assert_array_equal(as_array, expected.data)
    for name in ("data", "uncertainty", "mask"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))
    assert got.header["NCOMBINE"] == 9


@pytest.mark.parametrize("options", OPTIONS[:2])
def test_combine_of_files_across_a_cluster_equals_the_local_result(client, stack, tmp_path,
                                                                     options):
    paths = []
    for i, frame in enumerate(stack):
        mask = np.zeros(frame.shape, bool)
        mask[10 * i:10 * i + 3, :5] = True  # MASK extensions reject values too
        paths.append(tmp_path / f"f{i}.fits")
        Frame(frame, mask=mask, unit="adu").write(paths[-1])
    expected, _, _ = combine_frame(paths, device="cpu", **options)
    got, _, _ = combine_frame(paths, device="cpu", client=client, mem_limit="300kB", **options)
    for name in ("data", "uncertainty", "mask"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))
    assert got.unit == expected.unit and got.header["NCOMBINE"] == 9


def test_combine_of_a_dask_array_checks_its_shape():
    dask_array = pytest.importorskip("dask.array")
    with pytest.raises(gpucal.FrameError, match="must be 3-D"):
        gpucal.combine(dask_array.zeros((10, 10)))
