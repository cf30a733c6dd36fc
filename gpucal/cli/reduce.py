"""``gpucal reduce`` (whole nights) and ``gpucal demo`` (a simulated night, reduced)."""

import os
import sys
import time

_SCIENCE_KEYS = ("FILTER", "QUANT500", "ROBUSTSTD", "NCOSMIC", "NMASKED", "IERR_FLAT")


def _reduce(raw_dir, out_dir, **options):
    """Run gpucal.reduce with progress bars; print the summary; the exit status."""
    from ..pipeline.execute import reduce

    summary = reduce(raw_dir, out_dir, progress=True, **options)
    print("\n".join(summary.text()))
    return 1 if summary.failed else 0


def _dask(args):
    from ..pipeline.dask_executor import DaskExecutor
    from ..device import resolve_device

    try:
        return DaskExecutor(scheduler=args.scheduler, workers=args.workers, gpus=args.gpus,
                            device=resolve_device(args.device))
    except ImportError as exc:
        raise ValueError(str(exc)) from None


def _cmd_reduce(args):
    if args.dry_run:
        from ..pipeline.execute import plan_reduction

        plan, _ = plan_reduction(args.raw_dir, args.output, config=args.config,
                                 nights=args.nights)
        print(plan.describe())
        return 0
    if args.executor != "dask" and (args.scheduler or args.gpus):
        raise ValueError("--scheduler and --gpus go with --executor dask")
    if args.executor == "serial" and args.workers:
        raise ValueError("--workers goes with --executor threads or dask")
    if args.scheduler and (args.workers or args.gpus):
        raise ValueError("--scheduler connects to a running cluster: --workers and --gpus "
                         "start a local one")
    options = dict(config=args.config, device=args.device, nights=args.nights, force=args.force,
                   rebuild_db=args.rebuild_db, report=not args.no_report)
    if args.executor != "dask":
        return _reduce(args.raw_dir, args.output, executor=args.executor,
                       workers=args.workers, **options)
    with _dask(args) as executor:
        return _reduce(args.raw_dir, args.output, executor=executor, **options)


def _cmd_demo(args):
    from .results import list_products
    from ..simulate import simulate_night

    raw, out = os.path.join(args.directory, "raw"), os.path.join(args.directory, "out")
    if os.path.exists(raw):
        print(f"using the simulated night already in {raw}")
    else:
        started = time.monotonic()
        sim = simulate_night(raw, seed=args.seed)
        print(f"simulated a night in {raw}: {len(sim.paths)} raw frames (bias; darks of 60 and "
              f"300 s; flats and science in V and R, with stars, cosmic rays, bad columns and "
              f"hot pixels) in {time.monotonic() - started:.1f} s")
    sys.stdout.flush()
    status = _reduce(raw, out, device=args.device, force=args.force)
    print("\nscience frames (gpucal list " + out + " --kind science "
          + " ".join(f"-k {k}" for k in _SCIENCE_KEYS) + "):")
    print("\n".join(list_products(out, kind="science", keys=_SCIENCE_KEYS)))
    return status


def add_commands(sub, device_help):
    """Add ``reduce`` and ``demo`` to the ``gpucal`` parser's subcommands."""
    p = sub.add_parser("reduce", help="reduce whole nights: masters, masks, science frames",
                       description="Scan RAW_DIR's FITS headers, build master bias, darks and "
                                   "flats per night and instrument signature, bad- and "
                                   "hot-pixel masks, and calibrate every science frame with "
                                   "the closest calibrations (cosmic rays cleaned), into "
                                   "OUT_DIR with a results database (gpucal list) and a QA "
                                   "report, OUT_DIR/report.html. Re-runs redo only what is "
                                   "missing or out of date.")
    p.add_argument("raw_dir", metavar="RAW_DIR", help="raw FITS frames, searched recursively "
                                                      "(one subdirectory per night, or dated)")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR")
    p.add_argument("--config", metavar="TOML", help="instrument configuration (keywords, "
                                                    "signatures, step parameters)")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), help=device_help)
    p.add_argument("--nights", metavar="GLOB", help="only nights matching, e.g. '2026-11-*'")
    p.add_argument("--force", action="store_true", help="redo products that are up to date")
    p.add_argument("--executor", choices=("auto", "serial", "threads", "dask"), default="auto",
                   help="threads: N tasks computing at once in this process; serial: one computing "
                        "at a time (reading and writing around it); "
                        "dask: on a Dask cluster; auto (default): threads on the CPU or "
                        "with --workers, else serial")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="with --executor dask: a running scheduler, e.g. tcp://host:8786")
    p.add_argument("--workers", type=int, metavar="N",
                   help="with --executor threads: N tasks at once; with dask: a local "
                        "cluster of N processes (default: the CPU count; 1 on the GPU)")
    p.add_argument("--gpus", action="store_true",
                   help="with --executor dask: one worker per GPU (dask-cuda)")
    p.add_argument("--rebuild-db", action="store_true",
                   help="if OUT_DIR's database is damaged, keep it aside and rebuild it from "
                        "the records the products carry (only what changed is remade)")
    p.add_argument("--no-report", action="store_true",
                   help="do not write OUT_DIR/report.html at the end (gpucal report writes it "
                        "later)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (groups, masters, calibrations chosen) and stop")
    p.set_defaults(func=_cmd_reduce)

    p = sub.add_parser("demo", help="simulate a small night and reduce it (no data needed)",
                       description="Write a simulated night of raw frames to DIR/raw, reduce "
                                   "it into DIR/out with gpucal reduce, and show the science "
                                   "frames' table.")
    p.add_argument("directory", nargs="?", default="gpucal-demo", metavar="DIR",
                   help="where to put the night (default: ./gpucal-demo)")
    p.add_argument("--seed", type=int, default=0, help="of the simulation (default 0)")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), help=device_help)
    p.add_argument("--force", action="store_true", help="redo products that are up to date")
    p.set_defaults(func=_cmd_demo)
