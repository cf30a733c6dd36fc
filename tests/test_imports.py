"""Import hygiene: gpucal and cpu_fallback never import CuPy; no GPU means the CPU; the layers.

Each run-time check runs in a fresh interpreter, so what this process imported does not
count; the layers are read from the sources' import statements (lazy ones included).
"""

import ast
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cpu_fallback
import gpucal
from gpucal import gpu_available


def run_python(code, extra_path=None):
    env = {k: v for k, v in os.environ.items() if k not in ("GPUCAL_DEVICE", "PYTHONPATH")}
    if extra_path:
        env["PYTHONPATH"] = str(extra_path)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_import_gpucal_does_not_import_cupy(tmp_path):
    run_python(f"""
        import sys
        import numpy as np
        import gpucal, gpucal.cli, gpucal.io, gpucal.backend
        assert "cupy" not in sys.modules
        assert "astropy.nddata" not in sys.modules  # 0.4 s: loaded only for CCDData
        # a whole CPU workflow, device chosen explicitly, stays CuPy-free too
        f = gpucal.Frame(np.ones((3, 4)), unit="adu")
        f.write({str(tmp_path / "f.fits")!r})
        g = gpucal.Frame.read({str(tmp_path / "f.fits")!r}, device="cpu")
        assert g.device == "cpu" and gpucal.get_backend(g.data).name == "numpy"
        assert "cupy" not in sys.modules, "a CPU workflow imported CuPy"
    """)


def test_cpu_fallback_imports_neither_cupy_nor_gpucal():
    run_python("""
        import sys
        import cpu_fallback
        assert "cupy" not in sys.modules
        assert not any(m == "gpucal" or m.startswith("gpucal.") for m in sys.modules)
    """)


def _imports():
    """{module: names it imports} for every module of gpucal and cpu_fallback, relative imports
    resolved; ``from a import b`` counts as importing ``a`` and ``a.b``."""
    graph = {}
    for package in (gpucal, cpu_fallback):
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            parts = [package.__name__, *path.relative_to(root).with_suffix("").parts]
            is_package = parts[-1] == "__init__"
            module = ".".join(parts[:-1] if is_package else parts)
            here = module.split(".") if is_package else module.split(".")[:-1]
            names = set()
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom):
                    base = node.module or ""
                    if node.level:
                        parent = here[:len(here) - node.level + 1]
                        base = ".".join(parent + ([base] if base else []))
                    names.add(base)
                    names.update(f"{base}.{alias.name}" for alias in node.names)
            graph[module] = names
    return graph


def _within(name, *packages):
    return any(name == p or name.startswith(p + ".") for p in packages)


def _violations(importers, forbidden, allowed_importers=()):
    return sorted(f"{module} imports {name}" for module, names in _imports().items()
                  if _within(module, *importers) and not _within(module, *allowed_importers)
                  for name in names if _within(name, *forbidden))


#: The backend: gpucal's generic half, the CuPy backend and the fused kernels' operands.
BACKEND = ("gpucal._xp", "gpucal._cuda", "gpucal._combine_kernel", "gpucal._calibrate_kernel")


def test_layers():
    """DESIGN.md's arrows: cli → pipeline → steps → backend → cpu_fallback; _cuda → cupy."""
    # cpu_fallback is the bottom: it imports neither gpucal nor CuPy
    assert _violations(["cpu_fallback"], ["gpucal", "cupy", "cupyx"]) == []
    # only the backend reaches cpu_fallback: steps, core, pipeline and CLI go through it
    assert _violations(["gpucal"], ["cpu_fallback"], BACKEND) == []
    # the backend imports nothing above it
    assert _violations(BACKEND, ["gpucal"], BACKEND) == []
    # only gpucal._cuda imports CuPy (and gpucal.device, which asks it whether there is a GPU)
    assert _violations(["gpucal"], ["cupy", "cupyx"], ["gpucal._cuda", "gpucal.device"]) == []
    # nothing below the CLI imports it; nothing below the pipeline imports the pipeline
    # (gpucal/__init__.py, the public surface, re-exports pipeline.reduce)
    assert _violations(["gpucal"], ["gpucal.cli"], ["gpucal.cli", "gpucal.__main__"]) == []
    importers = {v.split()[0] for v in _violations(
        ["gpucal"], ["gpucal.pipeline"], ["gpucal.pipeline", "gpucal.cli", "gpucal.__main__"])}
    assert importers <= {"gpucal"}


def _fake_cupy(root, driver, error_status=None, count=1):
    """A CuPy stand-in whose runtime fails the way real CuPy does without a GPU."""
    pkg = root / "cupy"
    (pkg / "cuda").mkdir(parents=True)
    (pkg / "__init__.py").write_text("__version__ = '99.0+fake'\nclass ndarray: pass\n"
                                     "from . import cuda\n")
    (pkg / "cuda" / "__init__.py").write_text("from . import runtime\n")
    (pkg / "cuda" / "runtime.py").write_text(textwrap.dedent(f"""
        class CUDARuntimeError(RuntimeError):
            def __init__(self, status):
                self.status = status
                super().__init__(f"cudaError {{status}}")
        def runtimeGetVersion():
            return 13020
        def driverGetVersion():
            return {driver}
        def getDeviceCount():
            if {error_status!r} is not None:
                raise CUDARuntimeError({error_status!r})
            return {count}
        contexts = []  # devices whose memory was measured (a context opened on each)
        def getDevice():
            return 0
        def getDeviceProperties(i):
            return dict(name=b"Fake H100", totalGlobalMem=80 << 30, major=9, minor=0)
        def memGetInfo():
            contexts.append(getDevice())
            return 70 << 30, 80 << 30
    """))
    return root


NO_GPU_CASES = {
    "no-driver": (dict(driver=0, error_status=35), "no NVIDIA driver found"),
    "old-driver": (dict(driver=12040, error_status=35), "older than CuPy's CUDA runtime (13.2)"),
    "no-device": (dict(driver=13020, error_status=100), "sees no CUDA device"),
    "zero-devices": (dict(driver=13020, count=0), "no CUDA device"),
}


@pytest.mark.parametrize("case", list(NO_GPU_CASES))
def test_cupy_installed_without_gpu_falls_back_to_cpu(tmp_path, case):
    kwargs, reason = NO_GPU_CASES[case]
    root = _fake_cupy(tmp_path, **kwargs)
    run_python(f"""
        import sys
        import gpucal
        assert "cupy" not in sys.modules
        import cupy
        assert cupy.__version__ == "99.0+fake", "the fake CuPy was not the one imported"
        assert gpucal.resolve_device("auto") == "cpu"
        assert not gpucal.gpu_available()
        assert {reason!r} in gpucal.gpu_status().reason, gpucal.gpu_status().reason
        try:
            gpucal.resolve_device("gpu")
        except gpucal.GPUUnavailableError as exc:
            assert {reason!r} in str(exc)
        else:
            raise AssertionError("device='gpu' did not raise")
    """, extra_path=root)


def test_gpu_survey_opens_a_context_on_the_current_device_only(tmp_path):
    """Each Dask-CUDA worker sees every GPU: a context on each would cost each GPU ~0.5 GB."""
    root = _fake_cupy(tmp_path, driver=13020, count=3)
    run_python("""
        import cupy, gpucal
        status = gpucal.gpu_status()
        assert status.available and [d.name for d in status.devices] == ["Fake H100"] * 3
        assert [d.total_memory for d in status.devices] == [80 << 30] * 3
        assert [d.free_memory for d in status.devices] == [70 << 30, None, None]
        assert cupy.cuda.runtime.contexts == [0]
    """, extra_path=root)


@pytest.mark.skipif(importlib.util.find_spec("cupy") is None, reason="CuPy not installed")
@pytest.mark.skipif(gpu_available(), reason="this machine has a GPU")
def test_real_cupy_without_gpu_falls_back_to_cpu():
    out = run_python("""
        import sys
        import gpucal
        assert "cupy" not in sys.modules
        assert gpucal.resolve_device("auto") == "cpu"
        print(gpucal.gpu_status().reason)
    """)
    assert out.strip()


def _import_graph(package):
    """{module: modules of `package` it imports}, from the source: every import statement,
    at module level or inside a function (a deferred import is a dependency too)."""
    import ast
    from pathlib import Path

    root = Path(importlib.util.find_spec(package).origin).parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(here[:len(here) - node.level + 1] + (
                    [node.module] if node.module else [])) if node.level else node.module
                found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                          for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[name] = {m for m in found if m in modules and m not in (name, package)}
    return graph


def _cycles(graph):
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, cycles = {}, {}, [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_gpucal_imports_without_cycles():
    """No module of gpucal imports one that imports it back, even in a function
    (backend↔frame, combine↔dask_combine and pipeline.execute↔report did), and the layers
    point one way: sources (what users pass) and the core import no step."""
    graph = _import_graph("gpucal")
    assert _cycles(graph) == [], _cycles(graph)
    steps = {"gpucal.combine", "gpucal.combiner", "gpucal.calibrate", "gpucal.badpixels",
             "gpucal.cosmics", "gpucal.masks", "gpucal.masters", "gpucal.robust"}
    for core in ("gpucal.sources", "gpucal.frame", "gpucal.backend", "gpucal.io"):
        assert not graph[core] & steps, (core, graph[core] & steps)
