"""The scalar arguments of the fused combine kernel, shared by its CuPy launcher and the
host test harness that compiles the same C++ on the CPU.  Imports no CuPy."""

#: Deeper stacks use the backend's generic (unfused) path: the kernel keeps N values
#: per thread in local memory.
MAX_FRAMES = 512

_METHODS = {"average": 0, "median": 1, "sum": 2}
_DEVIATIONS = {"std": 0, "mad_std": 1, "mad": 2}


def kernel_scalars(method, minmax, extrema, sigma, weights_kind):
    """Arguments after (x, mask, scale, weights, npix, has_mask, has_scale), in the
    kernel's order: method, minmax, extrema, sigma and weights as ints and floats.

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
