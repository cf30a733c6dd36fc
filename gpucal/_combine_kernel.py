"""The fused combine kernel's instantiations and scalar arguments, shared by its CuPy
launcher, the host test harness that compiles the same C++ on the CPU and the ptxas table
(bench/ptxas_combine.py).  Imports no CuPy."""

#: Deeper stacks use the backend's generic (unfused) path.  The kernel itself has no
#: limit (its scratch is a global (N, pixels) array); this bounds what has been checked.
MAX_FRAMES = 512

_METHODS = {"average": 0, "median": 1, "sum": 2}
_DEVIATIONS = {"std": 0, "mad_std": 1, "mad": 2}


def kernel_name(nframes, ctype):
    """The template instantiation that combines `nframes` frames of C type `ctype`.

    The depth is a runtime argument: one instantiation per dtype serves every depth
    (2..MAX_FRAMES), so a new stack depth never compiles a new kernel.
    """
    if not 1 <= nframes <= MAX_FRAMES:
        raise ValueError(f"the fused kernel combines 1 to {MAX_FRAMES} frames, not {nframes}")
    return f"gpucal_combine_stack<{ctype}>"


def needs_work(method, extrema, sigma):
    """Whether the kernel sorts, i.e. needs its (N, pixels) float64 scratch
    (gpucal_combine_needs_work in combine_pixel.cuh)."""
    s = sigma or {}
    median_based = sigma is not None and (s.get("cenfunc") == "median"
                                          or s.get("stdfunc", "std") != "std")
    return method == "median" or extrema is not None or median_based


def kernel_scalars(method, minmax, extrema, sigma, weights_kind):
    """Arguments after (x, mask, scale, weights, work, nframes, npix, has_mask, has_scale),
    in the kernel's order: method, minmax, extrema, sigma and weights as ints and floats.

    `weights_kind` is 0 (none), 1 (per frame) or 2 (per pixel).
    """
    low, high = minmax if minmax is not None else (None, None)
    nlow, nhigh = extrema if extrema is not None else (-1, 0)
    s = sigma or {}
    return (_METHODS[method],
            int(low is not None), int(high is not None),
            float(0 if low is None else low), float(0 if high is None else high),
            int(nlow), int(nhigh),
            int(sigma is not None), float(s.get("sigma_lower", 0)), float(s.get("sigma_upper", 0)),
            int(s.get("maxiters") or 0), int(s.get("cenfunc") == "median"),
            _DEVIATIONS[s.get("stdfunc", "std")],
            int(weights_kind))
