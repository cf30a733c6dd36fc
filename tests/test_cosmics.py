"""L.A.Cosmic: detect_cosmics against astroscrappy 1.3.0, cosmicray_lacosmic against ccdproc.

On the CPU the masks and cleaned images must be bit-identical to astroscrappy's
(astroscrappy's shipped gmos.fits and seeded synthetic frames, every mode); on
a GPU they may differ in at most 1e-5 of the pixels (float32 rounding at a
threshold).
"""

import os
import warnings

import astroscrappy
import ccdproc
import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.utils.exceptions import AstropyDeprecationWarning

from gpucal import Frame, MaskFlag, cosmicray_lacosmic, detect_cosmics, lacosmic
from gpucal.simulate import cosmic_ray_frame

GMOS = os.path.join(astroscrappy.__path__[0], "tests", "data", "gmos.fits")
GMOS_NOISE = dict(readnoise=4.24, gain=1.933)  # astroscrappy's own test values

MODES = {
    "defaults": {},
    "sepmed off": dict(sepmed=False),
    "medmask": dict(cleantype="medmask"),
    "idw": dict(cleantype="idw"),
    "convolve": dict(fsmode="convolve"),
    "convolve, sepmed off": dict(fsmode="convolve", sepmed=False),
    "convolve gaussx": dict(fsmode="convolve", psfmodel="gaussx"),
    "convolve gaussy": dict(fsmode="convolve", psfmodel="gaussy", psffwhm=3.1, psfsize=5),
    "convolve moffat": dict(fsmode="convolve", psfmodel="moffat", psfbeta=2.5),
    "psfk": dict(fsmode="convolve", psfk=np.random.default_rng(7).random((5, 3)).astype(
        np.float32)),
    "one iteration": dict(niter=1),
    "low thresholds": dict(sigclip=3.0, sigfrac=0.5, objlim=2.0),
}


@pytest.fixture(scope="module")
def gmos():
    return fits.getdata(GMOS).astype(np.float32)


def _extras(image, seed=0):
    """inmask, inbkg and invar for an image, in ADU."""
    rng = np.random.default_rng(seed)
    inmask = rng.random(image.shape) < 0.01
    inbkg = np.full(image.shape, np.median(image), np.float32)
    inbkg += rng.normal(0, 1, image.shape).astype(np.float32)
    invar = (np.abs(image) / 1.933 + 4.24**2 / 1.933**2).astype(np.float32)
    return dict(inmask=inmask, inbkg=inbkg, invar=invar)


def _with_extras(image, names, seed=0):
    extras = _extras(image, seed)
    return {name: extras[name] for name in names}


def _with_saturated_star(image, satlevel):
    """The image with a saturated star (a flat-topped blob 5 px across) added."""
    image = image.copy()
    cy, cx = image.shape[0] // 2, image.shape[1] // 3
    y, x = np.mgrid[:image.shape[0], :image.shape[1]]
    star = 5 * satlevel * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * 2.0**2))
    return np.minimum(image + star, satlevel).astype(np.float32)


def _run(backend, image, kwargs):
    moved = {k: backend.asarray(v) if k in ("inmask", "inbkg", "invar") else v
             for k, v in kwargs.items()}
    crmask, clean = detect_cosmics(backend.asarray(image), **moved)
    return backend.to_numpy(crmask), backend.to_numpy(clean)


def assert_matches(backend, expected, got):
    """Bit-identical on the CPU; on the GPU at most 1e-5 of the mask pixels differ."""
    (mask_a, clean_a), (mask_b, clean_b) = expected, got
    assert mask_b.dtype == bool and clean_b.dtype == np.float32
    if backend.name == "numpy":
        np.testing.assert_array_equal(mask_b, mask_a)
        np.testing.assert_array_equal(clean_b, clean_a)
        return
    assert np.count_nonzero(mask_a != mask_b) <= 1e-5 * mask_a.size
    same = ~(mask_a | mask_b)
    np.testing.assert_allclose(clean_b[same], clean_a[same], rtol=1e-6)


# -- parity with astroscrappy ---------------------------------------------------------------


@pytest.mark.parametrize("mode", list(MODES))
def test_gmos_matches_astroscrappy(backend, gmos, mode):
    kwargs = dict(GMOS_NOISE, **MODES[mode])
    expected = astroscrappy.detect_cosmics(gmos, **kwargs)
    assert expected[0].any()
    assert_matches(backend, expected, _run(backend, gmos, kwargs))


@pytest.mark.parametrize("names", [("inbkg",), ("invar",), ("inbkg", "invar"), ("inmask",)])
@pytest.mark.parametrize("sepmed", [True, False])
def test_gmos_inputs_match_astroscrappy(backend, gmos, names, sepmed):
    kwargs = dict(GMOS_NOISE, sepmed=sepmed, **_with_extras(gmos, names))
    expected = astroscrappy.detect_cosmics(gmos, **kwargs)
    assert_matches(backend, expected, _run(backend, gmos, kwargs))


@pytest.mark.parametrize("sepmed", [True, False])
def test_saturated_star_is_masked_like_astroscrappy(backend, gmos, sepmed):
    satlevel = 20000.0  # electrons
    image = _with_saturated_star(gmos, satlevel / GMOS_NOISE["gain"])
    kwargs = dict(GMOS_NOISE, satlevel=satlevel, sepmed=sepmed)
    expected = astroscrappy.detect_cosmics(image, **kwargs)
    got = _run(backend, image, kwargs)
    assert_matches(backend, expected, got)
    star = (slice(image.shape[0] // 2 - 8, image.shape[0] // 2 + 9),
            slice(image.shape[1] // 3 - 8, image.shape[1] // 3 + 9))
    assert not got[0][star].any()
    if sepmed:  # here the star's edges would be flagged without the saturation mask
        assert astroscrappy.detect_cosmics(image, **dict(kwargs, satlevel=1e9))[0][star].any()


@pytest.mark.parametrize("seed", range(4))
def test_synthetic_frames_match_astroscrappy_in_every_mode(backend, seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(9, 120)), int(rng.integers(9, 120)))
    if seed == 0:
        shape = (9, 9)  # the smallest frame with an interior for every median
    image, _ = cosmic_ray_frame(shape, seed=seed, gain=1.7, readnoise=5.0, satlevel=30000.0)
    extras = _extras(image, seed)
    modes = list(MODES.values()) + [
        {"inbkg": extras["inbkg"]}, {"invar": extras["invar"], "inbkg": extras["inbkg"]},
        {"inmask": extras["inmask"], "cleantype": "idw"}, {"satlevel": 34000.0},
        {"satlevel": 34000.0, "sepmed": False, "cleantype": "medmask"}]
    for mode in modes:
        kwargs = dict(gain=1.7, readnoise=5.0, **mode)
        assert_matches(backend, astroscrappy.detect_cosmics(image, **kwargs),
                       _run(backend, image, kwargs))


class _WindowsSpy:
    """Whether each iteration after the first (`iterations`) and each fine-structure or
    saturation median (`candidates`) was computed on windows rather than whole frames."""

    def __init__(self):
        self.shapes, self.candidates = [], []  # shapes: of the images each iteration saw

    @property
    def iterations(self):  # the first iteration sees whole frames; windows are smaller
        return [shape != self.shapes[0] for shape in self.shapes[1:]]

    def clear(self):
        self.shapes.clear()
        self.candidates.clear()


@pytest.fixture
def windows_used(monkeypatch):
    from gpucal import cosmics

    around, detect, spy = lacosmic.Windows.around.__func__, cosmics._detect, _WindowsSpy()

    def around_spy(cls, *args, grow=True, **kwargs):
        windows = around(cls, *args, grow=grow, **kwargs)
        if not grow:
            spy.candidates.append(windows is not None)
        return windows

    def detect_spy(backend, median, clean, *args):
        spy.shapes.append(clean.shape)
        return detect(backend, median, clean, *args)

    monkeypatch.setattr(lacosmic.Windows, "around", classmethod(around_spy))
    monkeypatch.setattr(cosmics, "_detect", detect_spy)
    return spy


@pytest.mark.parametrize("seed", range(2))
def test_later_iterations_on_windows_match_astroscrappy(backend, seed, windows_used):
    """Sparse cosmic rays on a larger frame: iterations after the first look only near the
    cleaned pixels, and the fine structure is computed only around the candidates
    (lacosmic.Windows); the results stay bit-identical to astroscrappy's."""
    shape, n_cosmics = ((300, 330), 4) if seed else ((320, 300), 5)
    image, _ = cosmic_ray_frame(shape, seed=10, gain=1.7, readnoise=5.0, n_cosmics=n_cosmics,
                                n_stars=3 + seed, satlevel=30000.0)
    extras = _extras(image, seed)
    modes = list(MODES.values()) + [
        {"inbkg": extras["inbkg"]}, {"invar": extras["invar"], "inbkg": extras["inbkg"]},
        {"inmask": extras["inmask"], "cleantype": "idw"},
        {"satlevel": 34000.0, "sepmed": False, "cleantype": "medmask"}]
    for mode in modes:
        kwargs = dict(gain=1.7, readnoise=5.0, **mode)
        windows_used.clear()
        expected = astroscrappy.detect_cosmics(image, **kwargs)
        assert_matches(backend, expected, _run(backend, image, kwargs))
        if mode is MODES["low thresholds"]:  # ~300 pixels found: whole frames again
            assert windows_used.iterations and not any(windows_used.iterations)
        elif kwargs.get("niter", 4) > 1:
            assert windows_used.iterations and all(windows_used.iterations), mode
        if mode is not MODES["low thresholds"]:
            assert any(windows_used.candidates), mode


def test_a_batch_on_windows_equals_frame_by_frame(windows_used):
    frames = np.stack([cosmic_ray_frame((160, 176), seed=s, readnoise=8.0, n_cosmics=5,
                                        n_stars=6)[0] for s in range(3)])
    frames[1] = np.float32(200.0)  # stops after one iteration
    crmask, clean = detect_cosmics(frames, readnoise=8.0)
    assert any(windows_used.iterations) and any(windows_used.candidates)
    for i, frame in enumerate(frames):
        single = detect_cosmics(frame, readnoise=8.0)
        np.testing.assert_array_equal(crmask[i], single[0])
        np.testing.assert_array_equal(clean[i], single[1])


def test_windows_cover_every_pixel_within_reach():
    rng = np.random.default_rng(3)
    mask = np.zeros((2, 150, 170), bool)
    mask[0, rng.integers(0, 150, 4), rng.integers(0, 170, 4)] = True
    mask[1, 149, 0] = True  # a corner
    windows = lacosmic.Windows.around(np, mask, 8)
    covered = windows.scatter(np.ones((len(windows.f), windows.size, windows.size), bool))
    from scipy.ndimage import binary_dilation
    near = np.stack([binary_dilation(m, np.ones((17, 17), bool)) for m in mask])
    assert not (near & ~covered).any()
    assert covered.mean() < 0.5  # and the point: most of the frames are left out
    image = rng.random(mask.shape).astype(np.float32)
    np.testing.assert_array_equal(windows.scatter(windows.gather(image))[covered],
                                  image[covered])
    own = lacosmic.Windows.around(np, mask, 8, grow=False)  # the mask's own pixels only
    covered_own = own.scatter(np.ones((len(own.f), own.size, own.size), bool))
    assert not (mask & ~covered_own).any() and covered_own.sum() < covered.sum()
    assert lacosmic.Windows.around(np, np.ones((1, 64, 64), bool), 8) is None  # no saving
    assert lacosmic.Windows.around(np, mask[:, :20, :20], 8) is None  # frames too small


@pytest.mark.parametrize("dtype", [np.float64, np.uint16, np.int32])
def test_input_dtypes_match_astroscrappy(backend, gmos, dtype):
    image = np.clip(gmos, 0, None).astype(dtype)
    assert_matches(backend, astroscrappy.detect_cosmics(image, **GMOS_NOISE),
                   _run(backend, image, GMOS_NOISE))


@pytest.mark.parametrize("model", ["gauss", "gaussx", "gaussy"])
@pytest.mark.parametrize("fwhm, size", [(2.5, 7), (3.7, 5), (1.2, 9)])
def test_psf_kernels_equal_astroscrappys(model, fwhm, size):
    theirs = getattr(astroscrappy.astroscrappy, f"{model}kernel")(fwhm, size)
    np.testing.assert_array_equal(lacosmic.psf_kernel(model, fwhm, size, 4.765), theirs)


def test_batch_equals_frame_by_frame(backend):
    frames = np.stack([cosmic_ray_frame((96, 80), seed=s, readnoise=8.0)[0] for s in range(3)])
    frames[1] = np.float32(200.0)  # a blank frame: no cosmic rays, it stops after one iteration
    inmask = np.zeros((96, 80), bool)
    inmask[40:44, 10:30] = True
    kwargs = dict(readnoise=8.0, cleantype="median")
    crmask, clean = detect_cosmics(backend.asarray(frames), backend.asarray(inmask), **kwargs)
    crmask, clean = backend.to_numpy(crmask), backend.to_numpy(clean)
    assert crmask.shape == clean.shape == frames.shape
    assert crmask[0].any() and not crmask[1].any() and crmask[2].any()
    for i, frame in enumerate(frames):
        single = _run(backend, frame, dict(kwargs, inmask=inmask))
        np.testing.assert_array_equal(crmask[i], single[0])
        np.testing.assert_array_equal(clean[i], single[1])


def test_detection_quality_equals_astroscrappys():
    """Recall of injected rays and false positives, reported next to astroscrappy's."""
    image, truth = cosmic_ray_frame((512, 512), seed=11, readnoise=10.0)
    kwargs = dict(sigclip=8.0, readnoise=10.0)
    theirs = astroscrappy.detect_cosmics(image, **kwargs)[0]
    ours = detect_cosmics(image, **kwargs)[0]
    recall = (ours & truth).sum() / truth.sum()
    false_positives = int((ours & ~truth).sum())
    print(f"recall {recall:.4f}, {false_positives} false positives; astroscrappy recall "
          f"{(theirs & truth).sum() / truth.sum():.4f}, {int((theirs & ~truth).sum())}")
    np.testing.assert_array_equal(ours, theirs)
    assert recall > 0.95 and false_positives < 0.2 * truth.sum()


# -- where gpucal differs from astroscrappy on purpose -----------------------------------------


def test_median_cleaning_is_the_plain_median_of_the_box(backend, gmos):
    """astroscrappy's cleantype="median" reads uninitialised memory; gpucal's is a real median."""
    crmask, clean = _run(backend, gmos, dict(GMOS_NOISE, cleantype="median", niter=1))
    electrons = gmos * np.float32(GMOS_NOISE["gain"])
    ys, xs = np.nonzero(crmask[2:-2, 2:-2])
    boxes = np.stack([electrons[ys + 2 + dy, xs + 2 + dx]
                      for dy in range(-2, 3) for dx in range(-2, 3)])
    expected = np.median(boxes, axis=0).astype(np.float32) / np.float32(GMOS_NOISE["gain"])
    assert ys.size > 50
    np.testing.assert_array_equal(clean[ys + 2, xs + 2], expected)
    rest = np.ones_like(crmask)
    rest[ys + 2, xs + 2] = False
    np.testing.assert_array_equal(clean[rest], (electrons / np.float32(1.933))[rest])


def test_non_finite_pixels_are_masked_and_kept(backend):
    """NaN and inf take no part: as astroscrappy with them masked and set to the sky level."""
    image, _ = cosmic_ray_frame((128, 128), seed=4, readnoise=6.0)
    bad = np.zeros(image.shape, bool)
    bad[[30, 60, 61, 100], [20, 90, 90, 50]] = True
    dirty = image.copy()
    dirty[bad] = [np.nan, np.inf, -np.inf, np.nan]
    crmask, clean = _run(backend, dirty, dict(readnoise=6.0))
    assert not crmask[bad].any()
    np.testing.assert_array_equal(clean[bad], dirty[bad])

    grown = np.zeros_like(bad)  # astroscrappy grows the mask by one pixel
    for y, x in zip(*np.nonzero(bad)):
        grown[y - 1:y + 2, x - 1:x + 2] = True
    good = np.sort(image[~grown])
    level = good[(good.size - 1) // 2]  # the background level (lower median), gain 1
    stand_in = np.where(bad, level, image).astype(np.float32)
    expected = astroscrappy.detect_cosmics(stand_in, inmask=bad, readnoise=6.0)
    np.testing.assert_array_equal(crmask, expected[0])
    np.testing.assert_array_equal(clean[~bad], expected[1][~bad])


def test_float64_invar_works(backend, gmos):
    """astroscrappy needs float32 invar (ValueError otherwise); the result is the same."""
    invar = _extras(gmos)["invar"]
    expected = astroscrappy.detect_cosmics(gmos, invar=invar, **GMOS_NOISE)
    assert_matches(backend, expected, _run(backend, gmos, dict(GMOS_NOISE,
                                                               invar=invar.astype(np.float64))))


def test_all_masked_frame_finds_nothing(backend):
    image = np.full((20, 20), 100.0, np.float32)
    crmask, clean = _run(backend, image, dict(inmask=np.ones((20, 20), bool)))
    assert not crmask.any()
    np.testing.assert_array_equal(clean, image)


def test_verbose_reports_each_iteration(capsys, gmos):
    detect_cosmics(gmos, verbose=True, niter=2, **GMOS_NOISE)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Starting 2 L.A.Cosmic iterations"
    assert lines[1].startswith("Iteration 1: ") and lines[1].endswith(" cosmic pixels")
    assert len(lines) == 3


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(indat=np.zeros((8, 20))), ValueError, "at least 9"),
    (dict(indat=np.zeros((2, 3, 20, 20))), ValueError, "batch"),
    (dict(indat=np.zeros((20, 20), complex)), TypeError, "numbers"),
    (dict(inmask=np.zeros((20, 21), bool)), ValueError, "inmask has shape"),
    (dict(invar=np.zeros((3, 20, 20))), ValueError, "invar has shape"),
    (dict(cleantype="mean"), ValueError, "cleantype"),
    (dict(fsmode="gauss"), ValueError, "fsmode"),
    (dict(psfmodel="airy"), ValueError, "psfmodel"),
    (dict(fsmode="convolve", psfsize=6), ValueError, "psfsize"),
    (dict(fsmode="convolve", psfk=np.ones((4, 4))), ValueError, "odd sides"),
    (dict(niter=-1), ValueError, "niter"),
    (dict(gain="high"), TypeError, "gain"),
    (dict(gain=0.0), ValueError, "gain must be a positive number of electrons per ADU; got 0.0"),
    (dict(gain=-2), ValueError, "gain must be a positive number .*; got -2"),
    (dict(gain=1e-50), ValueError, "gain must be a positive number"),  # 0 as a C float
    (dict(gain=np.inf), ValueError, "gain must be a positive number"),
    (dict(readnoise=-1.0), ValueError, "readnoise must be a number of electrons, 0 or more"),
    (dict(readnoise=np.nan), ValueError, "readnoise must be a number of electrons"),
    (dict(readnoise=1e30), ValueError,
     r"readnoise = 1e\+30 is too large: its square overflows float32"),
])
def test_bad_input_raises_clearly(kwargs, error, match):
    kwargs = dict({"indat": np.ones((20, 20), np.float32)}, **kwargs)
    with pytest.raises(error, match=match):
        detect_cosmics(**kwargs)


def test_largest_readnoise_accepted_is_the_float32_limit():
    image = np.full((20, 20), 100.0, np.float32)
    crmask, clean = detect_cosmics(image, readnoise=1e19)  # 1e38 e-²: still a float32
    assert not crmask.any() and np.isfinite(clean).all()


def test_cosmicray_lacosmic_refuses_a_noise_model_it_cannot_use():
    frame = Frame(np.full((20, 20), 100.0), unit="adu")
    with pytest.raises(ValueError, match="gain must be a positive number"):
        cosmicray_lacosmic(frame, gain=0 * u.electron / u.adu)
    with pytest.raises(ValueError, match="readnoise = 1e\\+30 is too large"):
        cosmicray_lacosmic(frame, readnoise=1e30 * u.electron)


# -- ccdproc's wrapper --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def science():
    image, _ = cosmic_ray_frame((128, 160), seed=3, gain=2.0, readnoise=5.0)
    mask = np.zeros(image.shape, bool)
    mask[10:12, 40:50] = True
    return image, mask


def _ccdproc_lacosmic(ccd, _function=None, **kwargs):
    with warnings.catch_warnings():  # pssl is deprecated in ccdproc (gpucal warns alike)
        warnings.simplefilter("ignore", AstropyDeprecationWarning)
        return (_function or ccdproc.cosmicray_lacosmic)(ccd, **kwargs)


def _gpucal_lacosmic(ccd, **kwargs):
    return _ccdproc_lacosmic(ccd, _function=cosmicray_lacosmic, **kwargs)


@pytest.mark.parametrize("kwargs", [
    dict(gain=2.0, readnoise=5.0),
    dict(gain=2.0 * u.electron / u.adu, readnoise=5.0 * u.electron, sepmed=False,
         cleantype="idw"),
    dict(gain=1.0, readnoise=5.0, pssl=20.0),
    dict(gain=2.0, readnoise=5.0, gain_apply=False),
])
def test_cosmicray_lacosmic_matches_ccdproc(science, kwargs):
    image, mask = science
    ccd = CCDData(image, unit="adu", mask=mask,
                  uncertainty=StdDevUncertainty(np.full(image.shape, 3.0)))
    theirs, ours = _ccdproc_lacosmic(ccd, **kwargs), _gpucal_lacosmic(ccd, **kwargs)
    assert isinstance(ours, CCDData) and ours.data.dtype == theirs.data.dtype
    np.testing.assert_array_equal(ours.data, theirs.data)
    np.testing.assert_array_equal(ours.mask, theirs.mask)
    assert theirs.mask.sum() > mask.sum()
    if kwargs.get("gain_apply", True):  # ccdproc 2.5.1 leaves the uncertainty in ADU
        assert ours.unit == theirs.unit == u.electron
        gain = u.Quantity(kwargs["gain"]).value
        np.testing.assert_array_equal(ours.uncertainty.array, np.float32(3.0) * gain)
    else:  # ccdproc 2.5.1 calls ADU data electrons here (its bug #729); gpucal keeps ADU
        assert ours.unit == u.adu and theirs.unit == u.electron
        np.testing.assert_array_equal(ours.uncertainty.array, 3.0)

    theirs_arr, ours_arr = (f(image, **kwargs) for f in (_ccdproc_lacosmic, _gpucal_lacosmic))
    for a, b in zip(theirs_arr, ours_arr):  # (cleanarr, crmask): ccdproc's order
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(b, a)


def test_cosmicray_lacosmic_flags_a_frame(science):
    image, mask = science
    frame = Frame(image, mask=np.where(mask, int(MaskFlag.BAD_PIXEL), 0).astype(np.uint16),
                  unit="adu")
    out = cosmicray_lacosmic(frame, gain=2.0, readnoise=5.0)
    crmask, clean = detect_cosmics(image, inmask=mask, gain=2.0, readnoise=5.0,
                                   satlevel=65535.0)
    assert isinstance(out, Frame) and out.dtype == np.float32 and out.unit == u.electron
    np.testing.assert_array_equal(out.data, (clean * 2.0).astype(np.float32))
    np.testing.assert_array_equal(out.mask & MaskFlag.COSMIC_RAY != 0, crmask)
    np.testing.assert_array_equal(out.mask & MaskFlag.BAD_PIXEL != 0, mask)
    assert "cosmicray_lacosmic" in "".join(out.header["HISTORY"])
    np.testing.assert_array_equal(frame.data, image)  # the input is untouched


def test_cosmicray_lacosmic_checks_units(science):
    image, _ = science
    with pytest.warns(UserWarning, match="gain value is not 1.0"):
        cosmicray_lacosmic(CCDData(image, unit="electron"), gain=2.0)
    with pytest.raises(ValueError, match="Inconsistent units"):
        cosmicray_lacosmic(CCDData(image, unit="adu"), readnoise=5.0 * u.adu)
    with pytest.raises(ValueError, match="pssl"), pytest.warns(AstropyDeprecationWarning):
        cosmicray_lacosmic(image, pssl=3.0, inbkg=image)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # electrons, gain 1: consistent, no warning
        out = cosmicray_lacosmic(CCDData(image, unit="electron"), readnoise=5.0)
    assert out.unit == u.electron


@pytest.mark.parametrize("shape", [(2, 96, 128), (1, 100, 77)])
def test_windows_take_exactly_the_tiles_within_reach(backend, shape):
    """The tiles Windows picks are those the (2 reach + 1)² box dilation of the mask touches
    (computed 8 columns at a time, see lacosmic._near_tiles), at every reach and shape."""
    from scipy.ndimage import binary_dilation
    rng = np.random.default_rng(shape[-1])
    mask = rng.random(shape) < 0.002
    mask[0, -1, -1] = mask[-1, 0, 5] = True  # corners and edges
    n, ny, nx = shape
    nby, nbx = -(-ny // 16), -(-nx // 16)
    for reach in (0, 1, 7, 8, 9, 13, 16, 21):
        grown = np.stack([binary_dilation(m, np.ones((2 * reach + 1,) * 2, bool)) if reach
                          else m for m in mask])
        padded = np.zeros((n, nby * 16, nbx * 16), bool)
        padded[:, :ny, :nx] = grown
        expected = padded.reshape(n, nby, 16, nbx, 16).any(axis=(2, 4))
        got = lacosmic._near_tiles(backend.xp, backend.asarray(mask), reach, 16)
        np.testing.assert_array_equal(backend.to_numpy(got), expected, err_msg=f"reach {reach}")
