"""One way in, one way out (gpucal.sources): every form of input, and the type that comes back."""

import numpy as np
import pytest
from astropy import units as u
from astropy.nddata import CCDData

from gpucal import (Combiner, Frame, FrameError, ccd_process, combine, make_master_bias,
                    robust_stats, subtract_bias, to_device)
from gpucal.backend import get_backend
from gpucal.combine import combine_frame
from gpucal.sources import file_names, from_user, stack_input, to_user


def _stack(seed=0, n=5, shape=(6, 7)):
    return np.random.default_rng(seed).normal(100.0, 5.0, (n, *shape))


def test_arrays_in_give_arrays_out_on_their_device(backend):
    data = to_device(_stack(), backend.device)
    expected = to_device(combine_frame(data, "median")[0].data, "cpu")
    for frames in (data, list(data)):
        got = combine(frames, "median")
        assert get_backend(got) is backend and got.shape == (6, 7)
        np.testing.assert_array_equal(to_device(got, "cpu"), expected)
    got = Combiner(data).median_combine()
    np.testing.assert_array_equal(to_device(got, "cpu"), expected)
    bias = to_device(np.full((6, 7), 100.0), backend.device)
    out = subtract_bias(data[0], bias)
    assert get_backend(out) is backend
    np.testing.assert_allclose(to_device(out, "cpu"), to_device(data[0], "cpu") - 100.0)
    batch = ccd_process(data, master_bias=bias)  # a 3-D array in: a 3-D array out
    assert get_backend(batch) is backend and batch.shape == data.shape


def test_nested_lists_and_masked_arrays():
    data = _stack()
    assert robust_stats(data[0].tolist()) == robust_stats(data[0])  # a list in calibration
    assert combine([d.tolist() for d in data]).tolist() == combine(data).tolist()  # is a batch
    masked = np.ma.MaskedArray(data, np.zeros(data.shape, bool))
    masked.mask[:, 0, 0] = True  # every value of one pixel rejected
    got = combine(masked, "average")
    assert isinstance(got, np.ma.MaskedArray) and got.mask[0, 0] and not got.mask[1, 1]
    np.testing.assert_allclose(got.data[1:], data.mean(axis=0)[1:], rtol=1e-6)
    one = subtract_bias(masked[0], np.zeros((6, 7)))
    assert isinstance(one, np.ma.MaskedArray) and one.mask[0, 0] and one.mask.sum() == 1


def test_frames_and_ccddata_come_back_as_they_came():
    data = _stack()
    frames = [Frame(d, unit="adu") for d in data]
    assert isinstance(combine(frames), Frame)
    assert isinstance(Combiner(frames).average_combine(), Frame)
    ccds = [CCDData(d, unit="adu", meta={"object": "m31"}) for d in data]
    for got in (combine(ccds), Combiner(ccds).sum_combine(), make_master_bias(ccds),
                subtract_bias(ccds[0], ccds[1])):
        assert isinstance(got, CCDData) and got.meta["object"] == "m31"
    assert isinstance(make_master_bias(data), Frame)  # a master is its header too


def test_file_names_in_every_form_give_a_ccddata(tmp_path):
    data = _stack()
    paths = []
    for i, d in enumerate(data):
        paths.append(str(tmp_path / f"b{i}.fits"))
        Frame(d, unit="adu").write(paths[-1])
    forms = [paths, tuple(paths), np.array(paths), np.array(paths, dtype=object),
             " , ".join(paths) + ",", [tmp_path / f"b{i}.fits" for i in range(len(paths))]]
    for form in forms:
        assert file_names(form) == paths
        got = combine(form, "median", device="cpu")
        assert isinstance(got, CCDData) and got.unit == u.adu and got.header["NCOMBINE"] == 5
    Frame(data[0]).write(tmp_path / "nounit.fits")
    with pytest.raises(FrameError, match="pass unit="):
        combine([tmp_path / "nounit.fits"] * 2, device="cpu")
    assert isinstance(combine([tmp_path / "nounit.fits"] * 2, unit="adu", device="cpu"), CCDData)


@pytest.mark.parametrize("bad,error,message", [
    ([], ValueError, "no frames"),
    ("", ValueError, "no frames"),
    (5, FrameError, "unrecognised input"),
    ([np.ones((2, 2)), "a.fits"], TypeError, "not a mix"),
    ([np.ones((2, 2)), 3], TypeError, r"frames\[1\]: expected an array, Frame, CCDData"),
])
def test_what_is_not_a_stack_is_refused_in_one_line(bad, error, message):
    with pytest.raises(error, match=message) as info:
        stack_input(bad)
    assert "\n" not in str(info.value)


def test_user_functions_get_numpy_on_either_device(backend):
    """ccdproc's callables are NumPy code: on the GPU they get host copies, their results go
    back to the device, and the result equals the CPU's."""
    data = _stack(n=4)
    data[3, 2, 2] = 1e4
    results = {}
    for device in {"cpu", backend.device}:
        seen = []

        def median(x, axis=None):
            seen.append(type(x))
            return np.ma.median(x, axis=axis)

        c = Combiner(to_device(data, device), dtype=np.float64)
        c.weights = np.ones(data.shape)
        c.weights[:, 0, 0] = [1, 2, 3, 4]  # changed in place, as ccdproc's scripts do
        c.data_arr.mask[3, 2, 2] = True  # and data_arr, a mirror on the GPU
        c.scaling = lambda frame: 1.0 / np.ma.mean(frame)
        value = c.median_combine(median_func=median, uncertainty_func=np.ma.std)
        average = c.average_combine(sum_func=np.ma.sum, uncertainty_func=np.ma.std)
        assert set(seen) == {np.ma.MaskedArray}
        assert get_backend(value) is get_backend(c.data) is backend_of(device)
        results[device] = [to_device(a, "cpu") for a in (value, average)]
        assert c.data_arr.mask[3, 2, 2]
    for cpu, here in zip(results["cpu"], results[backend.device]):
        np.testing.assert_allclose(here, cpu, rtol=1e-12)


def backend_of(device):
    from gpucal.backend import backend_for_device

    return backend_for_device(device)


def test_to_user_is_a_view_on_the_cpu_and_from_user_comes_back(backend):
    x = np.arange(4.0)
    view = to_user(x, x > 2, get_backend(x))
    view[0] = 7.0
    assert x[0] == 7.0 and view.mask.tolist() == [False, False, False, True]
    back = from_user(np.ma.MaskedArray([1.0, 2.0]), backend)
    assert get_backend(back) is backend and back.dtype == np.float64
    with pytest.raises(TypeError, match="complex"):
        from_user(np.ones(2, complex), backend)
