"""``gpucal ccdmask`` and ``gpucal mask combine``: bad-pixel masks from the command line."""

import os
import time

from astropy.io import fits

from ..flags import MaskFlag


def _check_output(path, overwrite):
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")


def _cmd_ccdmask(args):
    import numpy as np

    from ..badpixels import ccdmask
    from ..frame import Frame
    from ..masks import write_mask
    from ..provenance import add_history

    _check_output(args.output, args.overwrite)
    started = time.monotonic()
    first = Frame.read(args.flat, device=args.device, dtype=args.dtype)
    image, what = first.data, os.path.basename(args.flat)
    if args.flat2:
        second = Frame.read(args.flat2, device=first.device, dtype=args.dtype)
        if second.shape != first.shape:
            raise ValueError(f"{args.flat2} is {second.shape}, {args.flat} is {first.shape}")
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 → inf/NaN, flagged below
            image = second.data / first.data
        what = f"{os.path.basename(args.flat2)} / {what}"
    params = dict(findbadcolumns=args.findbadcolumns, byblocks=args.byblocks, ncmed=args.ncmed,
                  nlmed=args.nlmed, ncsig=args.ncsig, nlsig=args.nlsig, lsigma=args.lsigma,
                  hsigma=args.hsigma, ngood=args.ngood, sigma_estimator=args.sigma_estimator)
    mask = ccdmask(image, **params)
    header = fits.Header([("IMAGETYP", "mask", "bad pixels from ccdmask")])
    add_history(header, f"ccdmask of {what}", first.backend, **params)
    write_mask(args.output, mask, flag=MaskFlag.BAD_PIXEL, header=header,
               overwrite=args.overwrite)
    n = int(mask.sum())
    print(f"wrote {args.output}: {n} bad pixels ({100 * n / mask.size:.3f}%) in {what}, "
          f"{time.monotonic() - started:.1f} s on the {first.device.upper()}")
    return 0


def _cmd_mask_combine(args):
    import numpy as np

    from ..masks import combine_masks, read_mask, write_mask

    _check_output(args.output, args.overwrite)
    masks = [read_mask(path) for path in args.masks]
    for path, m in zip(args.masks, masks):
        if m.shape != masks[0].shape:
            raise ValueError(f"{path} is {m.shape}, {args.masks[0]} is {masks[0].shape}")
    flags = combine_masks(masks)
    header = fits.Header([("IMAGETYP", "mask", "combined mask")])
    for path in args.masks:
        header.add_history(f"gpucal mask combine: {os.path.basename(path)}")
    write_mask(args.output, flags, header=header, overwrite=args.overwrite)
    counts = ", ".join(f"{f.name} {int(np.count_nonzero(flags & f))}" for f in MaskFlag
                       if (flags & f).any())
    print(f"wrote {args.output}: {int(np.count_nonzero(flags))} masked pixels "
          f"({counts or 'none'}) from {len(masks)} masks")
    return 0


def add_commands(sub, device_help):
    """Add ``ccdmask`` and ``mask`` to the ``gpucal`` parser's subcommands."""
    p = sub.add_parser("ccdmask", help="bad pixels and columns from a flat or a ratio of flats",
                       description="Find bad pixels as ccdproc.ccdmask does (IRAF's ccdmask). "
                                   "With two flats of different level, their ratio FLAT2/FLAT "
                                   "is used, which shows defects best.")
    p.add_argument("flat", metavar="FLAT")
    p.add_argument("flat2", metavar="FLAT2", nargs="?")
    p.add_argument("-o", "--output", required=True, metavar="MASK.fits")
    p.add_argument("--findbadcolumns", action="store_true",
                   help="fill column gaps of up to NGOOD lines between bad pixels")
    p.add_argument("--byblocks", action="store_true", help="sigma in fixed blocks")
    for name, default, text in [("ncmed", 7, "columns of the moving median"),
                                ("nlmed", 7, "lines of the moving median"),
                                ("ncsig", 15, "columns of the sigma window"),
                                ("nlsig", 15, "lines of the sigma window"),
                                ("ngood", 5, "longest gap filled (--findbadcolumns)")]:
        p.add_argument(f"--{name}", type=int, default=default, help=f"{text} (default {default})")
    p.add_argument("--lsigma", type=float, default=9.0, help="low threshold (default 9)")
    p.add_argument("--hsigma", type=float, default=9.0, help="high threshold (default 9)")
    p.add_argument("--sigma-estimator", choices=("ccdproc", "iraf"), default="ccdproc",
                   help="ccdproc's sigma (default) or IRAF's, twice as large")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), help=device_help)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_cmd_ccdmask)

    mask = sub.add_parser("mask", help="work with mask files").add_subparsers(
        dest="mask_command", metavar="ACTION", required=True)
    c = mask.add_parser("combine", help="OR mask files together, keeping their flags")
    c.add_argument("masks", nargs="+", metavar="MASK", help="gpucal masks or 0/1 mask images")
    c.add_argument("-o", "--output", required=True, metavar="OUT.fits")
    c.add_argument("--overwrite", action="store_true")
    c.set_defaults(func=_cmd_mask_combine)
