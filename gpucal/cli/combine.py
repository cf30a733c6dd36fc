"""``gpucal combine``: combine FITS frames into a master from the command line."""

import os
import time


def _hdu(text):
    return int(text) if text.isdigit() else text


def _optional_number(text):
    return None if text.lower() == "none" else float(text)


def _cmd_combine(args):
    from ..combine import combine
    from ..device import resolve_device
    from ..io import raw_unit
    from ..progress import ProgressBar

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


def add_command(sub, device_help):
    """Add ``combine`` to the ``gpucal`` parser's subcommands."""
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
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), help=device_help)
    p.add_argument("--hdu", type=_hdu,
                   help="image HDU name or index in each file (default: first image)")
    p.add_argument("--unit", help="unit of the data, overriding BUNIT")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--overwrite", action="store_true", help="replace OUT.fits if it exists")
    p.set_defaults(func=_cmd_combine)
