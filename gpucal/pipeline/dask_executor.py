"""Running a night's plan on a Dask cluster (``dask.distributed``): ``--executor dask``.

The driver (:func:`gpucal.pipeline.execute.execute`) still plans, orders the waves and alone
writes the results database; the cluster runs each wave's tasks. Tasks are pure
functions of (task, OUT_DIR, configuration, device) that read raw frames and masters
from the shared filesystem and write their product atomically, so a task that dies with
its worker is simply run again elsewhere: its product is either complete under its
name or absent. Every worker reads a master once and keeps it (on the GPU, in device
memory) for the science frames it calibrates.

Each worker process gates its tasks' stages as the in-process executors do
(:mod:`gpucal.pipeline.stages`): one task computing at a time, one reading ahead and the
writers writing, so a worker started here has ``stages.threads`` threads; a worker of a
cluster started elsewhere (`client` or `scheduler`) computes, on the CPU, on all of its workers'
threads but those reading and writing (at least one), and on the GPU one task at a time.

Workers must see RAW_DIR and OUT_DIR under the same paths as the driver (one machine,
or a shared filesystem).
"""

import os

from .stages import Stages
from .tasks import task_record

__all__ = ["DaskExecutor"]

_INSTALL = "pip install 'gpucal[dask]'"


def _distributed():
    try:
        import distributed
    except ImportError:
        raise ImportError(f"the Dask executor needs dask.distributed: {_INSTALL}") from None
    return distributed


class DaskExecutor:
    """An executor that runs tasks on a ``dask.distributed`` cluster.

    Parameters
    ----------
    client : distributed.Client, optional
        An existing client; it is left open by :meth:`close`.
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``) to connect to.
    workers : int, optional
        Without `client` or `scheduler`: start a LocalCluster of this many worker
        processes (default: the CPU count; one for `device` "gpu", whose tasks would
        all share one GPU, each process with its own CUDA context and memory pool),
        each computing one task at a time with ``stages.threads`` threads.
    gpus : bool, default False
        Start a dask-cuda ``LocalCUDACluster`` instead: one worker per visible GPU.
    device : {"cpu", "gpu"}, default "cpu"
        The device the tasks run on (the resolved ``device`` of :func:`gpucal.reduce`).

    Raises
    ------
    ImportError
        Without dask.distributed (or dask-cuda for `gpus`): says what to install.

    Examples
    --------
    >>> from gpucal.pipeline.dask_executor import DaskExecutor
    >>> with DaskExecutor(workers=2) as executor:          # doctest: +SKIP
    ...     gpucal.reduce("raw", "out", executor=executor)
    """

    name = "dask"

    def __init__(self, client=None, *, scheduler=None, workers=None, gpus=False, device="cpu"):
        distributed = _distributed()
        self.stages = Stages(compute=1)  # per worker process
        self._owned = []  # what close() shuts down
        cluster = None  # one started here
        if client is None:
            if scheduler is not None:
                client = distributed.Client(scheduler)
            else:
                if gpus:
                    try:
                        from dask_cuda import LocalCUDACluster
                    except ImportError:
                        raise ImportError("--gpus needs dask-cuda: pip install dask-cuda "
                                          f"and {_INSTALL}") from None
                    cluster = LocalCUDACluster(threads_per_worker=self.stages.threads)
                else:
                    cluster = distributed.LocalCluster(
                        n_workers=workers or (1 if device == "gpu" else os.cpu_count() or 1),
                        threads_per_worker=self.stages.threads,
                        processes=True, dashboard_address=":0")
                self._owned.append(cluster)
                client = distributed.Client(cluster)
            self._owned.insert(0, client)
        if device == "cpu" and cluster is None:  # started elsewhere: compute on every
            # thread of its workers but those reading and writing
            threads = min((w["nthreads"] for w in client.scheduler_info()["workers"].values()),
                          default=self.stages.threads)
            self.stages = Stages(compute=max(1, threads - 1 - self.stages.writers))
        self.client = client
        self._as_completed = distributed.as_completed

    def map(self, function, tasks):
        """Yield ``function(task)`` for every task as the cluster finishes them.

        A task whose workers keep dying (the scheduler gives up after its
        ``allowed-failures``) comes back as a 'failed' record saying so.
        """
        tasks = list(tasks)
        if not tasks:
            return
        futures = self.client.map(function, tasks, pure=False)
        task_of = dict(zip((f.key for f in futures), tasks))
        for future in self._as_completed(futures):
            try:
                yield future.result()
            except Exception as exc:  # KilledWorker, a lost scheduler...
                yield task_record(task_of[future.key], status="failed",
                                  reason=f"{type(exc).__name__} on the Dask cluster: {exc}")

    def close(self):
        """Close the client and the cluster this executor started."""
        for thing in self._owned:
            thing.close()
        self._owned = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
