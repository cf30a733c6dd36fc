"""Exact small-window medians with astroscrappy's borders: L.A.Cosmic's filters.

* full ``size × size`` median (size 3, 5 or 7) of the pixels at least
  ``h = size // 2`` from every edge; the h-wide border is the input's.
* separable median (size 3, 5, 7 or 9): the median of each row's ``1 × size``
  window, then the median of ``size × 1`` windows of those row medians, for the
  same interior; the border is again the input's.

That is astroscrappy's ``medfilt3/5/7`` and ``sepmedfilt3/5/7/9``: medians of
an odd number of values are window elements, so the results are bit-identical
to any exact implementation. Inputs must be finite (L.A.Cosmic replaces
non-finite pixels before filtering): NaN has no place in an order.

Every window value goes through a *selection network* — a Batcher sorting
network pruned to the compare-exchanges the middle output depends on — applied
with ``minimum``/``maximum`` to whole rows at once, band by band so the
operands stay in cache. The network is exact by construction, has no
data-dependent branches and vectorises; for 9 values it costs 40 operations.
Where the install compiled ``_rankfilter``, the same network runs there over
blocks of 256 columns held in L1 (``median_band``): 5-10x fewer passes over memory
and no Python call per band and operation; the NumPy path is its oracle.
"""

import functools

import numpy as np

from . import filters
from .threads import run_all

FULL_SIZES = (3, 5, 7)
SEPARABLE_SIZES = (3, 5, 7, 9)
#: Values (rows × columns) of one band: small enough for the network's operands to
#: stay in L2 (measured on 2048²: 16 rows run 10x faster than whole images).
BAND_VALUES = 1 << 15
#: The compiled path keeps its working set in L1 whatever the band: bands as large as
#: still split a frame among threads (the separable median redoes 2h rows per band).
COMPILED_BAND_VALUES = 1 << 18


def check_arguments(image, size, separable):
    """Validate median_filter's arguments (both backends); returns size as an int.

    Raises
    ------
    TypeError
        If `image` is not a float32 array of at least 2 dimensions.
    ValueError
        For a size other than 3, 5, 7 (full) or 3, 5, 7, 9 (separable).
    """
    if image.ndim < 2 or image.dtype != np.float32:
        raise TypeError("median_filter takes a float32 array of shape (..., ny, nx)")
    sizes = SEPARABLE_SIZES if separable else FULL_SIZES
    if size not in sizes:
        kind = "separable" if separable else "full"
        raise ValueError(f"{kind} median size must be one of {sizes}; got {size!r}")
    return int(size)


@functools.cache
def selection_network(n):
    """Compare-exchanges that leave the median of `n` values (n odd) at index n // 2.

    Returns a tuple of ``(i, j, keep_min, keep_max)``: order values i < j,
    writing the minimum to i if `keep_min` and the maximum to j if `keep_max`
    (the other output is never read again).
    """
    width = 1
    while width < n:
        width *= 2
    pairs = []

    def merge(lo, length, step):  # Batcher's odd-even merge
        if 2 * step < length:
            merge(lo, length, 2 * step)
            merge(lo + step, length, 2 * step)
            pairs.extend((i, i + step) for i in range(lo + step, lo + length - step, 2 * step))
        else:
            pairs.append((lo, lo + step))

    def sort(lo, length):
        if length > 1:
            sort(lo, length // 2)
            sort(lo + length // 2, length // 2)
            merge(lo, length, 1)

    sort(0, width)
    # Padding values are +inf: a pair reaching into the padding leaves both unchanged.
    pairs = [(i, j) for i, j in pairs if j < n]
    needed, network = {n // 2}, []
    for i, j in reversed(pairs):
        keep_min, keep_max = i in needed, j in needed
        if keep_min or keep_max:
            network.append((i, j, keep_min, keep_max))
            needed |= {i, j}
    return tuple(reversed(network))


@functools.cache
def _network_bytes(n):
    """selection_network(n) as the compiled median_band takes it: 4 bytes per exchange."""
    return bytes(b for exchange in selection_network(n) for b in exchange)


def network_median(values):
    """Elementwise median of a list of equally shaped arrays (odd length); consumes the list."""
    v = list(values)
    for i, j, keep_min, keep_max in selection_network(len(v)):
        low = np.minimum(v[i], v[j]) if keep_min else None
        if keep_max:
            v[j] = np.maximum(v[i], v[j])
        if keep_min:
            v[i] = low
    return v[len(v) // 2]


def _band_median(image, out, size, separable, r0, r1, compiled):
    """Write the medians of output rows r0..r1 (all interior) of frames (n, ny, nx) into out."""
    if compiled:
        n, ny, nx = image.shape
        filters._rankfilter.median_band(image, out, n, ny, nx, size, separable, r0, r1,
                                        _network_bytes(size * (1 if separable else size)))
        return
    h = size // 2
    nx = image.shape[-1]
    cols = nx - 2 * h
    rows = image[..., r0 - h:r1 + h, :]
    if separable:
        row_med = network_median([rows[..., k:k + cols] for k in range(size)])
        windows = [row_med[..., k:k + r1 - r0, :] for k in range(size)]
    else:
        windows = [rows[..., dy:dy + r1 - r0, dx:dx + cols]
                   for dy in range(size) for dx in range(size)]
    out[..., r0:r1, h:nx - h] = network_median(windows)


def median_filter(images, size, separable=False, *, threads=1, compiled=None):
    """astroscrappy's (separable) median filter of each frame of a float32 array.

    Parameters
    ----------
    images : numpy.ndarray, float32, shape (..., ny, nx)
        Finite values; leading dimensions are independent frames.
    size : int
        Window size: 3, 5 or 7; with `separable` also 9.
    separable : bool
        Rows then columns (astroscrappy's ``sepmedfilt``) instead of the full window.
    threads : int
        Row bands computed at once (NumPy and the compiled module release the GIL).
    compiled : bool, optional
        Run the compiled ``_rankfilter.median_band`` (True needs it built) or the
        NumPy network (False); default: compiled where it was built.

    Returns
    -------
    numpy.ndarray
        New float32 array of the same shape; a border of ``size // 2`` pixels
        is copied from the input, as is any frame too small to have an interior.
    """
    size = check_arguments(images, size, separable)
    images = np.ascontiguousarray(images)
    out = images.copy()
    ny, nx = images.shape[-2:]
    h = size // 2
    if ny <= 2 * h or nx <= 2 * h:
        return out
    frames_in = images.reshape(-1, ny, nx)
    frames_out = out.reshape(-1, ny, nx)
    n = frames_in.shape[0]
    compiled = filters._use_compiled(compiled)
    band = COMPILED_BAND_VALUES if compiled else BAND_VALUES
    group = max(1, band // (ny * nx))  # small frames (windows) go several at a time
    step = max(1, band // (nx * group))
    work = [(f, min(f + group, n), r0, min(r0 + step, ny - h))
            for f in range(0, n, group) for r0 in range(h, ny - h, step)]
    run_all(lambda w: _band_median(frames_in[w[0]:w[1]], frames_out[w[0]:w[1]], size,
                                   separable, w[2], w[3], compiled), work, threads)
    return out
