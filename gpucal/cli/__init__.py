"""The ``gpucal`` command line: one module per command, each adding its subparser.

``main`` is the console entry point (``gpucal``, ``python -m gpucal``); it turns
gpucal's errors into one line on stderr and exit status 1.
"""

import argparse
import errno
import os
import sys

from .._version import __version__
from ..errors import FrameError, GPUUnavailableError, OutputBusyError
from . import combine, cosmics, info, masks, reduce, report, results

_DEVICE_HELP = "where to compute (default: $GPUCAL_DEVICE, else auto)"


def build_parser():
    """The ``gpucal`` argument parser, every command's subparser added."""
    parser = argparse.ArgumentParser(
        prog="gpucal", description="GPU-accelerated CCD reduction (NumPy/SciPy fallback).")
    parser.add_argument("--version", action="version", version=f"gpucal {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    info.add_command(sub)
    combine.add_command(sub, _DEVICE_HELP)
    masks.add_commands(sub, _DEVICE_HELP)
    cosmics.add_command(sub, _DEVICE_HELP)
    results.add_command(sub)
    reduce.add_commands(sub, _DEVICE_HELP)
    report.add_command(sub)
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
