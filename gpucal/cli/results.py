"""``gpucal list``: the products of ``gpucal reduce`` in OUT_DIR, as a table."""

import sqlite3

from ..pipeline.results import ResultsDB, damaged, listing


def list_products(out_dir, kind=None, where=None, night=None, keys=(), sort=None):
    """Lines of ``gpucal list``: the products of OUT_DIR's database as a table.

    `keys` add columns (a key ``"all"`` lists the keys instead); `sort` orders by a key.
    """
    with ResultsDB(out_dir, create=False) as db:
        try:
            return listing(db, kind, where, night, keys, sort)
        except sqlite3.DatabaseError as exc:  # damage past the pages opening it read
            raise damaged(db.path, exc) from None


def _cmd_list(args):
    print("\n".join(list_products(args.out_dir, args.kind, args.filter, args.night,
                                  args.keys or (), args.sort)))
    return 0


def add_command(sub):
    """Add ``list`` to the ``gpucal`` parser's subcommands."""
    p = sub.add_parser("list", help="list the products recorded by gpucal reduce",
                       description="List the products in OUT_DIR's results database "
                                   "(gpucal.sqlite), one line each, with chosen keys.")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument("--kind", help="only this kind (bias, dark, flat, science, ...)")
    p.add_argument("--night", help="only this night; shell wildcards allowed ('2026-11-*')")
    p.add_argument("--filter", metavar="EXPR",
                   help="e.g. \"IERR_BIAS != 0 or ROBUSTSTD > 5\": keys compared with "
                        "== != < <= > >= to numbers and 'strings', and/or/not, parentheses")
    p.add_argument("-k", "--key", action="append", dest="keys", metavar="KEY",
                   help="add a column: a column, statistic, flag or signature key "
                        "(repeatable; '-k all' lists the keys)")
    p.add_argument("--sort", metavar="KEY", help="sort by this key (default: path)")
    p.set_defaults(func=_cmd_list)
