"""Helpers shared by the tests."""

import hashlib


def sha256(path):
    """Checksum of a file, to prove inputs are never modified."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def compile_with_nvrtc(source, filename, names):
    """Compile CUDA source for sm_90 with CuPy's NVRTC (no GPU needed); skip without NVRTC.

    Returns the mangled names of the `names` instantiations.
    """
    import pytest

    compiler = pytest.importorskip("cupy.cuda.compiler")
    program = getattr(compiler, "_NVRTCProgram", None)
    try:
        from cupy_backends.cuda.libs import nvrtc

        nvrtc.getVersion()
    except Exception as exc:  # CuPy without its NVRTC library
        pytest.skip(f"NVRTC not available: {exc}")
    if program is None:
        pytest.skip("this CuPy has no _NVRTCProgram")
    _ptx, mangled = program(source, filename, name_expressions=names).compile(
        ("--std=c++17", "-arch=compute_90"))
    return mangled
