"""Photon transfer: gain and read noise recovered from seeded synthetic flats and biases."""

import numpy as np
import pytest
from astropy.io import fits

from gpucal import Frame, to_device
from gpucal.photon_transfer import (DetectorMeasurement, GainEstimate, ReadNoiseEstimate,
                                    gain_from_flats, measure_detector, readnoise_from_biases)
from gpucal.sections import parse_section
from gpucal.simulate import simulate_night

SHAPE = (256, 256)


class Detector:
    """A CCD: ±2 % pixel response (and vignetting), a bias with column pattern, Poisson flats."""

    def __init__(self, seed, gain, readnoise, shape=SHAPE):
        self.rng = rng = np.random.default_rng(seed)
        self.gain, self.readnoise, self.shape = gain, readnoise, shape
        ny, nx = shape
        y, x = np.mgrid[0:ny, 0:nx]
        vignetting = 1.0 - 0.05 * (((y - ny / 2) / ny * 2) ** 2 + ((x - nx / 2) / nx * 2) ** 2)
        self.response = vignetting * rng.uniform(0.98, 1.02, shape)
        self.bias_pattern = 1000.0 + rng.normal(0.0, 3.0, nx)[None, :] + rng.normal(0, 1, shape)
        self.hot = np.zeros(shape, bool)
        self.hot_electrons = np.zeros(shape)

    def add_hot_pixels(self, fraction=0.005):
        """Hot pixels: dark signal (with its shot noise) in flats, a fixed offset in biases."""
        self.hot = self.rng.random(self.shape) < fraction
        self.hot_electrons[self.hot] = self.rng.uniform(200, 5000, int(self.hot.sum()))
        self.bias_pattern = self.bias_pattern + np.where(self.hot, 300.0, 0.0)

    def frame(self, electrons=0.0, dtype=np.float64, cosmics=0):
        signal = electrons * self.response + (self.hot_electrons if electrons else 0.0)
        adu = (self.bias_pattern + self.rng.poisson(signal) / self.gain
               + self.rng.normal(0.0, self.readnoise / self.gain, self.shape))
        if cosmics:
            ny, nx = self.shape
            ys, xs = self.rng.integers(0, ny - 2, cosmics), self.rng.integers(0, nx - 2, cosmics)
            amplitude = self.rng.uniform(300.0, 30000.0, cosmics)
            for dy, dx in ((0, 0), (0, 1), (1, 1), (2, 1)):
                adu[ys + dy, xs + dx] += amplitude * self.rng.uniform(0.2, 1.0, cosmics)
        if np.dtype(dtype).kind == "u":
            return np.clip(np.round(adu), 0, np.iinfo(dtype).max).astype(dtype)
        return adu.astype(dtype)


def _on(backend, *frames):
    return [to_device(f, backend.device) for f in frames]


def _rel(measured, truth):
    return abs(measured / truth - 1.0)


@pytest.mark.parametrize("gain, readnoise", [(0.25, 3.0), (1.5, 9.0), (3.0, 9.0)])
def test_one_pair_recovers_gain_and_readnoise(backend, gain, readnoise):
    det = Detector(1, gain, readnoise)
    level = 5000.0 if gain < 1 else 30000.0  # electrons: about 20000 / 10000 ADU
    f1, f2, b1, b2 = _on(backend, det.frame(level), det.frame(level), det.frame(), det.frame())
    g = gain_from_flats(f1, f2, b1, b2)
    assert isinstance(g, GainEstimate)
    assert _rel(g.value, gain) < 0.04  # one pair of 128² pixels: about 1.1 % standard error
    assert 0.005 < g.uncertainty / gain < 0.025
    assert abs(g.value - gain) < 4 * g.uncertainty
    assert _rel(g.level, level / gain * det.response[64:192, 64:192].mean()) < 0.01
    assert g.scale == pytest.approx(1.0, abs=0.01)
    rn = readnoise_from_biases(b1, b2, gain)
    assert isinstance(rn, ReadNoiseEstimate)
    assert _rel(rn.value, readnoise) < 0.02  # about 0.55 %
    assert 0.002 < rn.uncertainty / readnoise < 0.012
    assert rn.bias_level == pytest.approx(1000.0, abs=1.0)
    adu = readnoise_from_biases(b1, b2)  # gain 1: ADU
    assert adu.value == pytest.approx(rn.value / gain, rel=1e-12)
    propagated = readnoise_from_biases(b1, b2, g)  # a GainEstimate adds its uncertainty
    assert propagated.uncertainty > rn.uncertainty * (1 + 0.5 * g.uncertainty / g.value)


@pytest.mark.parametrize("gain, readnoise", [(0.25, 9.0), (1.5, 3.0), (3.0, 9.0)])
def test_measure_detector_twilight_flats_5_percent_apart(backend, gain, readnoise):
    det = Detector(2, gain, readnoise)
    levels = [20000.0 * gain * (1 - 0.05 * i) for i in range(6)]  # ADU 20000, 19000, ...
    flats = _on(backend, *(det.frame(e) for e in levels))
    biases = _on(backend, *(det.frame() for _ in range(6)))
    m = measure_detector(flats, biases)
    assert isinstance(m, DetectorMeasurement)
    assert (m.n_flat_pairs, m.n_bias_pairs) == (3, 3)
    assert m.flat_pairs == ((5, 4), (3, 2), (1, 0))  # consecutive by level, faintest first
    assert m.source == "gain measured: 3 flat pairs; read noise measured: 3 bias pairs"
    for (i, j), e in zip(m.flat_pairs, m.pair_gains):
        assert e.scale == pytest.approx(levels[i] / levels[j], rel=0.002)  # F2 scaled to F1
    assert _rel(m.gain, gain) < 0.03  # 3 pairs: about 0.65 %
    assert _rel(m.readnoise, readnoise) < 0.03
    assert 0.002 < m.gain_err / gain < 0.02
    assert m.readnoise_adu == pytest.approx(m.readnoise / m.gain, rel=1e-12)
    assert m.bias_level == pytest.approx(1000.0, abs=1.0)


def test_cosmic_rays_and_hot_pixels_do_not_bias(backend):
    gain, readnoise = 1.5, 9.0
    det = Detector(3, gain, readnoise)
    det.add_hot_pixels()
    flats = [det.frame(30000.0 * (1 - 0.05 * i), cosmics=150) for i in range(4)]
    biases = [det.frame(cosmics=150) for _ in range(4)]
    m = measure_detector(_on(backend, *flats), _on(backend, *biases))
    assert _rel(m.gain, gain) < 0.03
    assert _rel(m.readnoise, readnoise) < 0.03
    # the textbook formula with plain statistics is ruined by the same frames
    f1, f2, b1, b2 = (x[64:192, 64:192] for x in (flats[0], flats[1], biases[0], biases[1]))
    naive = (f1.mean() + f2.mean() - b1.mean() - b2.mean()) / (np.var(f1 - f2) - np.var(b1 - b2))
    assert not 0.5 < naive / gain < 1.5


def test_uint16_flats_do_not_wrap(backend):
    det = Detector(4, 1.5, 9.0)
    raw = [det.frame(e, np.uint16) for e in (30000.0, 30000.0, 0.0, 0.0)]
    assert (raw[0] < raw[1]).any()  # uint16 differences would wrap there
    got = gain_from_flats(*_on(backend, *raw))
    as_float = gain_from_flats(*_on(backend, *(r.astype(np.float64) for r in raw)))
    assert got == as_float
    assert _rel(got.value, 1.5) < 0.04
    frames = gain_from_flats(*(Frame(r) for r in _on(backend, *raw)))  # float32 Frames
    assert frames.value == pytest.approx(got.value, rel=1e-9)


def test_frames_masked_pixels_are_left_out(backend):
    det = Detector(5, 1.5, 9.0)
    f1, f2, b1, b2 = det.frame(30000.0), det.frame(30000.0), det.frame(), det.frame()
    f1[100:110, :] += 5000.0 * np.random.default_rng(0).random((10, SHAPE[1]))  # a glint
    mask = np.zeros(SHAPE, bool)
    mask[100:110, :] = True
    mask = to_device(mask, backend.device)
    masked = gain_from_flats(*(Frame(x, mask=mask) for x in _on(backend, f1, f2, b1, b2)))
    glinted = gain_from_flats(*_on(backend, f1, f2, b1, b2))
    assert _rel(masked.value, 1.5) < 0.04
    assert masked != glinted


def test_one_flat_pair_only(backend):
    det = Detector(6, 3.0, 9.0)
    flats = _on(backend, det.frame(60000.0), det.frame(58000.0))
    biases = _on(backend, det.frame(), det.frame(), det.frame())  # the third is unpaired
    m = measure_detector(flats, biases)
    assert (m.n_flat_pairs, m.n_bias_pairs) == (1, 1)
    assert m.gain_source == "measured: 1 flat pair"
    assert m.readnoise_source == "measured: 1 bias pair"
    assert m.gain == m.pair_gains[0].value and m.gain_err == m.pair_gains[0].uncertainty
    assert _rel(m.gain, 3.0) < 0.04
    assert _rel(m.readnoise, 9.0) < 0.04


def test_no_biases_no_gain(backend):
    det = Detector(7, 1.5, 9.0)
    m = measure_detector(_on(backend, det.frame(30000.0), det.frame(30000.0)), [])
    assert m.gain is m.gain_err is m.readnoise is m.readnoise_adu is m.bias_level is None
    assert (m.n_flat_pairs, m.n_bias_pairs) == (0, 0)
    assert m.gain_source == "not measured: no bias frames"
    assert m.readnoise_source == "not measured: 0 biases, 2 needed"
    assert measure_detector([], None).source == ("gain not measured: no bias frames; "
                                                 "read noise not measured: 0 biases, 2 needed")


def test_single_bias_gain_without_readnoise(backend):
    gain, readnoise = 1.5, 9.0
    det = Detector(8, gain, readnoise)
    flats = _on(backend, *(det.frame(30000.0 * (1 - 0.05 * i)) for i in range(4)))
    m = measure_detector(flats, _on(backend, det.frame()))
    assert m.readnoise is m.readnoise_err is m.readnoise_adu is None
    assert m.readnoise_source == "not measured: 1 bias, 2 needed"
    assert m.gain_source == "measured: 2 flat pairs (1 bias: read noise neglected)"
    # read noise neglected: high by about readnoise² / signal = 81 / 28000 e⁻
    assert _rel(m.gain, gain) < 0.04
    one = gain_from_flats(flats[0], flats[1], _on(backend, det.frame())[0], None)
    assert _rel(one.value, gain) < 0.05


def test_biases_without_gain_give_readnoise_in_adu(backend):
    det = Detector(9, 1.5, 9.0)
    m = measure_detector(_on(backend, det.frame(30000.0)), _on(backend, det.frame(), det.frame()))
    assert m.gain is None and m.readnoise is None
    assert m.gain_source == "not measured: 1 flat, 2 needed"
    assert m.readnoise_source == "not measured in e-: no gain (readnoise_adu from 1 bias pair)"
    assert _rel(m.readnoise_adu, 9.0 / 1.5) < 0.03


def test_pairing_skips_saturated_faint_and_lonely_flats(backend):
    det = Detector(10, 1.0, 5.0)
    electrons = [20000.0, 19500.0, 70000.0, 30000.0, 0.0, 90000.0]
    flats = [det.frame(e, np.uint16) for e in electrons]  # 70000, 90000: clip at 65535
    biases = [det.frame(0.0, np.uint16) for _ in range(2)]
    m = measure_detector(_on(backend, *flats), _on(backend, *biases))
    assert m.flat_pairs == ((1, 0),)  # 30000 has no partner within 10 %; 0 e⁻ is too faint
    assert _rel(m.gain, 1.0) < 0.04
    # as float data, saturation must be given to be checked
    as_float = [f.astype(np.float32) for f in flats]
    m = measure_detector(_on(backend, *as_float), _on(backend, *biases), saturation=65535)
    assert m.flat_pairs == ((1, 0),)
    # unnoticed, the two saturated flats pair up, but their difference has no photon noise
    m = measure_detector(_on(backend, *as_float), _on(backend, *biases))
    assert m.flat_pairs == ((1, 0),)
    m = measure_detector(_on(backend, as_float[2], as_float[5]), _on(backend, *biases))
    assert m.gain is None
    assert m.gain_source == ("not measured: no usable pair of the 2 flats (level ratio <= 1.1; "
                             "1 pair without photon noise above the read noise)")
    none = measure_detector(_on(backend, flats[0], flats[3], flats[4]), _on(backend, *biases))
    assert none.gain is None
    assert none.gain_source == ("not measured: no usable pair of the 3 flats "
                                "(level ratio <= 1.1; 1 too faint)")


def test_regions(backend):
    det = Detector(11, 1.5, 9.0)
    frames = _on(backend, det.frame(30000.0), det.frame(30000.0), det.frame(), det.frame())
    default = gain_from_flats(*frames)
    assert gain_from_flats(*frames, region="[65:192,65:192]") == default
    assert gain_from_flats(*frames, region=(slice(64, 192), slice(64, 192))) == default
    whole = gain_from_flats(*frames, region="[*,*]")
    assert _rel(whole.value, 1.5) < 0.03 and whole.uncertainty < default.uncertainty
    with pytest.raises(ValueError, match="at least 16×16"):
        gain_from_flats(*frames, region="[1:10,1:256]")
    with pytest.raises(ValueError, match="reaches outside"):
        gain_from_flats(*frames, region="[1:300,1:256]")
    with pytest.raises(TypeError, match="region must be"):
        gain_from_flats(*frames, region=(1, 2))


def test_wrong_shapes_raise_value_error(backend):
    det = Detector(12, 1.5, 9.0)
    f, b = _on(backend, det.frame(30000.0), det.frame())
    small = _on(backend, det.frame()[:128])[0]
    for call in (lambda: gain_from_flats(f, f, b, small),
                 lambda: readnoise_from_biases(b, small),
                 lambda: measure_detector([f, f], [b, small]),
                 lambda: measure_detector([f, small], [])):
        with pytest.raises(ValueError, match="has shape .* but .* has") as info:
            call()
        assert "\n" not in str(info.value)
    cube = _on(backend, np.stack([det.frame(), det.frame()]))[0]
    with pytest.raises(ValueError, match="must be two-dimensional"):
        gain_from_flats(f, f, b, cube)
    with pytest.raises(ValueError, match="must be two-dimensional"):
        measure_detector(f, [b, b])  # one flat, not a list of flats: its rows are 1-D
    with pytest.raises(ValueError, match="max_level_ratio"):
        measure_detector([f, f], [b, b], max_level_ratio=0.1)
    with pytest.raises(ValueError, match="gain must be"):
        readnoise_from_biases(b, b, gain=0.0)


def test_simulate_night_parameters_recovered(tmp_path, backend):
    gain, readnoise = 1.5, 6.0
    sim = simulate_night(tmp_path, seed=3, shape=(256, 256), overscan=16, gain=gain,
                         readnoise=readnoise, n_bias=5, dark_exposures=(), filters=("V",),
                         n_flat=5, n_science=0)

    def read(kind):
        frames = []
        for path in sorted(sim.paths):
            with fits.open(path) as hdul:
                if hdul[0].header["IMAGETYP"] == kind:  # the data section: TRIMSEC
                    section = parse_section(hdul[0].header["TRIMSEC"])
                    frames.append(to_device(hdul[0].data[section], backend.device))
        return frames

    flats, biases = read("FLAT"), read("BIAS")
    assert flats[0].dtype == np.uint16 and flats[0].shape == (256, 256)
    m = measure_detector(flats, biases)
    assert (m.n_flat_pairs, m.n_bias_pairs) == (2, 2)
    assert _rel(m.gain, gain) < 0.05
    assert _rel(m.readnoise, readnoise) < 0.05
