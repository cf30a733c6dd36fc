"""Device resolution, backend selection and moving arrays between devices."""

import logging

import numpy as np
import pytest

import gpucal
from gpucal import GPUUnavailableError, get_backend, resolve_device, to_device
from gpucal.backend import available_backends, load_backend
from gpucal.device import _say_auto_choice

needs_no_gpu = pytest.mark.skipif(gpucal.gpu_available(), reason="this machine has a GPU")


def test_explicit_cpu_and_auto(monkeypatch):
    monkeypatch.delenv("GPUCAL_DEVICE", raising=False)
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("gpu" if gpucal.gpu_available() else "cpu")
    assert resolve_device(None) == resolve_device("auto")


def test_environment_variable_is_the_default(monkeypatch):
    monkeypatch.setenv("GPUCAL_DEVICE", "cpu")
    assert resolve_device() == "cpu"
    monkeypatch.setenv("GPUCAL_DEVICE", "")
    assert resolve_device() == resolve_device("auto")
    monkeypatch.setenv("GPUCAL_DEVICE", "cuda")
    with pytest.raises(ValueError, match="GPUCAL_DEVICE environment variable.*'cuda'"):
        resolve_device()


def test_explicit_argument_beats_environment(monkeypatch):
    monkeypatch.setenv("GPUCAL_DEVICE", "gpu")
    assert resolve_device("cpu") == "cpu"


@pytest.mark.parametrize("bad", ["GPU", "cuda", 0, ""])
def test_bad_device_values(bad):
    with pytest.raises(ValueError, match="device must be one of 'auto', 'cpu', 'gpu'"):
        resolve_device(bad)


def test_auto_choice_is_logged_once(caplog):
    _say_auto_choice.cache_clear()
    with caplog.at_level(logging.INFO, logger="gpucal"):
        resolve_device("auto")
        resolve_device("auto")
    records = [r for r in caplog.records if "device='auto'" in r.getMessage()]
    assert len(records) == 1
    assert ("GPU" if gpucal.gpu_available() else "CPU") in records[0].getMessage()


@needs_no_gpu
def test_gpu_request_without_gpu_says_why():
    reason = gpucal.gpu_status().reason
    assert reason
    with pytest.raises(GPUUnavailableError, match="no GPU is usable") as err:
        resolve_device("gpu")
    assert reason in str(err.value)
    with pytest.raises(GPUUnavailableError):
        to_device(np.ones(3), "gpu")
    with pytest.raises(GPUUnavailableError):
        load_backend("cupy")
    assert available_backends() == ("numpy",)


def test_backend_attributes(backend):
    assert backend.device == ("gpu" if backend.name == "cupy" else "cpu")
    assert backend.name in available_backends()
    assert repr(backend) == f"<gpucal backend {backend.name!r} on {backend.device}>"


def test_unknown_backend_name():
    with pytest.raises(ValueError, match="unknown backend 'jax'"):
        load_backend("jax")


def test_compute_follows_the_data(backend):
    x = to_device(np.ones((2, 2)), backend.device)
    assert get_backend(x) is backend
    assert get_backend(x, None, 3.0, x) is backend  # scalars and None do not vote
    assert get_backend() is load_backend("numpy")


@pytest.mark.gpu
def test_mixing_devices_is_a_type_error():
    gpu = to_device(np.ones(3), "gpu")
    with pytest.raises(TypeError, match="mixed CuPy"):
        get_backend(gpu, np.ones(3))


@pytest.mark.parametrize("dtype", [">f4", "<f4", ">f8", ">i2", ">u2"])
def test_round_trip_keeps_values_and_makes_native(backend, dtype):
    host = np.arange(12).reshape(3, 4).astype(dtype)
    there = to_device(host, backend.device)
    assert get_backend(there) is backend
    back = to_device(there, "cpu")
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, host)
    if backend.device == "gpu":  # uploads are native-endian, whatever the host had
        assert back.dtype.isnative and back.dtype == host.dtype.newbyteorder("=")


def test_to_device_returns_the_same_array_when_already_there(backend):
    x = to_device(np.ones(3), backend.device)
    assert to_device(x, backend.device) is x


def test_backend_asarray_converts_byte_order(backend):
    big = np.arange(4, dtype=">f8")
    arr = backend.asarray(big, np.float32)
    assert arr.dtype == np.float32 and arr.dtype.isnative
    np.testing.assert_array_equal(backend.to_numpy(arr), [0, 1, 2, 3])
    backend.synchronize()
