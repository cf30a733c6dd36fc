"""The results database of ``gpucal reduce``: one SQLite row per product in OUT_DIR.

Only the driver writes (workers return :class:`Record` objects), one transaction per
product, so a killed run loses nothing and a re-run skips what :meth:`ResultsDB.done`
says is finished. ``gpucal list`` reads it while a run writes.
"""

import hashlib
import json
import operator
import os
import re
import sqlite3
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

from .._version import __version__
from ..errors import DamagedDatabaseError
from .config import CALIBRATIONS

DB_NAME = "gpucal.sqlite"
SCHEMA_VERSION = 2  # 2: stamps (size, mtime, checksum of each raw input)
STATUSES = ("ok", "skipped", "failed")
_JSON = ("signature", "inputs", "calibrations", "parameters", "stats", "flags", "stamps")
_SCHEMA = """CREATE TABLE products (
    path TEXT PRIMARY KEY, kind TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'skipped', 'failed')), reason TEXT,
    night TEXT, signature TEXT NOT NULL, mjd REAL, exptime REAL, inputs TEXT NOT NULL,
    calibrations TEXT NOT NULL, parameters TEXT NOT NULL, stats TEXT NOT NULL,
    flags TEXT NOT NULL, gpucal_version TEXT NOT NULL, checksum TEXT, created TEXT NOT NULL,
    stamps TEXT NOT NULL DEFAULT '{}')"""


def damaged(path, exc):
    """The error for a results database SQLite cannot read, saying how to rebuild it."""
    return DamagedDatabaseError(
        f"{path} is not a readable gpucal results database ({exc}). The products are "
        f"intact and each carries its own record: `gpucal reduce RAW_DIR -o "
        f"{Path(path).parent} --rebuild-db` keeps this file as {Path(path).name}.damaged-<time> "
        "and rebuilds the database from the products, remaking only what changed")


def now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _plain(value):
    """JSON fallback: NumPy scalars and paths as themselves; anything else a header may hold
    (a complex number, an undefined value) as its string form, so no value stops a night."""
    if hasattr(value, "item") and not isinstance(value, complex):
        value = value.item()
        if not isinstance(value, complex):
            return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def file_times(path):
    """``[size, mtime_ns]`` of a file: when they are unchanged, so is the file (taken as)."""
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def file_checksum(path):
    """SHA-256 (hex) of a file, read in 1 MiB blocks.

    Examples
    --------
    >>> _ = Path("empty.fits").write_bytes(b"")
    >>> file_checksum("empty.fits")[:16]
    'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Record:
    """One product of a run: what it is, what went into it, how it came out.

    ``path`` is relative to OUT_DIR. ``calibrations`` maps a kind to
    ``{"path", "delta_mjd", "ierr"}``; ``stats`` holds QUANT500, ROBUSTSTD, NPOINTS...;
    ``flags`` holds IERR_BIAS, DELTA_MJD_BIAS, NCOSMIC...

    Examples
    --------
    >>> r = Record("science/a.fits", "science", stats={"ROBUSTSTD": 4.2}, inputs=["raw/a.fits"])
    >>> r.get("robuststd"), r.get("KIND"), r.inputs
    (4.2, 'science', ('raw/a.fits',))
    >>> Record.from_row(r.as_row()) == r
    True
    """

    path: str
    kind: str
    status: str = "ok"
    reason: str | None = None
    night: str | None = None
    signature: dict = field(default_factory=dict)
    mjd: float | None = None
    exptime: float | None = None
    inputs: tuple = ()
    calibrations: dict = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    flags: dict = field(default_factory=dict)
    gpucal_version: str = __version__
    checksum: str | None = None
    created: str = field(default_factory=now)
    stamps: dict = field(default_factory=dict)  # raw input -> [size, mtime_ns, checksum]

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")
        # Normalise so that a record read back compares equal to the one written.
        set_ = object.__setattr__
        set_(self, "path", os.fspath(self.path))
        set_(self, "inputs", tuple(os.fspath(p) for p in self.inputs))
        for name in ("mjd", "exptime"):
            if getattr(self, name) is not None:
                set_(self, name, float(getattr(self, name)))

    @classmethod
    def from_row(cls, row):
        """The record of a ``products`` row (a sequence in column order)."""
        values = dict(zip(FIELDS, row))
        for name in _JSON:
            values[name] = json.loads(values[name])
        return cls(**values)

    def as_row(self):
        """The ``products`` row of this record: a tuple in column order, JSON encoded."""
        return tuple(json.dumps(getattr(self, name), sort_keys=True, default=_plain)
                     if name in _JSON else getattr(self, name) for name in FIELDS)

    def to_json(self):
        """The record as one JSON text (what a product carries in its header)."""
        return json.dumps(self.as_row(), default=_plain)

    @classmethod
    def from_json(cls, text):
        """The record of :meth:`to_json`'s text."""
        return cls.from_row(json.loads(text))

    def work(self):
        """What went into the product, as canonical JSON: its inputs and parameters.

        Two records with equal ``work()`` describe the same computation (a re-run may
        reuse the product).
        """
        return json.dumps([list(self.inputs), self.parameters], sort_keys=True, default=_plain)

    def get(self, key, default=None):
        """The value of ``key``: a column, else a key of stats, flags or signature.

        Case-insensitive; columns win over stats, stats over flags, flags over signature.
        """
        if key.lower() in FIELDS:
            value = getattr(self, key.lower())
            return default if value is None else value
        for group in (self.stats, self.flags, self.signature):
            for name, value in group.items():
                if name.upper() == key.upper():
                    return value
        return default


FIELDS = tuple(f.name for f in fields(Record))


class ResultsDB:
    """The results database ``gpucal.sqlite`` of an output directory.

    Parameters
    ----------
    location : str or path-like
        OUT_DIR (the database is ``OUT_DIR/gpucal.sqlite``), or the database file itself
        (any name with a suffix). Product paths are relative to its directory.
    create : bool
        Create the directory and database if missing; else raise FileNotFoundError.
    timeout : float
        Seconds to wait for a lock held by another connection (a run writing).

    Raises
    ------
    ValueError
        The file is not a SQLite database, or was written by a newer gpucal.

    Examples
    --------
    >>> with ResultsDB("out") as db:
    ...     db.record(Record("masters/bias.fits", "bias", night="2026-11-20",
    ...                      stats={"ROBUSTSTD": 3.1}))
    ...     [r.path for r in db.query(where="ROBUSTSTD > 3 and night == '2026-11-20'")]
    ['masters/bias.fits']
    """

    def __init__(self, location, create=True, timeout=30.0):
        location = Path(location)
        # The database file itself: an existing file, or a new name with a suffix.
        is_file = location.is_file() or (bool(location.suffix) and not location.is_dir())
        self.path = location if is_file else location / DB_NAME
        self.out_dir = self.path.parent
        if not self.path.exists():
            if not create:
                raise FileNotFoundError(f"no gpucal results database in {self.out_dir} "
                                        "(run gpucal reduce first)")
            self.out_dir.mkdir(parents=True, exist_ok=True)
        # Autocommit; transactions are explicit. The default rollback journal (not WAL)
        # works on network filesystems, and transactions are tiny so readers rarely wait.
        self._con = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        try:
            self._migrate()
            self._con.execute("PRAGMA synchronous = FULL")  # a committed product survives
            self._con.execute("SELECT path FROM products LIMIT 1").fetchall()  # its table reads
        except sqlite3.DatabaseError as exc:
            self._con.close()
            if getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED"):
                raise  # another connection's lock: not the file's fault
            raise damaged(self.path, exc) from None
        except BaseException:
            self._con.close()
            raise

    def _migrate(self):
        version = self._con.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ValueError(f"{self.path} has schema version {version}; this gpucal "
                             f"{__version__} reads up to {SCHEMA_VERSION}: upgrade gpucal")
        if version == 1:  # rows without stamps: their products are remade once, checked
            with self._con:
                self._con.execute("BEGIN IMMEDIATE")
                if self._con.execute("PRAGMA user_version").fetchone()[0] == 1:
                    self._con.execute("ALTER TABLE products ADD COLUMN stamps TEXT NOT NULL "
                                      "DEFAULT '{}'")
                    self._con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if version == 0:
            with self._con:
                self._con.execute("BEGIN IMMEDIATE")
                # Re-read under the lock: another process may have just created it.
                if self._con.execute("PRAGMA user_version").fetchone()[0] == 0:
                    self._con.execute(_SCHEMA)
                    self._con.execute("CREATE INDEX products_kind_night ON products(kind, night)")
                    self._con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Close the connection (committed records are already on disk)."""
        self._con.close()

    def _rel(self, path):
        """``path`` relative to OUT_DIR, with '/' separators."""
        path = Path(path)
        if ".." in path.parts:
            raise ValueError(f"{path} leaves {self.out_dir}")
        if path.is_absolute():
            try:
                path = path.resolve().relative_to(self.out_dir.resolve())
            except ValueError:
                raise ValueError(f"{path} is not inside {self.out_dir}") from None
        return path.as_posix()

    def record(self, rec):
        """Insert ``rec``, replacing any row of the same path, in one transaction."""
        row = (self._rel(rec.path),) + rec.as_row()[1:]
        with self._con:
            self._con.execute("BEGIN IMMEDIATE")
            self._con.execute(f"INSERT OR REPLACE INTO products ({', '.join(FIELDS)}) "
                              f"VALUES ({', '.join('?' * len(FIELDS))})", row)

    def get(self, path):
        """The record of ``path`` (relative to OUT_DIR, or absolute inside it), or None."""
        row = self._con.execute(f"SELECT {', '.join(FIELDS)} FROM products WHERE path = ?",
                                (self._rel(path),)).fetchone()
        return None if row is None else Record.from_row(row)

    def done(self, path, checksum=None):
        """Whether ``path`` is finished: recorded 'ok', and its file is still what was recorded.

        The file must exist and, when a checksum was recorded, match it. Pass ``checksum``
        when you already know the file's SHA-256, to spare reading it again.

        Examples
        --------
        >>> with ResultsDB("done") as db:
        ...     _ = Path("done/bias.fits").write_bytes(b"bias")
        ...     db.record(Record("bias.fits", "bias", checksum=file_checksum("done/bias.fits")))
        ...     before = db.done("bias.fits")
        ...     _ = Path("done/bias.fits").write_bytes(b"changed")
        ...     before, db.done("bias.fits")
        (True, False)
        """
        rec = self.get(path)
        if rec is None or rec.status != "ok":
            return False
        file = self.out_dir / rec.path
        if not file.is_file():
            return False
        return rec.checksum is None or rec.checksum == (checksum or file_checksum(file))

    def records(self, kind=None, night=None, status=None):
        """The records, by path; ``night`` may hold shell wildcards (``'2026-11-*'``)."""
        tests = [("kind = ?", kind), ("night GLOB ?", night), ("status = ?", status)]
        tests = [(sql, value) for sql, value in tests if value is not None]
        where = " AND ".join(sql for sql, _ in tests) or "1"
        rows = self._con.execute(f"SELECT {', '.join(FIELDS)} FROM products WHERE {where} "
                                 "ORDER BY path",
                                 [value for _, value in tests])
        return [Record.from_row(row) for row in rows]

    def query(self, kind=None, where=None, night=None, status=None):
        """The records of :meth:`records` for which the filter ``where`` holds.

        ``where`` compares keys (see :meth:`Record.get`), numbers and quoted strings with
        ``== != < <= > >=``, combined with ``and``, ``or``, ``not`` and parentheses, e.g.
        ``"IERR_BIAS != 0 and (night == '2026-11-20' or ROBUSTSTD > 5)"``. A comparison
        with a missing key, or of a number with a string, is false. A malformed filter
        raises ValueError naming the position.
        """
        test = _Parser(where).parse() if where else None
        return [r for r in self.records(kind, night, status) if test is None or test(r)]

    def keys(self):
        """Every key :meth:`Record.get` can find in this database (lower case): the columns,
        and the statistics, flags and signature keys some product has."""
        names = set(FIELDS)
        for rec in self.records():
            for group in (rec.stats, rec.flags, rec.signature):
                names.update(k.lower() for k in group)
        return names

    def kinds(self):
        """The kinds of product recorded (bias, science, ccdmask, raw...)."""
        return sorted(k for (k,) in self._con.execute("SELECT DISTINCT kind FROM products"))


def filter_keys(where):
    """The keys a filter of :meth:`ResultsDB.query` reads (ValueError if it is malformed)."""
    parser = _Parser(where)
    parser.parse()
    return parser.names


#: What `gpucal list --kind` accepts even where no product of it is recorded yet.
PRODUCT_KINDS = ("bias", "dark", "flat", "science", "ccdmask", "hot_pixels", "raw")

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


_REASONS = {
    "NO_BIAS": "no bias", "NO_DARK": "no dark", "NO_FLAT": "not flat-fielded (no flat)",
    "FLAT_FALLBACK_REFUSED": "a flat of another signature (filter) exists but is not "
                             "applied (allow_fallback.flat)",
    "BIAS_FALLBACK_REFUSED": "another signature's bias not applied",
    "DARK_FALLBACK_REFUSED": "another signature's dark not applied",
    "NO_GAIN": "no e-/ADU (data left in ADU)", "NO_RDNOISE": "no read noise (no UNCERT)",
    "NO_COSMICS": "cosmic rays not cleaned (no read noise)",
    "DARK_UNSCALED": "dark not scaled (exposure unknown)", "MASK_MISSING": "a mask is missing",
    "NO_DATE": "no date", "NO_EXPTIME": "no exposure time"}


def attention(flags):
    """Why a science product needs a look (its missing or fallback calibrations, skipped
    steps), as text; '' when nothing."""
    reasons = [f"{kind} of another signature (IERR_{kind.upper()}=1)" for kind in CALIBRATIONS
               if flags.get(f"IERR_{kind.upper()}") == 1]
    reasons += [text for key, text in _REASONS.items() if flags.get(key) is True]
    reasons += [f"its {key[:-8].lower()} master was not made" for key, v in flags.items()
                if key.endswith("_MISSING") and key != "MASK_MISSING" and v is True]
    return "; ".join(reasons)


def listing(db, kind=None, where=None, night=None, keys=(), sort=None):
    """Lines of ``gpucal list`` for an open :class:`ResultsDB`: its products as a table.

    `kind`, `where` (see :meth:`ResultsDB.query`) and `night` (shell wildcards) select;
    `keys` add columns (a key ``"all"`` lists the keys instead); `sort` orders by a key.

    Raises
    ------
    ValueError
        An unknown kind, or a key no product has (the message names the known ones).

    Examples
    --------
    >>> with ResultsDB("listed") as db:
    ...     db.record(Record("masters/bias.fits", "bias", night="2026-11-20",
    ...                      stats={"ROBUSTSTD": 3.1}))
    ...     print("\\n".join(listing(db, keys=["ROBUSTSTD"])))
    path               kind  night       status  ROBUSTSTD
    masters/bias.fits  bias  2026-11-20  ok            3.1
    """
    kinds = sorted(set(db.kinds()) | set(PRODUCT_KINDS))
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


_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
        ">": operator.gt, ">=": operator.ge}
_TOKEN = re.compile(r"""\s*(?:(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
                    |(?P<string>'[^']*'|"[^"]*")|(?P<op>==|!=|<=|>=|<|>)|(?P<paren>[()])
                    |(?P<name>[A-Za-z_][\w-]*)|(?P<bad>\S))""", re.X)  # names: MJD-OBS too
_MISSING = object()


def _compare(op, a, b):
    # A missing key (or None), or a number against a string, makes a comparison false.
    return ((all(isinstance(v, (int, float)) for v in (a, b))
             or all(isinstance(v, str) for v in (a, b))) and op(a, b))


class _Parser:
    """Recursive descent over the filter grammar, building a predicate of a Record.

    or := and ("or" and)* ; and := not ("and" not)* ;
    not := "not" not | "(" or ")" | operand OP operand ; operand := key | number | string
    """

    def __init__(self, text):
        self.text, self.tokens, self.i = text, [], 0
        self.names = []  # the keys the filter reads, for the caller to check
        for m in _TOKEN.finditer(text):
            kind = m.lastgroup
            value, pos = m.group(kind), m.start(kind)
            if kind == "bad":
                self.error("unterminated string" if value in "'\"" else
                           f"unexpected character {value!r}", pos)
            if kind == "paren" or (kind == "name" and value.lower() in ("and", "or", "not")):
                kind = value = value.lower()
            self.tokens.append((kind, value, pos))
        self.tokens.append(("end", None, len(text)))

    def error(self, message, pos):
        raise ValueError(f"bad filter: {message} at position {pos}\n  {self.text}\n"
                         f"  {' ' * pos}^")

    def take(self, kinds, what):
        kind, value, pos = self.tokens[self.i]
        if kind not in kinds:
            self.error(f"expected {what}, found {'the end' if value is None else repr(value)}",
                       pos)
        self.i += 1
        return kind, value

    def parse(self):
        test = self.or_()
        self.take(("end",), "'and', 'or' or the end")
        return test

    def chain(self, word, term, combine):
        terms = [term()]
        while self.tokens[self.i][0] == word:
            self.i += 1
            terms.append(term())
        return terms[0] if len(terms) == 1 else lambda r: combine(t(r) for t in terms)

    def or_(self):
        return self.chain("or", self.and_, any)

    def and_(self):
        return self.chain("and", self.not_, all)

    def not_(self):
        kind = self.tokens[self.i][0]
        if kind == "not":
            self.i += 1
            inner = self.not_()
            return lambda r: not inner(r)
        if kind == "(":
            self.i += 1
            inner = self.or_()
            self.take((")",), "')'")
            return inner
        left = self.operand()
        op = _OPS[self.take(("op",), "a comparison (== != < <= > >=)")[1]]
        right = self.operand()
        return lambda r: _compare(op, left(r), right(r))

    def operand(self):
        kind, value = self.take(("name", "number", "string"), "a key, number or string")
        if kind == "name":
            self.names.append(value)
            return lambda r: r.get(value, _MISSING)
        constant = float(value) if kind == "number" else value[1:-1]
        return lambda r: constant
