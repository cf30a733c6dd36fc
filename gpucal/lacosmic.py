"""The pieces of L.A.Cosmic (van Dokkum 2001) as astroscrappy 1.3.0 computes them.

The functions take NumPy or CuPy arrays shaped (N, ny, nx) (`xp` is their
array namespace where one is needed); gpucal.cosmics strings them together. The
arithmetic follows astroscrappy's float32 operation order wherever the
rounding reaches the result (see ../shared/reference/ccdproc_spec.md and the
parity tests in tests/test_cosmics.py), so that masks and cleaned images are
bit-identical to it.
"""

import numpy as np

#: astroscrappy's inverse-distance weights of the 5×5 cleaning box (centre 0), as float32.
_IDW_WEIGHTS = np.array([[0.35355339, 0.4472136, 0.5, 0.4472136, 0.35355339],
                         [0.4472136, 0.70710678, 1.0, 0.70710678, 0.4472136],
                         [0.5, 1.0, 0.0, 1.0, 0.5],
                         [0.4472136, 0.70710678, 1.0, 0.70710678, 0.4472136],
                         [0.35355339, 0.4472136, 0.5, 0.4472136, 0.35355339]], np.float32)
_BOX = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]  # row-major, as summed


def laplacian_plus(xp, clean):
    """L+: the positive Laplacian of the 2×-subsampled image, rebinned (paper eq. 5–6).

    Subsampling replicates each pixel into a 2×2 block; the Laplacian kernel
    ``[[0,-1,0],[-1,4,-1],[0,-1,0]]`` with zero padding is then evaluated in
    closed form on the four quadrants (TL, TR, BL, BR) of each original pixel
    v, whose neighbours inside the block are v itself. Clipped at 0 and
    averaged: ``((TL + BR) + (BL + TR)) / 4``. Edge quadrants use the
    operation order (and, on the top row, the double precision) of
    astroscrappy's edge loops.
    """
    f32 = np.float32
    # Neighbours outside the frame are 0: the sums and differences below skip them (x − 0
    # and x + 0 are x, up to the sign of a zero on rows the edge quadrants overwrite).
    top, bottom = (xp.pad(clean[:, i], ((0, 0), (1, 1))) for i in (0, -1))  # zero-padded rows
    # The edge quadrants first: the buffers below are reused in place (the same values).
    v = clean[:, :-1, -1]  # right column, all but the last row
    br_right = (v * f32(4) - clean[:, 1:, -1]) - (v + v)
    v = clean[:, -1]  # bottom row
    v3 = v * f32(4) - v
    bl_bottom, br_bottom = v3 - (v + bottom[:, :-2]), v3 - (bottom[:, 2:] + v)
    corner = v[:, 0] + v[:, 0]  # bottom-left: 4v − (v + v)
    v, lt, rt = (x.astype(np.float64) for x in (clean[:, 0], top[:, :-2], top[:, 2:]))
    tl_top = (((v * 4 - v) - lt) - v).astype(f32)
    tr_top = (((v * 4 - rt) - v) - v).astype(f32)

    a = clean * f32(4)  # exact
    a -= clean
    a[..., 1:] -= clean[..., :-1]  # (4v − v) − left: shared by TL and BL
    b = clean * f32(4)
    b[..., :-1] -= clean[..., 1:]
    b -= clean  # (4v − right) − v: shared by TR and BR
    below = clean.copy()
    below[:, :-1] += clean[:, 1:]  # v + down (addition commutes exactly)
    br = b - below
    bl = xp.subtract(a, below, out=below)
    above = clean.copy()
    above[:, 1:] += clean[:, :-1]
    tl, tr = xp.subtract(a, above, out=a), xp.subtract(b, above, out=b)
    br[:, :-1, -1] = br_right
    bl[:, -1], br[:, -1] = bl_bottom, br_bottom
    bl[:, -1, 0] = corner
    tl[:, 0], tr[:, 0] = tl_top, tr_top

    for q in (tl, tr, bl, br):
        xp.maximum(q, f32(0), out=q)
    tl += br
    bl += tr
    tl += bl
    tl *= f32(0.25)
    return tl  # ((TL + BR) + (BL + TR)) / 4


def _dilate(mask, h, offsets):
    """`mask` OR-ed with its shifts by `offsets` (each |d| ≤ h); the h-pixel border is kept."""
    ny, nx = mask.shape[-2:]
    grown = mask[:, h:-h, h:-h].copy()
    for dy, dx in offsets:
        grown |= mask[:, h + dy:ny - h + dy, h + dx:nx - h + dx]
    out = mask.copy()
    out[:, h:-h, h:-h] = grown
    return out


_RING3 = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
_RING5 = [(dy, dx) for dy, dx in _BOX if (dy or dx) and not (abs(dy) == 2 and abs(dx) == 2)]


def dilate3(mask):
    """3×3 boolean dilation; the 1-pixel border is the input's (astroscrappy's dilate3)."""
    return _dilate(mask, 1, _RING3)


def dilate5(mask, niter):
    """`niter` dilations by the 5×5 box without its corners; 2-pixel border kept."""
    for _ in range(niter):
        mask = _dilate(mask, 2, _RING5)
    return mask


def psf_kernel(psfmodel, psffwhm, psfsize, psfbeta):
    """astroscrappy's PSF kernel (float32, sum 1), before the flip detect_cosmics applies.

    `psffwhm` and `psfbeta` are float32 values (astroscrappy's C floats).
    Offsets from the centre are ``arange(psfsize) - psfsize // 2``.
    """
    x = np.tile(np.arange(psfsize) - psfsize // 2, (psfsize, 1))
    y = x.T.copy()
    fwhm2 = float(np.float32(psffwhm) * np.float32(psffwhm))  # a C float product
    sigma2 = fwhm2 / 2.35482 / 2.35482
    if psfmodel == "gauss":
        values = np.exp(-0.5 * (x * x + y * y) / sigma2)
    elif psfmodel == "gaussx":
        values = np.exp(-0.5 * x * x / sigma2)
    elif psfmodel == "gaussy":
        values = np.exp(-0.5 * y * y / sigma2)
    else:  # moffat
        r = np.sqrt(x * x + y * y)
        alpha = psffwhm / 2.0 / np.sqrt(np.power(2.0, 1.0 / psfbeta) - 1.0)
        values = np.power(1.0 + (r * r / alpha / alpha), -1.0 * psfbeta)
    kernel = values.astype(np.float32)
    kernel /= kernel.sum()
    return kernel


def convolve(xp, image, kernel):
    """2-D convolution with zero padding, float32, taps accumulated in astroscrappy's order.

    `kernel` is a (kny, knx) NumPy float32 array with odd sides.
    """
    kny, knx = kernel.shape
    by, bx = kny // 2, knx // 2
    ny, nx = image.shape[-2:]
    pad = xp.pad(image, ((0, 0), (by, by), (bx, bx)))
    total = xp.zeros_like(image)
    for dy in range(-by, by + 1):
        for dx in range(-bx, bx + 1):
            tap = kernel[by - dy, bx - dx]  # a float32 scalar: the products stay float32
            total += tap * pad[:, by + dy:by + dy + ny, bx + dx:bx + dx + nx]
    return total


def radius(sepmed, full, separable):
    """The radius of L.A.Cosmic's median that is `full` × `full`, or `separable` with sepmed."""
    return (separable if sepmed else full) // 2


def fine_reach(sepmed, psfk):
    """How far (pixels) the fine-structure image at a pixel looks into the image.

    Its 3×3 median (or PSF convolution), then the 7×7 median of that; the noise it is
    divided by comes computed.
    """
    r3 = radius(sepmed, 3, 5) if psfk is None else max(psfk.shape) // 2
    return r3 + radius(sepmed, 7, 9)


def reach(sepmed, psfk):
    """How far (pixels) a change of the image reaches into an iteration's detection.

    The Laplacian (1) over the noise's median (radius r5), sp = s − median(s) (+ r5), the
    fine structure (:func:`fine_reach`, over the same noise), and two 3×3 growths.
    """
    r5 = radius(sepmed, 5, 7)
    return max(max(1, r5) + r5, fine_reach(sepmed, psfk)) + 2


def _spread(xp, mask, r, axis):
    """`mask` OR-ed with its shifts by up to `r` along `axis` (no special border), by
    doubling shifts."""
    done, step = 0, 1
    while done < r:
        k = min(step, r - done)
        grown = mask.copy()
        lead = [slice(None)] * mask.ndim
        lag = [slice(None)] * mask.ndim
        lead[axis], lag[axis] = slice(k, None), slice(None, -k)
        grown[tuple(lead)] |= mask[tuple(lag)]
        grown[tuple(lag)] |= mask[tuple(lead)]
        mask, done, step = grown, done + k, 2 * step
    return mask


def _bytes_word(flags):
    """The uint64 whose 8 bytes are 0xFF where `flags` (8 bools, in memory order) hold."""
    return np.array([0xFF if f else 0 for f in flags], np.uint8).view(np.uint64)[0]


def _near_tiles(xp, mask, reach, tile):
    """(N, tiles down, tiles across): the `tile`-pixel square tiles (`tile` a multiple of 8)
    holding a pixel within `reach` (a box) of `mask`.

    A bool is one byte, so 8 columns of a row are one 64-bit word: the columns are
    dilated a word at a time, the `reach` % 8 columns of the words at either end of
    a tile's reach picked out with a byte mask; the rows after them. About 25× cheaper
    than dilating the whole mask pixel by pixel.
    """
    n, ny, nx = mask.shape
    nby, nbx = -(-ny // tile), -(-nx // tile)
    if (ny, nx) != (nby * tile, nbx * tile) or not mask.flags.c_contiguous:
        padded = xp.zeros((n, nby * tile, nbx * tile), bool)
        padded[:, :ny, :nx] = mask
        mask = padded
    words = mask.view(xp.uint64)  # (N, rows, words of 8 columns)
    whole, part = divmod(reach, 8)
    near = _spread(xp, words != 0, whole, 2)
    if part:  # a tile's first word takes the last `part` columns of the word `whole` + 1
        # before it, its last word the first `part` columns of the word `whole` + 1 after
        k = whole + 1
        near[..., k:] |= (words[..., :-k] & _bytes_word([False] * (8 - part) + [True] * part)) != 0
        near[..., :-k] |= (words[..., k:] & _bytes_word([True] * part + [False] * (8 - part))) != 0
    near = _spread(xp, near, reach, 1)
    return near.reshape(n, nby, tile, nbx, tile // 8).any(axis=(2, 4))


class Windows:
    """Square windows of (N, ny, nx) frames that cover every pixel within `reach` of `mask`.

    The frames are cut into ``tile``-pixel square tiles; a tile within `reach` of a mask
    pixel is taken with a margin of `reach` on each side (shifted inward at the frame's edges, so
    that the frame's own borders stay borders). A computation of radius ≤ `reach` on
    the windows is exact on their tiles (:meth:`scatter` keeps only those), so
    L.A.Cosmic's later iterations, where only the cleaned pixels changed, look only
    near them. :meth:`around` returns None where windows would not save work.
    """

    def __init__(self, xp, frames, tile_y, tile_x, tile, reach, shape):
        ny, nx = shape[-2:]
        self.xp, self.shape, self.tile, self.size = xp, shape, tile, tile + 2 * reach
        self.f, self.ty, self.tx = frames, tile_y, tile_x  # frame and first pixel of a tile
        self.y0 = xp.clip(tile_y - reach, 0, ny - self.size)  # first pixel of its window
        self.x0 = xp.clip(tile_x - reach, 0, nx - self.size)
        self._index = None

    @classmethod
    def around(cls, xp, mask, reach, tile=16, max_share=0.5, grow=True):
        """Windows whose tiles cover every pixel within `reach` of `mask` (without
        `grow`: every pixel of `mask`); None where they would not save work."""
        n, ny, nx = mask.shape
        t = tile
        size = t + 2 * reach
        if ny < size or nx < size:
            return None
        f, by, bx = xp.nonzero(_near_tiles(xp, mask, reach if grow else 0, t))
        if f.size * size * size > max_share * mask.size:
            return None
        # The last tile of a row or column ends at the frame's edge (it may overlap the one
        # before: both are exact there).
        return cls(xp, f, xp.minimum(by * t, ny - t), xp.minimum(bx * t, nx - t), t, reach,
                   mask.shape)

    def _offsets(self, first, y, x, width, n):
        """Flat indices (M, n, n) of the n × n blocks at (first frame, y, x) of arrays
        whose rows are `width` long (one index array: NumPy's fast path, ~3× a 3-D one)."""
        span = self.xp.arange(n)
        return (first + y * width + x)[:, None, None] + (span[:, None] * width + span)

    def gather(self, image):
        """The windows of `image` (N, ny, nx) as an (M, size, size) stack."""
        if self._index is None:  # the same for every image: made once
            ny, nx = self.shape[-2:]
            self._index = self._offsets(self.f * (ny * nx), self.y0, self.x0, nx, self.size)
        return image.take(self._index)

    def scatter(self, values):
        """A full-size array, zero outside the tiles, with the tiles of `values` (M, size, size)."""
        xp = self.xp
        ny, nx = self.shape[-2:]
        out = xp.zeros(self.shape, values.dtype)
        own = self._offsets(self.f * (ny * nx), self.ty, self.tx, nx, self.tile)
        part = self._offsets(xp.arange(len(self.f)) * self.size ** 2, self.ty - self.y0,
                             self.tx - self.x0, self.size, self.tile)
        out.reshape(-1)[own] = values.take(part)  # overlapping tiles: the same values
        return out


def where_needed(xp, mask, reach, compute, *images, grow=True):
    """``compute(*images)``, exact where `mask` needs it: on windows when they save work.

    `compute` maps (M, h, w) images (None passes through) to an (M, h, w) result that
    looks at most `reach` pixels away. The result is exact on every pixel within `reach`
    of `mask` (`grow`) or on `mask`'s pixels, and zero outside the windows' tiles. With
    `mask` None, or windows that would not save work, it is computed on whole frames.
    """
    windows = None if mask is None else Windows.around(xp, mask, reach, grow=grow)
    if windows is None:
        return compute(*images)
    return windows.scatter(compute(*(None if a is None else windows.gather(a) for a in images)))


def lower_median(xp, values):
    """Element ``(n - 1) // 2`` of the sorted values (astroscrappy's median); 0 when empty."""
    n = values.size
    if n == 0:
        return np.float32(0)
    return xp.partition(values, (n - 1) // 2)[(n - 1) // 2]


def clean_pixels(xp, image, target, bad, level, cleantype):
    """Replace the `target` pixels of `image` (in place) from their 5×5 neighbourhood.

    Only pixels at least 2 from the edges are replaced. Neighbours flagged in
    `bad` (cosmic rays and masked pixels) take no part, except for
    ``"median"``, the plain median of all 25 values. A pixel without good
    neighbours gets its frame's `level` (an (N,) float32 array).
    """
    # flatnonzero: NumPy's n-D nonzero is ~15x slower on a 2048² frame
    f, y, x = xp.unravel_index(xp.flatnonzero(target), target.shape)
    inner = (y >= 2) & (y < target.shape[1] - 2) & (x >= 2) & (x < target.shape[2] - 2)
    f, y, x = f[inner], y[inner], x[inner]
    if f.size == 0:
        return
    values = [image[f, y + dy, x + dx] for dy, dx in _BOX]
    if cleantype == "median":
        image[f, y, x] = xp.sort(xp.stack(values), axis=0)[len(_BOX) // 2]
        return
    good = [~bad[f, y + dy, x + dx] for dy, dx in _BOX]
    if cleantype == "idw":
        total = wsum = xp.zeros(f.shape, np.float32)
        for (dy, dx), v, ok in zip(_BOX, values, good):
            w = _IDW_WEIGHTS[dy + 2, dx + 2]
            total = xp.where(ok, total + w * v, total)
            wsum = xp.where(ok, wsum + w, wsum)
        empty = wsum < 1e-6
        result = total / xp.where(empty, np.float32(1), wsum)
    else:
        count = sum(ok.astype(np.int64) for ok in good)
        empty = count == 0
        if cleantype == "meanmask":
            total = xp.zeros(f.shape, np.float32)
            for v, ok in zip(values, good):  # float32, in astroscrappy's row-major order
                total = xp.where(ok, total + v, total)
            result = (total.astype(np.float64) / xp.maximum(count, 1)).astype(np.float32)
        else:  # medmask: the lower median of the good values (bad ones sort last)
            inf = np.float32(np.inf)
            ranked = xp.sort(xp.stack([xp.where(ok, v, inf) for v, ok in zip(values, good)]),
                             axis=0)
            pick = xp.maximum(count - 1, 0) // 2
            result = xp.take_along_axis(ranked, pick[None], axis=0)[0]
    image[f, y, x] = xp.where(empty, level[f], result)
