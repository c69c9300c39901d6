"""The index's SQLite file: its schema, how it is opened and vouched for, and the per-file bookkeeping
(aggregates, stat, cut records) that the refresh and the queries share."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from kiki_bot.index.rows import COLUMNS, LINE_BITS, LINE_MASK, NO_GH, NO_ORIGIN, NO_PATH, NO_URL, IndexedFile

SCHEMA_VERSION = 8  # 4: URL paths keyed percent-decoded (DESIGN.md section 3); 5: strict provenance types;
# 6: duplicate keys refused as rows enter (an index built before is rebuilt, so checked)
# and SPDX-checked licences (rows of older schemas may hold records that are now refused)
# 7: each row's licence notices (`notice`), which the eligibility rule checks against its licence
# 8: Creative Commons NonCommercial and NoDerivatives notices among them (rows built before miss them)
INDEX_NAME = "index.sqlite"
ROW_SQL = (
    "(id INTEGER PRIMARY KEY, off INTEGER NOT NULL, len INTEGER NOT NULL, idx INTEGER NOT NULL,"
    " ch BLOB NOT NULL, sha BLOB, day INTEGER NOT NULL, lic TEXT NOT NULL, tb INTEGER, dom TEXT,"
    " flags INTEGER NOT NULL, gkey TEXT, ukey TEXT, query TEXT, hf TEXT, notice TEXT)"
)
INSERT = f"INSERT INTO records VALUES ({','.join('?' * len(COLUMNS))})"
SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (
    fid INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, name TEXT NOT NULL,
    bad INTEGER NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL,
    st_dev INTEGER, st_ino INTEGER, st_size INTEGER, st_mtime INTEGER, st_ctime INTEGER, verified INTEGER,
    n INTEGER NOT NULL DEFAULT 0, tb INTEGER NOT NULL DEFAULT 0, tok INTEGER NOT NULL DEFAULT 0,
    min_day INTEGER, max_day INTEGER, no_origin INTEGER NOT NULL DEFAULT 0, no_gh INTEGER NOT NULL DEFAULT 0,
    no_path INTEGER NOT NULL DEFAULT 0, no_url INTEGER NOT NULL DEFAULT 0, bad_text INTEGER NOT NULL DEFAULT 0,
    drops BLOB, UNIQUE (source, name));
CREATE TABLE file_licenses (fid INTEGER NOT NULL, lic TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (fid, lic));
CREATE TABLE file_domains (fid INTEGER NOT NULL, dom TEXT NOT NULL, n INTEGER NOT NULL, bytes INTEGER NOT NULL,
    PRIMARY KEY (fid, dom));
CREATE TABLE file_days (fid INTEGER NOT NULL, day INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (fid, day));
CREATE TABLE file_tokens (fid INTEGER NOT NULL, tokenizer TEXT NOT NULL, tokens INTEGER NOT NULL,
    PRIMARY KEY (fid, tokenizer));
CREATE TABLE pending (fid INTEGER PRIMARY KEY, old_sha256 TEXT NOT NULL, new_sha256 TEXT NOT NULL,
    new_bytes INTEGER NOT NULL, ids BLOB NOT NULL);
CREATE TABLE records {ROW_SQL};
"""
SECONDARY = {
    "records_idx": "records (idx)",
    "records_ch": "records (substr(ch, 1, 8))",  # 8 bytes of a SHA-256 pick out a record; half the size
    "records_sha": "records (substr(sha, 1, 8)) WHERE sha IS NOT NULL",
    "records_gkey": "records (gkey) WHERE gkey IS NOT NULL",
    "records_ukey": "records (ukey, query) WHERE ukey IS NOT NULL",
    "records_hf": "records (hf) WHERE hf IS NOT NULL",
    "records_notice": "records (id) WHERE notice IS NOT NULL",  # the few rows the rule asks about their notices
}



class Rebuild(Exception):
    """The index file cannot be used as it is: delete it and start again."""



@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")



def index_path(root: Path) -> Path:
    return root / ".kiki" / INDEX_NAME


def identity(path: Path) -> str:
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}"


def delete(path: Path) -> None:
    for p in (
        path,
        path.with_name(path.name + "-journal"),
        path.with_name(path.name + "-wal"),
        path.with_name(path.name + "-shm"),
    ):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def connect(path: Path) -> sqlite3.Connection:
    """Open the index, creating it when absent; raises `Rebuild` when it is not one this machine made."""
    fresh = not path.exists()
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA cache_size=-16384")  # also bounds the sorter building an index: flat memory
        conn.execute("PRAGMA temp_store=FILE")
        if fresh:
            with transaction(conn):
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [("schema", str(SCHEMA_VERSION)), ("file", identity(path))],
                )
        else:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("schema") != str(SCHEMA_VERSION) or meta.get("file") != identity(path):
                raise Rebuild
    except BaseException:
        conn.close()
        raise
    return conn


FILE_COLS = (
    "fid, source, name, bad, sha256, bytes, st_dev, st_ino, st_size, st_mtime, st_ctime, verified, n, tb, tok, "
    "min_day, max_day, no_origin, no_gh, no_path, no_url, bad_text, drops"
)


def unpack_drops(blob: bytes | None) -> list[tuple[int, int, int]]:
    if not blob:
        return []
    a = array("q")
    a.frombytes(blob)
    return [(a[i], a[i + 1], a[i + 2]) for i in range(0, len(a), 3)]


def pack_drops(drops: Iterable[tuple[int, int, int]]) -> bytes | None:
    a = array("q")
    for d in sorted(drops):
        a.extend(d)
    return a.tobytes() or None


def view(source: str, path: Path, row: sqlite3.Row) -> IndexedFile:
    f = IndexedFile(
        source,
        path,
        row["fid"],
        (row["st_ino"], row["st_size"], row["st_mtime"]),
        row["sha256"],
        row["n"],
        row["tb"],
        row["tok"],
        row["min_day"],
        row["max_day"],
        row["no_origin"],
        row["no_gh"],
        row["no_path"],
        row["no_url"],
        row["bad_text"],
    )
    for line, _off, length in unpack_drops(row["drops"]):
        f.drop_lines.append(line)
        f.drop_cum.append(f.drop_cum[-1] + length)
    return f



def forget(conn: sqlite3.Connection, fid: int) -> None:
    lo = fid << LINE_BITS
    conn.execute("DELETE FROM records WHERE id BETWEEN ? AND ?", (lo, lo | LINE_MASK))
    for table in ("file_licenses", "file_domains", "file_days", "file_tokens", "pending", "files"):
        conn.execute(f"DELETE FROM {table} WHERE fid = ?", (fid,))


_TOTALS = ("n", "tb", "tok", "no_origin", "no_gh", "no_path", "no_url", "bad_text")


def aggregates(conn: sqlite3.Connection, table: str, where: str = "", params: tuple = ()) -> dict:
    """A file's figures from its rows, as additive counts: totals, records per licence, records and
    bytes per domain, records per access day (whose smallest and largest key are the first and last)."""
    (tot,) = conn.execute(
        "SELECT count(*), sum(tb), sum((tb + 3) / 4), sum(flags & 8 != 0), sum(flags & 1 != 0),"
        f" sum(flags & 2 != 0), sum(flags & 4 != 0), sum(tb IS NULL) FROM {table} {where}",
        params,
    ).fetchall()
    dom_where = f"{where} AND dom IS NOT NULL" if where else "WHERE dom IS NOT NULL"
    return {
        "tot": dict(zip(_TOTALS, (v or 0 for v in tot), strict=True)),
        "lic": dict(
            conn.execute(f"SELECT lic, count(*) FROM {table} {where} GROUP BY lic", params).fetchall()
        ),
        "dom": {
            d: (n, b or 0)
            for d, n, b in conn.execute(
                f"SELECT dom, count(*), sum(tb) FROM {table} {dom_where} GROUP BY dom", params
            )
        },
        "day": dict(
            conn.execute(f"SELECT day, count(*) FROM {table} {where} GROUP BY day", params).fetchall()
        ),
    }


def row_aggregates(rows: Iterable[tuple]) -> dict:
    """`aggregates` of a few rows given as (lic, dom, tb, day, flags)."""
    tot: Counter[str] = Counter()
    lic: Counter[str] = Counter()
    dom: dict[str, tuple[int, int]] = {}
    day: Counter[int] = Counter()
    for lc, dm, tb, dy, flags in rows:
        tot.update(
            n=1,
            tb=tb or 0,
            tok=-(-(tb or 0) // 4),
            no_origin=bool(flags & NO_ORIGIN),
            no_gh=bool(flags & NO_GH),
            no_path=bool(flags & NO_PATH),
            no_url=bool(flags & NO_URL),
            bad_text=tb is None,
        )
        lic[lc] += 1
        if dm is not None:
            n, b = dom.get(dm, (0, 0))
            dom[dm] = (n + 1, b + (tb or 0))
        day[dy] += 1
    return {"tot": {k: tot[k] for k in _TOTALS}, "lic": dict(lic), "dom": dom, "day": dict(day)}


def add_aggregates(
    conn: sqlite3.Connection, fid: int, agg: dict, sign: int = 1, replace: bool = False
) -> None:
    """Add (or, with sign -1, take away) a file's aggregate counts; `replace` starts from zero."""
    if replace:
        for table in ("file_licenses", "file_domains", "file_days"):
            conn.execute(f"DELETE FROM {table} WHERE fid = ?", (fid,))
        conn.execute(f"UPDATE files SET {', '.join(f'{k} = 0' for k in _TOTALS)} WHERE fid = ?", (fid,))
    conn.execute(
        f"UPDATE files SET {', '.join(f'{k} = {k} + ?' for k in _TOTALS)} WHERE fid = ?",
        (*(sign * agg["tot"][k] for k in _TOTALS), fid),
    )
    conn.executemany(
        "INSERT INTO file_licenses VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET n = n + excluded.n",
        [(fid, k, sign * n) for k, n in agg["lic"].items()],
    )
    conn.executemany(
        "INSERT INTO file_domains VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE"
        " SET n = n + excluded.n, bytes = bytes + excluded.bytes",
        [(fid, k, sign * n, sign * b) for k, (n, b) in agg["dom"].items()],
    )
    conn.executemany(
        "INSERT INTO file_days VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET n = n + excluded.n",
        [(fid, k, sign * n) for k, n in agg["day"].items()],
    )
    if sign < 0:
        for table in ("file_licenses", "file_domains", "file_days"):
            conn.execute(f"DELETE FROM {table} WHERE fid = ? AND n <= 0", (fid,))
    conn.execute(
        "UPDATE files SET (min_day, max_day) = (SELECT min(day), max(day) FROM file_days WHERE fid = ?)"
        " WHERE fid = ?",
        (fid, fid),
    )


def insert_file(
    conn: sqlite3.Connection, source: str, name: str, meta: dict, drops: bytes | None = None
) -> int:
    cur = conn.execute(
        "INSERT INTO files (source, name, bad, sha256, bytes, st_dev, st_ino, st_size, st_mtime, st_ctime,"
        " verified, drops) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            source,
            name,
            int(meta.get("bad", False)),
            meta["sha256"],
            meta["bytes"],
            *meta["stat"],
            meta["verified"],
            drops,
        ),
    )
    return int(cur.lastrowid)  # type: ignore[arg-type]


def set_stat(conn: sqlite3.Connection, fid: int, meta: dict) -> None:
    conn.execute(
        "UPDATE files SET st_dev = ?, st_ino = ?, st_size = ?, st_mtime = ?, st_ctime = ?, verified = ?"
        " WHERE fid = ?",
        (*meta["stat"], meta["verified"], fid),
    )


def ensure_indexes(conn: sqlite3.Connection) -> None:
    """Create the look-up indexes that are missing (dropped for a bulk build that did not finish)."""
    have = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    for name, spec in SECONDARY.items():
        if name not in have:
            conn.execute(f"CREATE INDEX {name} ON {spec}")


