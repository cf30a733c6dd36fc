"""combine and Combiner against ccdproc 2.5.1, the deliberate differences, inputs, tiling."""

import tracemalloc
import warnings

import ccdproc
import numpy as np
import pytest
from astropy import units as u
from astropy.nddata import CCDData
from astropy.stats import sigma_clip as astropy_sigma_clip

import gpucal
from gpucal import Combiner, Frame, FrameError, MaskFlag, combine, to_device
from gpucal import io as gio
from gpucal.combine import combine_frame, parse_bytes

N = 9


def _stack(seed=1, n=N, shape=(30, 40), nan=True):
    """Seeded frames with outliers, NaNs and masks."""
    rng = np.random.default_rng(seed)
    data = rng.normal(100, 5, (n,) + shape)
    data[rng.random(data.shape) < 0.03] *= 8  # cosmic-ray-like outliers
    if nan:
        data[rng.random(data.shape) < 0.01] = np.nan
    masks = rng.random(data.shape) < 0.05
    masks[:, 0, 0] = True  # one pixel with nothing left
    return data, masks


def _ccds(data, masks):
    return [CCDData(d, mask=m, unit="adu") for d, m in zip(data, masks)]


def _ccdproc(ccds, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # all-masked pixels: 0/0 in ccdproc
        return ccdproc.combine(ccds, **kwargs)


def assert_matches(frame, ccd, rtol):
    """Same data, uncertainty and mask as a ccdproc result (NaN where ccdproc has NaN)."""
    if isinstance(frame, CCDData):  # CCDData in, CCDData out (ccdproc's contract)
        frame = Frame.from_ccddata(frame, dtype=None)
    got, ref = to_device(frame, "cpu"), ccd
    np.testing.assert_array_equal(got.bool_mask, ref.mask)
    np.testing.assert_allclose(got.data, ref.data, rtol=rtol, equal_nan=True)
    np.testing.assert_allclose(got.uncertainty, ref.uncertainty.array, rtol=rtol, equal_nan=True)
    assert np.array_equal(np.isnan(got.data), np.isnan(ref.data))


MEAN_STD = dict(sigma_clip_func="mean", sigma_clip_dev_func="std")
CASES = {
    "plain": {},
    "sigma mean/std": dict(sigma_clip=True, **MEAN_STD),
    "sigma median/mad_std 2σ": dict(sigma_clip=True, sigma_clip_func="median",
                                     sigma_clip_dev_func="mad_std", sigma_clip_low_thresh=2,
                                     sigma_clip_high_thresh=2),
    "sigma asymmetric": dict(sigma_clip=True, sigma_clip_low_thresh=1.5,
                             sigma_clip_high_thresh=4, **MEAN_STD),
    "extrema": dict(clip_extrema=True, nlow=1, nhigh=2),
    "minmax": dict(minmax_clip=True, minmax_clip_min=90, minmax_clip_max=300),
    "minmax + extrema + sigma": dict(minmax_clip=True, minmax_clip_max=300, clip_extrema=True,
                                     nlow=1, nhigh=1, sigma_clip=True, **MEAN_STD),
    "scale array": dict(scale=np.linspace(0.5, 2, N)),
    "scale callable": dict(scale=lambda a: 1 / np.nanmedian(a)),
}


@pytest.mark.parametrize("method", ["average", "median", "sum"])
@pytest.mark.parametrize("case", list(CASES))
def test_parity_with_ccdproc(method, case):
    data, masks = _stack()
    ccds = _ccds(data, masks)
    kwargs = dict(method=method, **CASES[case])
    ref = _ccdproc(ccds, dtype=np.float64, **kwargs)
    assert_matches(combine(ccds, dtype=np.float64, device="cpu", **kwargs), ref, rtol=1e-12)
    # float32 frames: gpucal's float32 default within 1e-6 of ccdproc's float64 on them
    ccds32 = _ccds(data.astype(np.float32), masks)
    ref32 = _ccdproc(ccds32, dtype=np.float64, **kwargs)
    assert_matches(combine(ccds32, device="cpu", **kwargs), ref32, rtol=1e-6)


@pytest.mark.parametrize("method", ["average", "sum"])
def test_weights_match_ccdproc_without_rejection(method):
    data, _ = _stack(nan=False)
    ccds = _ccds(data, np.zeros(data.shape, bool))
    for w in (np.linspace(1, 3, N), np.random.default_rng(0).uniform(0.5, 2, data.shape)):
        ref = _ccdproc(ccds, method=method, weights=w, dtype=np.float64)
        assert_matches(combine(ccds, method, weights=w, dtype=np.float64), ref, rtol=1e-12)


def test_ccdproc_upstream_examples():
    """ccdproc's own tests: 1-D weights (312.5), pixel weights (24), all-masked sums (0)."""
    frames = [np.zeros((10, 10)), np.full((10, 10), -1000.0), np.full((10, 10), 1000.0)]
    assert combine(frames, weights=[1, 5, 10]).data[5, 5] == 312.5
    base = np.array([[1.0, 2.0], [4.0, 8.0]])
    summed = combine([base] * 3, "sum", weights=np.array([[[8, 4], [2, 1]]] * 3, float))
    np.testing.assert_array_equal(summed.data, 24)
    data = np.zeros((10, 10))
    data[5, 5] = 1
    frames = [Frame(data, mask=data == 0)] * 3
    for method, empty in (("average", np.nan), ("median", np.nan), ("sum", 0.0)):
        result = combine(frames, method)
        assert result.data[5, 5] == (3 if method == "sum" else 1)
        assert int(result.mask.sum() // MaskFlag.NO_DATA) == 99
        np.testing.assert_array_equal(result.data[0, 0], empty)


# -- where gpucal deliberately differs from ccdproc 2.5.1 ------------------------------------

@pytest.mark.parametrize("method", ["average", "sum"])
def test_zero_weights_mean_no_data(method, backend):
    """Where every kept value weighs 0 there is no data: NO_DATA, as when all are rejected
    (it used to be an unflagged NaN average, or a 0 sum with an uncertainty)."""
    data, _ = _stack(seed=5, n=4, shape=(3, 4), nan=False)
    mask = np.zeros(data.shape, bool)
    w = np.ones(data.shape)
    w[:, 0, 0] = 0  # every weight of this pixel is 0
    w[:2, 1, 2], mask[2:, 1, 2] = 0, True  # the values kept weigh 0, the others are rejected
    w[0, 2, 3] = 0  # one weight 0 of four: still data
    frames = [to_device(Frame(d, m), backend.device) for d, m in zip(data, mask)]
    got = combine(frames, method, weights=to_device(w, backend.device), dtype=np.float64)
    no_data = np.zeros(data.shape[1:], bool)
    no_data[0, 0] = no_data[1, 2] = True
    flags = to_device(got.mask, "cpu")
    np.testing.assert_array_equal(flags, np.where(no_data, MaskFlag.NO_DATA, 0))
    value, sigma = to_device(got.data, "cpu"), to_device(got.uncertainty, "cpu")
    assert np.all(value[no_data] == 0) if method == "sum" else np.isnan(value[no_data]).all()
    assert np.isnan(sigma[no_data]).all() and np.isfinite(value[~no_data]).all()
    assert value[2, 3] == pytest.approx(  # nothing rejected there: the plain weighted result
        (data[:, 2, 3] * w[:, 2, 3]).sum() / (w[:, 2, 3].sum() if method == "average" else 1))
    everything, _, _ = combine_frame(to_device(data, backend.device), method,
                                     weights=to_device(np.zeros(4), backend.device))
    assert (to_device(everything.mask, "cpu") == MaskFlag.NO_DATA).all()
    combiner = Combiner(frames, dtype=np.float64)
    combiner.weights = to_device(w, backend.device)
    with warnings.catch_warnings():  # the CuPy stand-in's NumPy warns of 0/0 where CuPy won't
        warnings.simplefilter("ignore", RuntimeWarning)
        stepwise = getattr(combiner, f"{method}_combine")()
    np.testing.assert_array_equal(to_device(stepwise.mask, "cpu"), flags)


def test_difference_weighted_average_leaves_out_rejected_weights(backend):
    """ccdproc 2.5.1 keeps masked values' weights in the normalisation (its issue #893)."""
    frames = [CCDData(np.array([[1.0, 2.0]]), mask=np.array([[True, False]]), unit="adu"),
              CCDData(np.array([[10.0, 20.0]]), unit="adu")]
    ref = _ccdproc(frames, method="average", weights=np.array([1.0, 3.0]))
    np.testing.assert_allclose(ref.data, [[7.5, 15.5]])  # 7.5 = 3·10 / (1 + 3): biased
    got = combine(frames, "average", weights=[1.0, 3.0], device=backend.device)
    np.testing.assert_allclose(backend.to_numpy(got.data), [[10.0, 15.5]])  # only frame 2 has the first pixel


def test_difference_one_nan_does_not_mask_the_whole_pixel(backend):
    """ccdproc's default sigma_clip_func=np.ma.mean masks a pixel's stack for one NaN."""
    data, masks = _stack(nan=False)
    data[2, 10, 10] = np.nan
    ccds = _ccds(data, np.zeros(data.shape, bool))
    ref = _ccdproc(ccds, sigma_clip=True)  # ccdproc's defaults: np.ma.mean / np.ma.std
    assert ref.mask[10, 10] and np.isnan(ref.data[10, 10])
    got = combine(ccds, sigma_clip=True, sigma_clip_func=np.ma.mean,
                  sigma_clip_dev_func=np.ma.std, device=backend.device)
    got = Frame.from_ccddata(got, dtype=None)  # CCDData in, CCDData out
    expected = np.nanmean(np.delete(data[:, 10, 10], 2))
    assert not backend.to_numpy(got.bool_mask)[10, 10]
    assert backend.to_numpy(got.data)[10, 10] == pytest.approx(expected, rel=1e-6)


def test_difference_inf_is_rejected_not_propagated():
    data, _ = _stack(nan=False)
    data[4, 3, 3] = np.inf
    data[5, 3, 4] = -np.inf
    ref = _ccdproc(_ccds(data, np.zeros(data.shape, bool)), method="average")
    assert np.isinf(ref.data[3, 3])  # ccdproc: inf in, inf out
    got = combine(data, "average")
    assert np.isfinite(got.data).all()
    assert got.data[3, 3] == pytest.approx(np.mean(np.delete(data[:, 3, 3], 4)), rel=1e-6)


def test_difference_rejection_sees_scaled_values(backend):
    """Flats at different levels: ccdproc clips unscaled data and loses whole frames."""
    rng = np.random.default_rng(3)
    levels = np.array([1000, 1100, 900, 1050, 5000.0])
    data = levels[:, None, None] * rng.normal(1, 0.01, (5, 20, 20))
    scale = 1 / levels
    ccds = _ccds(data, np.zeros(data.shape, bool))
    kwargs = dict(method="average", scale=scale, sigma_clip=True, sigma_clip_low_thresh=1.5,
                  sigma_clip_high_thresh=1.5, **MEAN_STD)
    ccdproc_result = _ccdproc(ccds, dtype=np.float64, **kwargs)
    got = to_device(combine(ccds, dtype=np.float64, device=backend.device, **kwargs), "cpu")
    # gpucal equals ccdproc given frames scaled beforehand, i.e. clipping like with like
    prescaled = _ccds(data * scale[:, None, None], np.zeros(data.shape, bool))
    like_with_like = _ccdproc(prescaled, dtype=np.float64,
                              **{k: v for k, v in kwargs.items() if k != "scale"})
    assert_matches(got, like_with_like, rtol=1e-12)
    # ccdproc's unscaled clipping rejected the 5000-level frame at every pixel
    assert np.abs(ccdproc_result.data - got.data).max() > 1e-3


def test_nan_and_inf_never_propagate(backend):
    data, _ = _stack(nan=True)
    data[:, 7, 7] = np.nan  # all NaN: flagged, not silently zero
    data[3, 8, 8] = np.inf
    for method in ("average", "median", "sum"):
        stack = to_device(data.astype(np.float32), backend.device)
        got = to_device(combine_frame(stack, method)[0], "cpu")  # an array in: no Frame out
        assert got.mask[7, 7] == MaskFlag.NO_DATA
        assert np.isfinite(got.data[~got.bool_mask]).all()
        assert np.isfinite(got.uncertainty[8, 8])


def test_maxiters_iterates_like_astropy_sigma_clip():
    data, _ = _stack(nan=False)
    for maxiters in (2, 5, None):
        clipped = astropy_sigma_clip(data, sigma=2.5, maxiters=maxiters, cenfunc="median",
                                     stdfunc="std", axis=0)
        got = combine(data, "average", sigma_clip=True, sigma_clip_low_thresh=2.5,
                      sigma_clip_high_thresh=2.5, sigma_clip_func="median",
                      sigma_clip_dev_func="std", maxiters=maxiters, dtype=np.float64)
        np.testing.assert_allclose(got.data, clipped.mean(axis=0).filled(np.nan), rtol=1e-12)


# -- Combiner ---------------------------------------------------------------------------------

def test_combiner_matches_ccdproc_step_by_step():
    data, masks = _stack()
    ccds = _ccds(data, masks)
    ref, got = ccdproc.Combiner(ccds, dtype=np.float64), Combiner(ccds, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ccdproc: NaN input and 0/0 for empty pixels
        for c in (ref, got):
            c.clip_extrema(nlow=1, nhigh=1)
            c.minmax_clipping(min_clip=80, max_clip=400)
            c.sigma_clipping(low_thresh=2, high_thresh=2, func="median", dev_func="mad_std")
        results = [(ref.average_combine(), got.average_combine()),
                   (ref.median_combine(), got.median_combine()),
                   (ref.sum_combine(), got.sum_combine())]
    for r, g in results:
        assert_matches(g, r, rtol=1e-12)
        assert g.header["NCOMBINE"] == N


def test_combiner_weights_and_scaling_match_ccdproc():
    data, _ = _stack(nan=False)
    ccds = _ccds(data, np.zeros(data.shape, bool))
    ref, got = ccdproc.Combiner(ccds, dtype=np.float64), Combiner(ccds, dtype=np.float64)
    for c in (ref, got):
        c.weights = np.linspace(1, 2, N)
        c.scaling = np.linspace(0.9, 1.1, N)
    assert_matches(got.average_combine(), ref.average_combine(), rtol=1e-12)
    assert_matches(got.median_combine(), ref.median_combine(), rtol=1e-12)


def test_combiner_equals_combine():
    data, masks = _stack()
    frames = [Frame(d, mask=m, unit="adu") for d, m in zip(data, masks)]
    c = Combiner(frames)
    c.clip_extrema(nlow=0, nhigh=2)
    c.sigma_clipping(low_thresh=3, high_thresh=3, maxiters=3)
    got = c.median_combine()
    ref = combine(frames, "median", clip_extrema=True, nlow=0, nhigh=2, sigma_clip=True,
                  maxiters=3)
    np.testing.assert_array_equal(got.data, ref.data)
    np.testing.assert_array_equal(got.mask, ref.mask)


def test_combiner_user_functions_and_what_it_rejects():
    """ccdproc's user functions take the generic path (they were refused before)."""
    data = np.array([np.full((2, 2), v) for v in (1.0, 2.0, 30.0)])
    c = Combiner([Frame(d, dtype=None) for d in data], dtype=np.float64)  # Frames out
    c.data_arr.mask[2, 0, 0] = True  # the masked array is a view of the Combiner's stack
    got = c.median_combine(median_func=np.ma.median, uncertainty_func=np.ma.std)
    assert got.data[0, 0] == 1.5 and got.data[1, 1] == 2.0
    assert got.uncertainty[0, 0] == pytest.approx(0.5 / np.sqrt(2))
    with pytest.raises(TypeError, match="use gpucal.combine"):
        c.scaling = "mode"
    with pytest.raises(TypeError):
        Combiner(None)


# -- inputs, outputs, errors ------------------------------------------------------------------

def _write_frames(tmp_path, data, masks=None, unit="adu"):
    paths = []
    for i, d in enumerate(data):
        f = Frame(d, mask=None if masks is None else masks[i], unit=unit,
                  header={"IMAGETYP": "flat", "FRAMENO": i})
        paths.append(tmp_path / f"f{i:02d}.fits")
        f.write(paths[-1], overwrite=True)
    return paths


def test_every_kind_of_input_gives_the_same_result(tmp_path):
    data, masks = _stack(nan=False)
    data = data.astype(np.float32)
    ref = combine([Frame(d, mask=m) for d, m in zip(data, masks)], "median")
    paths = _write_frames(tmp_path, data, masks)
    inputs = {
        "CCDData": _ccds(data, masks),
        "paths": paths,
        "comma string": ",".join(map(str, paths)),
        "masked 3-D array": np.ma.MaskedArray(data, masks),
        "masked 2-D arrays": [np.ma.MaskedArray(d, m) for d, m in zip(data, masks)],
    }
    for name, frames in inputs.items():
        got = combine(frames, "median", device="cpu")
        if name in ("CCDData", "paths", "comma string"):  # CCDData out, as ccdproc
            got = Frame.from_ccddata(got, dtype=None)
        elif name.startswith("masked"):  # masked arrays in, a masked array out
            assert isinstance(got, np.ma.MaskedArray)
            np.testing.assert_array_equal(np.ma.getmaskarray(got), ref.bool_mask)
            got = combine_frame(frames, "median", device="cpu")[0]
        np.testing.assert_array_equal(got.data, ref.data, err_msg=name)
        np.testing.assert_array_equal(got.uncertainty, ref.uncertainty, err_msg=name)
    unmasked = combine(data, "median")  # arrays in, an array out
    np.testing.assert_array_equal(combine(list(data), "median"), unmasked)
    np.testing.assert_array_equal(unmasked, combine_frame(data, "median")[0].data)


def test_result_header_unit_and_output_file(tmp_path):
    data, _ = _stack(nan=False)
    paths = _write_frames(tmp_path, data)
    out = tmp_path / "master.fits"
    got = combine(paths, method="median", sigma_clip=True, output_file=out, device="cpu")
    assert got.unit == u.adu and got.header["IMAGETYP"] == "flat" and got.header["FRAMENO"] == 0
    assert got.header["NCOMBINE"] == N
    history = " ".join(str(h) for h in got.header["HISTORY"])
    assert "combine: method=median" in history and "sigma_clip=3/3/mean/std" in history
    assert "[numpy on cpu]" in history
    written = CCDData.read(out)
    np.testing.assert_array_equal(written.data, got.data)
    with pytest.raises(FileExistsError):
        combine(paths, out, "median")  # ccdproc's positional order: output_file second
    combine(paths, method="average", output_file=out, overwrite_output=True)


def test_scale_by_a_statistic_divides_each_frame():
    rng = np.random.default_rng(11)
    levels = np.array([900.0, 1000, 1100, 1300])
    flats = levels[:, None, None] * rng.normal(1, 0.02, (4, 64, 64))
    for name, stat in (("median", np.median), ("mean", np.mean),
                       ("mode", gpucal.stats.mode)):
        expected = combine(flats / np.array([stat(f) for f in flats])[:, None, None], "median",
                           dtype=np.float64)
        got = combine(flats, "median", scale=name, dtype=np.float64)
        np.testing.assert_allclose(got.data, expected.data, rtol=1e-12, err_msg=name)


@pytest.mark.parametrize("bad, error, message", [
    ([], ValueError, "no frames"),
    (np.ones((0, 3, 3)), ValueError, "no frames"),
    (np.ones((3, 3)), FrameError, "must be 3-D"),
    ([np.ones((3, 3)), np.ones((3, 4))], FrameError, r"frames\[1\]: shape \(3, 4\) differs"),
    ([Frame(np.ones((2, 2)), unit="adu"), Frame(np.ones((2, 2)), unit="electron")], FrameError,
     r"frames\[1\]: unit electron differs"),
    ([np.ones((2, 2)), "a.fits"], TypeError, "not a mix"),
    ([np.ones((2, 2)), {"a": 1}], TypeError, "expected an array, Frame, CCDData"),
    ([np.ones((2, 2, 2))], FrameError, "a frame is 2-D"),
])
def test_bad_frames(bad, error, message):
    with pytest.raises(error, match=message):
        combine(bad)


@pytest.mark.parametrize("frames, message", [
    (np.ones((3, 0, 0)), r"frames: the stack has no pixels \(shape \(3, 0, 0\)\)"),
    (np.ones((3, 0, 5)), r"frames: the stack has no pixels \(shape \(3, 0, 5\)\)"),
    (np.ma.masked_array(np.ones((2, 4, 0))), r"the stack has no pixels"),
    ([np.ones((0, 5))] * 2, r"frames\[0\] has no pixels \(shape \(0, 5\)\)"),
    ([CCDData(np.ones((4, 0)), unit="adu")] * 2, r"frames\[0\] has no pixels"),
])
@pytest.mark.parametrize("method", ["average", "median"])
def test_frames_without_pixels_are_refused(frames, message, method, backend):
    """0×0 and 0×N frames: one FrameError at the edge, not a ZeroDivisionError inside."""
    if isinstance(frames, list) and not isinstance(frames[0], CCDData):
        frames = [to_device(f, backend.device) for f in frames]
    elif not isinstance(frames, (list, np.ma.MaskedArray)):
        frames = to_device(frames, backend.device)
    with pytest.raises(FrameError, match=message):
        combine(frames, method, device=backend.device)
    with pytest.raises(FrameError, match=message):
        Combiner(frames, device=backend.device)


COMPLEX = np.full((3, 4, 5), 1 + 2j)


@pytest.mark.parametrize("frames, name", [
    (COMPLEX, "frames"), (COMPLEX.astype(np.complex64), "frames"),
    (list(COMPLEX), r"frames\[0\]"), ([CCDData(f, unit="adu") for f in COMPLEX], r"frames\[0\]"),
])
def test_complex_frames_are_refused(frames, name, backend):
    """The imaginary part used to be dropped silently."""
    if isinstance(frames, np.ndarray):
        frames = to_device(frames, backend.device)
    elif not isinstance(frames[0], CCDData):
        frames = [to_device(f, backend.device) for f in frames]
    dtype = "complex64" if getattr(frames, "dtype", None) == np.complex64 else "complex128"
    message = rf"{name}: got complex numbers \({dtype}\)"
    with pytest.raises(TypeError, match=message):
        combine(frames, device=backend.device)
    with pytest.raises(TypeError, match=message):
        Combiner(frames, device=backend.device)


def test_complex_weights_and_scale_are_refused():
    with pytest.raises(TypeError, match=r"weights: got complex numbers \(complex128\)"):
        combine(np.ones((3, 4, 5)), weights=[1, 1, 1j])
    combiner = Combiner(np.ones((3, 4, 5)))
    with pytest.raises(TypeError, match=r"weights: got complex numbers"):
        combiner.weights = np.array([1, 1, 1j])
    for scale in (np.array([1, 1, 1j]), lambda a: np.complex128(1 + 1j)):
        with pytest.raises(TypeError, match=r"scale: got complex numbers \(complex128\)"):
            combine(np.ones((3, 4, 5)), scale=scale)


def test_dask_complex_stack_is_refused():
    import dask.array as da

    with pytest.raises(TypeError, match=r"frames: got complex numbers"):
        combine(da.from_array(COMPLEX))


def test_dask_stack_without_pixels_is_refused():
    import dask.array as da

    with pytest.raises(FrameError, match=r"the stack has no pixels \(shape \(3, 0, 4\)\)"):
        combine(da.zeros((3, 0, 4)))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(method="mean"), ValueError, "method must be one of"),
    (dict(weights=[1, 2]), ValueError, r"weights: expected shape \(3,\)"),
    (dict(weights=[1, np.nan, 2]), ValueError, "finite"),
    (dict(scale=[1, 2]), ValueError, "expected 3 factors"),
    (dict(scale="max"), ValueError, "scale must be one of"),
    (dict(scale=lambda a: np.nan), ValueError, "finite"),
    (dict(clip_extrema=True, nhigh=4), ValueError, "nhigh=4 must be between 0 and"),
    (dict(sigma_clip=True, sigma_clip_func=np.max), TypeError, "cenfunc=.*not supported"),
    (dict(sigma_clip=True, maxiters=-1), ValueError, "maxiters must be positive"),
    (dict(mem_limit=100), ValueError, "one row of this stack needs"),
    (dict(mem_limit="lots"), ValueError, "not a memory size"),
])
def test_bad_parameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        combine(np.ones((3, 4, 5)), **kwargs)


def test_scale_statistic_must_be_positive():
    frames = np.ones((3, 4, 4))
    frames[1] = -5
    with pytest.raises(ValueError, match=r"frames\[1\]: its median is -5"):
        combine(frames, scale="median")


def test_bad_file_is_named(tmp_path):
    paths = _write_frames(tmp_path, np.ones((3, 8, 8)))
    paths[1].write_bytes(b"not fits at all" * 100)
    with pytest.raises(FrameError, match=r"f01\.fits: cannot read it as FITS"):
        combine(paths)
    paths = _write_frames(tmp_path, np.ones((3, 8, 8)))
    Frame(np.ones((8, 9)), unit="adu").write(paths[2], overwrite=True)
    with pytest.raises(FrameError, match=r"f02\.fits: shape \(8, 9\) differs"):
        combine(paths)


def test_parse_bytes():
    assert parse_bytes("2GB") == 2_000_000_000 and parse_bytes("1.5 GiB") == 3 * 2**29
    assert parse_bytes(4096) == 4096
    with pytest.raises(ValueError, match="positive"):
        parse_bytes(0)


# -- tiling -----------------------------------------------------------------------------------

TILING = [dict(method="median"),
          dict(method="average", sigma_clip=True, clip_extrema=True, scale="median"),
          dict(method="sum", weights="pixel")]


@pytest.mark.parametrize("kwargs", TILING, ids=["median", "clipped-scaled", "pixel-weights"])
def test_tiled_result_is_identical_to_untiled(kwargs, backend):
    data, masks = _stack(n=12, shape=(64, 48))
    stack = to_device(np.ma.MaskedArray(data, masks).filled(np.nan), backend.device)
    if kwargs.get("weights") == "pixel":
        kwargs = dict(kwargs, weights=np.random.default_rng(2).uniform(1, 2, data.shape))
    whole = combine_frame(stack, **kwargs)[0]
    tiled = combine_frame(stack, mem_limit=12 * 48 * 4 * 100, **kwargs)[0]  # ~4 rows a band
    for a, b in ((whole.data, tiled.data), (whole.uncertainty, tiled.uncertainty),
                 (whole.mask, tiled.mask)):
        np.testing.assert_array_equal(to_device(a, "cpu"), to_device(b, "cpu"))


def test_files_are_read_once_in_bands(tmp_path, monkeypatch):
    data, masks = _stack(n=6, shape=(50, 30), nan=False)
    paths = _write_frames(tmp_path, data.astype(np.float32), masks)
    reads = []
    original = gio.FitsStack.rows
    monkeypatch.setattr(gio.FitsStack, "rows", lambda self, i, a, b, out:
                        reads.append((i, a, b)) or original(self, i, a, b, out))
    # the CPU's band sizes (the GPU budgets its own scratch per value)
    tiled = combine_frame(paths, "median", mem_limit=6 * 30 * 80 * 5, device="cpu")[0]  # ~5 rows
    per_file = {i: sorted((a, b) for j, a, b in reads if j == i) for i in range(6)}
    for spans in per_file.values():
        assert len(spans) > 5
        assert spans[0][0] == 0 and spans[-1][1] == 50
        assert all(b == c for (_, b), (c, _) in zip(spans, spans[1:])), "rows read twice or skipped"
    whole = combine([Frame(d, mask=m) for d, m in zip(data.astype(np.float32), masks)], "median",
                    device="cpu")
    np.testing.assert_array_equal(tiled.data, whole.data)
    np.testing.assert_array_equal(tiled.mask, whole.mask)


def test_memory_stays_within_the_limit_plus_one_output(tmp_path):
    n, ny, nx = 24, 256, 256
    rng = np.random.default_rng(5)
    paths = _write_frames(tmp_path, rng.normal(1000, 10, (n, ny, nx)).astype(np.float32))
    limit = 2_000_000  # the stack is 6.3 MB
    output = ny * nx * (4 + 4 + 4 + 2)  # data, uncertainty, kept-count, mask
    tracemalloc.start()
    try:
        combine(paths, "average", sigma_clip=True, mem_limit=limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    overhead = 1_000_000  # astropy's open files and headers, Python objects
    assert peak <= limit + output + overhead, f"peak {peak / 1e6:.2f} MB"


@pytest.mark.gpu
def test_gpu_stack_deeper_than_the_kernel_keeps_to_mem_limit():
    """Past MAX_FRAMES the GPU combines with the generic code; its bands still fit mem_limit."""
    import cupy

    from gpucal._combine_kernel import MAX_FRAMES

    n, ny, nx = MAX_FRAMES + 8, 48, 40
    data = np.random.default_rng(9).normal(100, 5, (n, ny, nx)).astype(np.float32)
    want = combine(data, "average", sigma_clip=True)
    on_gpu = to_device(data, "gpu")
    pool = cupy.get_default_memory_pool()
    pool.free_all_blocks()
    before = pool.total_bytes()
    limit = 3 * n * nx * (4 + 64)  # about 3 rows a band with the generic code's scratch
    got = combine(on_gpu, "average", sigma_clip=True, mem_limit=limit)
    output = ny * nx * (4 + 4 + 4 + 2)
    assert pool.total_bytes() - before <= limit + output + (1 << 20)
    np.testing.assert_allclose(to_device(got, "cpu"), want, rtol=1e-6)  # arrays in: arrays out


@pytest.mark.gpu
def test_gpu_budget_counts_the_kernels_scratch():
    """The fused kernel reserves no local memory at launch at any depth; its sort scratch
    (a float64 per value) is in the band's budget instead."""
    from gpucal._combine_kernel import MAX_FRAMES
    from gpucal._cuda.combine import WORK_PER_VALUE
    from gpucal.backend import load_backend

    gpu = load_backend("cupy")
    for n in (5, 61, MAX_FRAMES):
        assert gpu.combine_reserve(n, np.float32) == 0
        assert gpu.combine_scratch(n) >= WORK_PER_VALUE
    assert gpu.combine_reserve(MAX_FRAMES + 1, np.float32) == 0  # the generic path


#: CASES whose parameters do not depend on the depth, and extrema deeper than one value.
DEEP_CASES = {name: CASES[name] for name in ("plain", "sigma mean/std", "sigma median/mad_std 2σ",
                                             "minmax + extrema + sigma")}
DEEP_CASES["extrema 3/5"] = dict(clip_extrema=True, nlow=3, nhigh=5)


@pytest.mark.gpu
@pytest.mark.parametrize("n", [61, 300, 512])
@pytest.mark.parametrize("case", list(DEEP_CASES))
def test_gpu_deep_stacks_match_ccdproc(n, case):
    """Deep stacks on the fused kernel (61 darks, hundreds of frames) against ccdproc."""
    data, masks = _stack(seed=n, n=n, shape=(6, 5))
    ccds = _ccds(data, masks)
    for method in ("average", "median", "sum"):
        kwargs = dict(method=method, **DEEP_CASES[case])
        ref = _ccdproc(ccds, dtype=np.float64, **kwargs)
        assert_matches(combine(ccds, dtype=np.float64, device="gpu", **kwargs), ref, rtol=1e-12)
