"""Count the CuPy operations of one science frame's compute turn on the GPU path.

A count, not a timing: it runs ``gpucal.reduce(device="gpu")`` on a small simulated
night (one 2048² ground-rate science frame) with every CuPy function, array operator and
method of interest wrapped, and counts, during the science task only, the operations that
touch device arrays (each is at least one kernel launch on a GPU), split into those on
frame-sized arrays (≥ 4 MB) and smaller ones, the bytes of their operands and results, and
the host synchronisations (scalars, ``bool()``, ``get``). Views (basic slicing, reshape)
launch nothing and are not counted. Nested calls are counted once, at the outermost one.

Run it under the CuPy stand-in (no GPU needed) or on a GPU, from the checkout:

    PYTHONPATH=../shared/cupy-standin python bench/count_gpu_ops.py bench/results/gpu-ops-standin.json
"""

import collections
import functools
import json
import shutil
import sys
import tempfile
from pathlib import Path

import cupy

import gpucal
from gpucal.pipeline import tasks
from gpucal.simulate import simulate_night

FRAME_SIZED = 4 << 20
METHODS = ["__add__", "__sub__", "__mul__", "__truediv__", "__iadd__", "__isub__", "__imul__",
           "__itruediv__", "__and__", "__or__", "__iand__", "__ior__", "__invert__", "__neg__",
           "__gt__", "__lt__", "__ge__", "__le__", "__eq__", "__ne__", "__getitem__",
           "__setitem__", "__radd__", "__rsub__", "__rmul__", "__rtruediv__", "__pow__",
           "__abs__", "sum", "any", "all", "min", "max", "mean", "astype", "copy", "nonzero",
           "take", "ravel", "reshape", "view", "sort", "partition", "argsort", "fill", "clip"]
SYNCS = ["get", "__float__", "__int__", "__bool__", "item", "tolist"]
VIEWS = {"__getitem__", "reshape", "view", "ravel"}


class Counter:
    def __init__(self):
        self.active = False
        self.ops = collections.Counter()
        self.bytes = collections.Counter()
        self.names = collections.Counter()

    def wrap(self, owner, name, kind):
        func = getattr(owner, name)

        @functools.wraps(func)
        def counted(*args, **kwargs):
            if not self.active:
                return func(*args, **kwargs)
            self.active = False  # what it calls in turn is not counted again
            try:
                result = func(*args, **kwargs)
            finally:
                self.active = True
            outs = result if isinstance(result, tuple) else (result,)
            flat = [y for x in (*args, *kwargs.values(), *outs)
                    for y in (x if isinstance(x, (tuple, list)) else (x,))]  # a kernel's args
            arrays = [x for x in flat if isinstance(x, cupy.ndarray)]
            if name in VIEWS and all(cupy.shares_memory(o, args[0]) for o in outs
                                     if isinstance(o, cupy.ndarray)):
                return result
            if arrays or kind == "sync":
                size = "frame-sized" if max((a.nbytes for a in arrays), default=0) >= \
                    FRAME_SIZED else "small"
                self.ops[f"{kind}, {size}"] += 1
                self.bytes[f"{kind}, {size}"] += sum(a.nbytes for a in arrays)
                self.names[name] += 1
            return result

        setattr(owner, name, counted)


def main(out_json):
    counter = Counter()
    for name in dir(cupy):
        obj = getattr(cupy, name)
        if not name.startswith("_") and callable(obj) and not isinstance(obj, type) \
                and name not in ("asnumpy", "get_array_module", "shares_memory"):
            counter.wrap(cupy, name, "op")
    for name in METHODS:
        if hasattr(cupy.ndarray, name):
            counter.wrap(cupy.ndarray, name, "op")
    for name in SYNCS:
        if hasattr(cupy.ndarray, name):
            counter.wrap(cupy.ndarray, name, "sync")
    counter.wrap(cupy, "asnumpy", "sync")
    kernel = cupy.RawModule(code='extern "C" __global__ void k() {}').get_function("k")
    counter.wrap(type(kernel), "__call__", "raw kernel")
    counter.wrap(cupy.ElementwiseKernel, "__call__", "elementwise kernel")

    science = tasks._science

    def counted_science(*args, **kwargs):
        counter.active = True
        try:
            return science(*args, **kwargs)
        finally:
            counter.active = False

    tasks._science = counted_science
    work = Path(tempfile.mkdtemp())
    try:
        simulate_night(work / "raw", shape=(2048, 2048), overscan=32, n_bias=3,
                       dark_exposures=(300.0,), n_dark=2, filters=("V",), n_flat=3,
                       n_science=1, cosmic_rate=5.0)
        gpucal.reduce(work / "raw", work / "out", device="gpu", executor="serial",
                      report=False)
    finally:
        shutil.rmtree(work)
    result = {"what": "CuPy operations of one 2048² ground-rate science frame's compute "
                      "(gpucal.reduce, device='gpu'); a count, not a timing",
              "cupy": getattr(cupy, "__version__", "?"),
              "standin": bool(getattr(cupy, "_STANDIN", False)),
              "operations": dict(counter.ops),
              "bytes": dict(counter.bytes),
              "most_common": counter.names.most_common(15)}
    print(json.dumps(result, indent=1))
    if out_json:
        Path(out_json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
