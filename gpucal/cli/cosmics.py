"""``gpucal cosmics``: find and clean cosmic rays in FITS frames from the command line."""

import os
import time


def _number_or_keyword(text):
    """A number, or the name of a header keyword that holds it (e.g. GAIN)."""
    try:
        return float(text)
    except ValueError:
        return text


def _noise_model(args, header=None, path=None):
    """{"gain": e-/ADU, "readnoise": e-} from --gain and --readnoise, checked as L.A.Cosmic needs.

    Without a header: the numbers given on the command line (checked once, before any
    file is read; keywords are skipped). With the header of the file `path`: every value,
    a keyword's from its card. A bad value is a ValueError naming the option, and for a
    keyword the file, the keyword and its value (``sci.fits: --gain: GAIN must be a
    positive number of electrons per ADU; got 0.0``).
    """
    from .._operands import quantity
    from ..cosmics import check_gain, check_readnoise

    values = {}
    for option, check in (("gain", check_gain), ("readnoise", check_readnoise)):
        arg = getattr(args, option)
        keyword = isinstance(arg, str)
        if keyword and header is None:
            continue
        name = f"{path}: --{option}" if keyword else f"--{option}"
        number = quantity(arg, None, header, name)[0]
        values[option] = check(number, f"{name}: {arg}" if keyword else name)
    return values


def _cmd_cosmics(args):
    from ..cosmics import cosmicray_lacosmic
    from ..flags import MaskFlag, count
    from ..frame import Frame
    from ..io import raw_unit
    from ..progress import ProgressBar

    _noise_model(args)  # numbers given: refused before anything is read or written
    os.makedirs(args.output, exist_ok=True)
    targets = [os.path.join(args.output, os.path.basename(path)) for path in args.files]
    for path, target in zip(args.files, targets):
        if os.path.exists(target) and os.path.samefile(path, target):
            raise ValueError(f"{target} is the input {path}; raw frames are never overwritten, "
                             "choose another output directory")
        if os.path.exists(target) and not args.overwrite:
            raise FileExistsError(f"{target} exists; pass --overwrite to replace it")
    if len(set(targets)) < len(targets):
        raise ValueError("two input files have the same name; they would share an output")

    unit, note = (args.unit, None) if args.unit else raw_unit(args.files)
    if note:
        print(note)
    params = dict(sigclip=args.sigclip, sigfrac=args.sigfrac, objlim=args.objlim,
                  satlevel=args.satlevel, niter=args.niter, sepmed=not args.no_sepmed,
                  cleantype=args.cleantype, fsmode=args.fsmode, gain_apply=not args.no_gain_apply)
    bar = ProgressBar(f"cleaning {len(args.files)} frames")
    bar.start(len(args.files))
    started, lines, device = time.monotonic(), [], None
    try:
        for path, target in zip(args.files, targets):
            frame = Frame.read(path, device=args.device, unit=unit)
            device = frame.device
            out = cosmicray_lacosmic(frame, **_noise_model(args, frame.header, path), **params)
            out.write(target, overwrite=args.overwrite)
            n = count(out.mask, MaskFlag.COSMIC_RAY)
            lines.append(f"  {os.path.basename(path)}: {n} cosmic-ray pixels "
                         f"({100 * n / out.data.size:.3f}%)")
            bar.step()
    finally:
        bar.finish()
    print("\n".join(lines))
    print(f"wrote {len(targets)} frames to {args.output} in {time.monotonic() - started:.1f} s "
          f"on the {(device or 'cpu').upper()}")
    return 0


def add_command(sub, device_help):
    """Add ``cosmics`` to the ``gpucal`` parser's subcommands."""
    p = sub.add_parser("cosmics", help="find and clean cosmic rays (L.A.Cosmic)",
                       description="Detect cosmic rays with L.A.Cosmic as astroscrappy does "
                                   "(via ccdproc's cosmicray_lacosmic) and write each cleaned "
                                   "frame, its cosmic rays flagged in the MASK extension, to "
                                   "OUTDIR under its own name.")
    p.add_argument("files", nargs="+", metavar="FILE", help="FITS frames (counts, with sky)")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR")
    p.add_argument("--gain", type=_number_or_keyword, default=1.0,
                   help="electrons per ADU (positive), or a header keyword holding it "
                        "(default 1.0)")
    p.add_argument("--readnoise", type=_number_or_keyword, default=6.5,
                   help="read noise in electrons (0 or more, below 1.8e19: its square must "
                        "fit in float32), or a header keyword (default 6.5)")
    for name, default, text in [("sigclip", 4.5, "Laplacian-to-noise limit"),
                                ("sigfrac", 0.3, "neighbour limit as a fraction of sigclip"),
                                ("objlim", 5.0, "contrast limit against fine structure"),
                                ("satlevel", 65535.0, "saturation in electrons")]:
        p.add_argument(f"--{name}", type=float, default=default,
                       help=f"{text} (default {default:g})")
    p.add_argument("--niter", type=int, default=4, help="iterations (default 4)")
    p.add_argument("--no-sepmed", action="store_true", help="full medians, not separable ones")
    p.add_argument("--cleantype", choices=("meanmask", "medmask", "idw", "median"),
                   default="meanmask", help="how cosmic-ray pixels are replaced")
    p.add_argument("--fsmode", choices=("median", "convolve"), default="median",
                   help="fine-structure image from medians or a PSF convolution")
    p.add_argument("--no-gain-apply", action="store_true",
                   help="keep the data in their own unit (default: multiply by the gain)")
    p.add_argument("--unit", help="unit of the data, overriding BUNIT")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), help=device_help)
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=_cmd_cosmics)
