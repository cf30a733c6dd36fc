"""The ``gpucal`` command line."""

import argparse
import errno
import os
import platform
import sys
import time
from importlib import metadata

from . import cli_cosmics, cli_masks, cli_reduce, cli_report, cli_results
from ._version import __version__
from .device import ENV_VAR, gpu_status, resolve_device
from .errors import FrameError, GPUUnavailableError, OutputBusyError


def _version_of(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _gib(nbytes):
    return f"{nbytes / 2**30:.1f} GiB"


def info_lines():
    """What ``gpucal info`` prints: versions, backends, GPUs or why there are none."""
    import astropy
    import numpy
    import scipy

    status = gpu_status()
    rows = [
        ("gpucal", __version__),
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        ("NumPy", numpy.__version__),
        ("SciPy", scipy.__version__),
        ("astropy", astropy.__version__),
        ("CuPy", status.cupy_version or "not installed"),
        ("CUDA", f"runtime {status.cuda_runtime or '-'}, driver {status.cuda_driver or '-'}"
         if status.cupy_version else "-"),
        ("backends", "numpy (CPU): available"),
        ("", "cupy (GPU): " + ("available" if status.available
                               else f"unavailable: {status.reason}")),
    ]
    for dev in status.devices:
        rows.append((f"GPU {dev.index}", f"{dev.name}, compute capability "
                     f"{dev.compute_capability}, {_gib(dev.total_memory)} total"
                     + ("" if dev.free_memory is None else f", {_gib(dev.free_memory)} free")))
    if not status.devices:
        rows.append(("GPU", f"none: {status.reason}"))
    setting = os.environ.get(ENV_VAR)
    try:
        chosen = resolve_device()
    except (ValueError, GPUUnavailableError) as exc:
        chosen = f"error: {exc}"
    rows.append(("device", f"{ENV_VAR}={setting!r} → {chosen}" if setting
                 else f"auto → {chosen} ({ENV_VAR} not set)"))
    if status.cupy_version:
        rows.append(("kernel cache", os.environ.get("CUPY_CACHE_DIR",
                                                    os.path.expanduser("~/.cupy/kernel_cache"))))
    width = max(len(k) for k, _ in rows)
    return [f"{k:<{width}}  {v}" for k, v in rows]


def _cmd_info(args):
    print("\n".join(info_lines()))
    return 0


def _hdu(text):
    return int(text) if text.isdigit() else text


def _optional_number(text):
    return None if text.lower() == "none" else float(text)


def _cmd_combine(args):
    from .combine import combine
    from .io import raw_unit
    from .progress import ProgressBar

    options = dict(method=args.method, mem_limit=args.mem_limit, device=args.device,
                   maxiters=args.maxiters or None, scale=args.scale, hdu=args.hdu,
                   unit=args.unit, dtype=args.dtype)
    if args.sigma_clip:
        options.update(sigma_clip=True, sigma_clip_low_thresh=args.sigma_clip[0],
                       sigma_clip_high_thresh=args.sigma_clip[1],
                       sigma_clip_func=args.sigma_func, sigma_clip_dev_func=args.dev_func)
    if args.clip_extrema:
        options.update(clip_extrema=True, nlow=args.clip_extrema[0], nhigh=args.clip_extrema[1])
    if args.minmax:
        options.update(minmax_clip=True, minmax_clip_min=args.minmax[0],
                       minmax_clip_max=args.minmax[1])
    if os.path.exists(args.output) and not args.overwrite:
        raise FileExistsError(f"{args.output} exists; pass --overwrite to replace it")
    if args.unit is None:
        options["unit"], note = raw_unit(args.files, args.hdu)
        if note:
            print(note)
    bar = ProgressBar(f"reading {len(args.files)} files")
    started = time.monotonic()
    try:
        result = combine(args.files, progress=bar, output_file=args.output,
                         overwrite_output=args.overwrite, **options)
    finally:
        bar.finish()
    empty = int((result.mask != 0).sum())
    ny, nx = result.shape
    print(f"wrote {args.output}: {args.method} of {len(args.files)} frames ({ny}×{nx}), "
          f"{empty} pixels with no data, {time.monotonic() - started:.1f} s on the "
          f"{resolve_device(args.device).upper()}")
    return 0


_DEVICE_HELP = "where to compute (default: $GPUCAL_DEVICE, else auto)"


def _add_combine(sub):
    p = sub.add_parser("combine", help="combine frames into a master (median, average, sum)",
                       description="Combine FITS frames as ccdproc.combine does, in row bands "
                                   "within a memory budget, on the GPU when there is one.")
    p.add_argument("files", nargs="+", metavar="FILE", help="FITS frames of one size")
    p.add_argument("-o", "--output", required=True, metavar="OUT.fits")
    p.add_argument("--method", choices=("average", "median", "sum"), default="average")
    p.add_argument("--sigma-clip", nargs=2, type=float, metavar=("LOW", "HIGH"),
                   help="reject values LOW/HIGH deviations below/above the centre")
    p.add_argument("--sigma-func", choices=("mean", "median"), default="mean",
                   help="centre for --sigma-clip (default: mean)")
    p.add_argument("--dev-func", choices=("std", "mad_std"), default="std",
                   help="deviation for --sigma-clip (default: std)")
    p.add_argument("--maxiters", type=int, default=1,
                   help="sigma-clipping iterations; 0: until nothing changes (default: 1)")
    p.add_argument("--clip-extrema", nargs=2, type=int, metavar=("NLOW", "NHIGH"),
                   help="reject each pixel's NLOW lowest and NHIGH highest values")
    p.add_argument("--minmax", nargs=2, type=_optional_number, metavar=("MIN", "MAX"),
                   help="reject raw values below MIN or above MAX ('none': no bound)")
    p.add_argument("--scale", choices=("mode", "median", "mean"),
                   help="divide each frame by this statistic first (flat normalisation)")
    p.add_argument("--mem-limit", metavar="SIZE", help="memory for the stack, e.g. 2GB")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), help=_DEVICE_HELP)
    p.add_argument("--hdu", type=_hdu,
                   help="image HDU name or index in each file (default: first image)")
    p.add_argument("--unit", help="unit of the data, overriding BUNIT")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--overwrite", action="store_true", help="replace OUT.fits if it exists")
    p.set_defaults(func=_cmd_combine)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="gpucal", description="GPU-accelerated CCD reduction (NumPy/SciPy fallback).")
    parser.add_argument("--version", action="version", version=f"gpucal {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    info = sub.add_parser("info", help="versions, backends and GPUs (or why there are none)")
    info.set_defaults(func=_cmd_info)
    _add_combine(sub)
    cli_masks.add_commands(sub, _DEVICE_HELP)
    cli_cosmics.add_command(sub, _DEVICE_HELP)
    cli_results.add_command(sub)
    cli_reduce.add_commands(sub, _DEVICE_HELP)
    cli_report.add_command(sub)
    return parser


def _os_message(exc):
    """One line for an OSError: its own words where gpucal wrote them, else the system's
    with the file (cut short: the name may be what was too long)."""
    if exc.errno is None or exc.strerror is None:
        return str(exc)
    name = "" if exc.filename is None else os.fspath(exc.filename)
    name = name if len(name) <= 120 else name[:60] + "…" + name[-40:]
    hint = {errno.ENOSPC: "; free some space and run again (what was written is complete)",
            errno.EDQUOT: "; over quota: free some space and run again",
            errno.EFBIG: "; over the file size limit (ulimit -f)",
            errno.EACCES: "; check the permissions", errno.EROFS: "",
            errno.ENAMETOOLONG: "; use a shorter directory name"}.get(exc.errno, "")
    return f"{exc.strerror}{': ' + name if name else ''}{hint}"


def main(argv=None):
    """Run the ``gpucal`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # `gpucal list | head`: the reader has all it wants
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout
        return 0
    except (FrameError, GPUUnavailableError, OutputBusyError, ValueError) as exc:
        print(f"gpucal {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a missing file, a full disk, no permission, a name too long...
        print(f"gpucal {args.command}: error: {_os_message(exc)}", file=sys.stderr)
        return 1
