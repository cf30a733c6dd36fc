"""``gpucal list``: the products of ``gpucal reduce`` in OUT_DIR, as a table."""

import json

import sqlite3

from .pipeline.results import FIELDS, ResultsDB, damaged, filter_keys

KINDS = ("bias", "dark", "flat", "science", "ccdmask", "hot_pixels", "raw")

_DEFAULT_COLUMNS = ("path", "kind", "night", "status")


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _sort_key(value):
    # Missing last; numbers before strings, so that they are never compared.
    return (value is None, not _is_number(value), value if _is_number(value) else _text(value))


def table(header, rows):
    """Lines of a plain-text table; columns of numbers only are right-aligned.

    Examples
    --------
    >>> print("\\n".join(table(["path", "ROBUSTSTD"], [["a.fits", 3.5], ["bb.fits", 12.0]])))
    path     ROBUSTSTD
    a.fits         3.5
    bb.fits         12
    """
    cells = [header] + [[_text(v) for v in row] for row in rows]
    widths = [max(len(row[j]) for row in cells) for j in range(len(header))]
    right = [bool(rows) and all(_is_number(row[j]) or row[j] is None for row in rows)
             for j in range(len(header))]
    return ["  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right))
            .rstrip() for row in cells]


def list_products(out_dir, kind=None, where=None, night=None, keys=(), sort=None):
    """Lines of ``gpucal list``: the products of OUT_DIR's database as a table.

    `keys` add columns (a key ``"all"`` lists the keys instead); `sort` orders by a key.
    """
    with ResultsDB(out_dir, create=False) as db:
        try:
            return _list(db, kind, where, night, keys, sort)
        except sqlite3.DatabaseError as exc:  # damage past the pages opening it read
            raise damaged(db.path, exc) from None


def _list(db, kind, where, night, keys, sort):
    kinds = sorted(set(db.kinds()) | set(KINDS))
    if kind is not None and kind not in kinds:
        raise ValueError(f"--kind {kind!r} is not a kind of product; known: "
                         f"{', '.join(kinds)}")
    known = db.keys()
    for option, names in (("-k", [k for k in keys if k != "all"]),
                          ("--filter", filter_keys(where) if where else ())):
        unknown = list(dict.fromkeys(k for k in names if k.lower() not in known))
        if unknown:
            raise ValueError(f"{option}: no product has the key(s) "
                             f"{', '.join(map(repr, unknown))}; known keys: "
                             f"{', '.join(sorted(known))}")
    records = db.query(kind, where, night=night)
    if "all" in keys:
        lines = [f"{'columns:':<10} {' '.join(FIELDS)}"]
        for group in ("stats", "flags", "signature"):
            names = sorted({name for r in records for name in getattr(r, group)})
            lines.append(f"{group + ':':<10} {' '.join(names) or '-'}")
        return lines
    if sort:
        records.sort(key=lambda r: _sort_key(r.get(sort)))
    columns = list(_DEFAULT_COLUMNS) + [k for k in keys if k.lower() not in _DEFAULT_COLUMNS]
    if not records:
        return ["no products match"]
    return table(columns, [[r.get(k) for k in columns] for r in records])


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
