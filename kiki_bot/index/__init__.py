"""The provenance index: every record's provenance in SQLite, so that matching, purging and the card's
figures need not parse millions of JSONL lines each time.

It lives in `<project>/.kiki/index.sqlite` and is a cache, never the source of truth: the data files and
their manifests are. Nothing is served from it unless it is verified again at each use:

- **The index file itself.** A schema version and the index file's own (device, inode) are stored in it;
  a different schema, a database SQLite cannot read, or an index file that is not the one this machine
  created (copied in, restored, or committed in a pull request: checkouts create new inodes) is deleted
  and rebuilt. It is never read without `.kiki/index.lock` held, so concurrent runs serialise.
- **Each data file.** The rows of a file are served only while the file verifies against its manifest
  entry (sha256 and size). The index records the manifest entry its rows were built from and the file's
  stat when it was last verified: device, inode, size, mtime_ns and ctime_ns. When that stat and the
  manifest entry are unchanged, the file is not hashed again. Trade-off: this trusts the file system's
  timestamps, as `git status` does; ctime cannot be set back by `touch` or `os.utime`, so an edit in
  place is still seen. Like git's "racily clean" rule, a stat recorded within RACY_NS of a change to the
  file is not trusted: that file is hashed again next time. Whenever the stat or the manifest entry
  differs, the file is hashed; a file that does not match its manifest (or has none) is never served.
  Callers stream such files exactly as before: the results, and the `file:line` errors, are the same.
- **Rows.** Each line is parsed once with `json.loads`, checked with the same rules as
  `records.parse_line` (lines it cannot vouch for go through `parse_line` itself, so every error is the
  same `BadInput`), and the content hash is the same canonical JSON hash. A file with a bad line is
  remembered as bad, with no rows: streaming it raises the error, in stream order.
- **Purges.** `purge.plan` takes byte ranges from the index; once a file is rewritten without them, the
  purge notes the cut (`note_cuts`) with the SHA-256 the file had and the one it has now (hashed as it
  was copied). When a file later verifies with exactly that hash, its rows are derived (cut rows deleted,
  later offsets and lines shifted), not parsed again; any other content is parsed again.

Incremental: only files whose manifest entry or stat changed are looked at again. A file that verifies
and whose first bytes are exactly the ones indexed (checked by hashing that prefix) has only its appended
lines parsed; any other changed file is parsed whole (in worker processes over the 2 cores when there is
much to parse), and its rows that did not change are kept, so the SQLite index work is proportional to
the records that changed. Per-file aggregates (records, bytes, tokens estimate, licences, domains, days)
are kept beside the rows, so the card's figures do not scan them.

Rows carry what matching needs, normalised as `matching.Matcher` compares it (lower-cased GitHub owner
and repository, exact path, reversed host labels for `domain:`, normalised URL path and query, Hub
dataset), so every selector is one or two indexed equality or range look-ups.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import sqlite3
import threading
import stat as stat_mod
import time
from array import array
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

from kiki_bot import console
from kiki_bot.core import licences
from kiki_bot.core.errors import BadInput
from kiki_bot.core.matching import Matcher, MatchResult
from kiki_bot.core.selectors import (
    AccountSelector,
    DomainSelector,
    HfDatasetSelector,
    PathSelector,
    RecordSelector,
    RepositorySelector,
    Selector,
    Sha256Selector,
    UrlSelector,
    WebUrl,
    github_file_of,
    hf_dataset_of,
    host_domain,
    norm_host,
    origin_url,
    registrable_domain,
    split_url,
)
from kiki_bot.repo import manifests
from kiki_bot.repo.records import (
    Provenance,
    Record,
    data_files,
    duplicate_key,
    iso_day,
    iter_file,
    parse_line,
    record_text,
)

SCHEMA_VERSION = 6  # 4: URL paths keyed percent-decoded (DESIGN.md section 3); 5: strict provenance types;
# 6: duplicate keys refused as rows enter (an index built before is rebuilt, so checked)
# and SPDX-checked licences (rows of older schemas may hold records that are now refused)
INDEX_NAME = "index.sqlite"
RACY_NS = 2_000_000_000  # a stat taken within 2 s of the file's mtime/ctime is re-verified next time
PARALLEL_BYTES = 64 << 20  # parse in worker processes only when at least this much data needs parsing
BULK_FRACTION = 0.5  # rebuilding more than this share of the rows: drop the secondary indexes, then rebuild
BATCH = 20_000
CHUNK = 1 << 20
LINE_BITS = 32  # row id = file id << 32 | line number in the file as built
LINE_MASK = (1 << LINE_BITS) - 1

# row flags: what provenance a record lacks (matching's `uncovered`) and whether it has an origin at all
NO_GH, NO_PATH, NO_URL, NO_ORIGIN = 1, 2, 4, 8

# A record's GitHub identity and origin URL are each one key whose components cannot hold a NUL, except the
# last (a path), so that every selector is an equality or a prefix range on one indexed column:
#   gkey = owner NUL repo [NUL path]       owner and repo lower-cased (`selectors.github_identity`)
#   ukey = reversed-host NUL [port] NUL decoded-path-without-trailing-slash (`selectors.WebUrl.key`, the host
#          labels reversed so that `domain:` is a prefix), the query in its own column
COLUMNS = (
    "id", "off", "len", "idx", "ch", "sha", "day", "lic", "tb", "dom", "flags", "gkey", "ukey", "query", "hf",
)  # fmt: skip
_ROW_SQL = (
    "(id INTEGER PRIMARY KEY, off INTEGER NOT NULL, len INTEGER NOT NULL, idx INTEGER NOT NULL,"
    " ch BLOB NOT NULL, sha BLOB, day INTEGER NOT NULL, lic TEXT NOT NULL, tb INTEGER, dom TEXT,"
    " flags INTEGER NOT NULL, gkey TEXT, ukey TEXT, query TEXT, hf TEXT)"
)
_INSERT = f"INSERT INTO records VALUES ({','.join('?' * len(COLUMNS))})"
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
CREATE TABLE records {_ROW_SQL};
"""
SECONDARY = {
    "records_idx": "records (idx)",
    "records_ch": "records (substr(ch, 1, 8))",  # 8 bytes of a SHA-256 pick out a record; half the size
    "records_sha": "records (substr(sha, 1, 8)) WHERE sha IS NOT NULL",
    "records_gkey": "records (gkey) WHERE gkey IS NOT NULL",
    "records_ukey": "records (ukey, query) WHERE ukey IS NOT NULL",
    "records_hf": "records (hf) WHERE hf IS NOT NULL",
}


class _Rebuild(Exception):
    """The index file cannot be used as it is: delete it and start again."""


# ---------------------------------------------------------------- parsing: parse_line's rules, faster
_loads = json.loads
_decode = json.JSONDecoder().decode  # what json.loads uses after decoding bytes to str
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_PROV_KEYS = frozenset(Provenance.model_fields)
_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_AUTHORITY = re.compile(r"[A-Za-z0-9._-]*")


def plain_fields(obj: dict) -> tuple | None:
    """(source, license, record_idx, access_date ordinal, origin, repo, path, sha256) of a parsed line
    that `records.parse_line` accepts with exactly these values, checked without pydantic; None for any
    line it does not vouch for (those go through `parse_line`, which accepts or names the error)."""
    prov = obj.get("_provenance")
    if type(prov) is not dict or not prov.keys() <= _PROV_KEYS:
        return None
    if not ("messages" in obj or "prompt" in obj or "text" in obj) or (
        "prompt" in obj and "completion" not in obj
    ):
        return None
    source, lic, idx, day = (
        prov.get("source"),
        prov.get("license"),
        prov.get("record_idx"),
        prov.get("access_date"),
    )
    if type(source) is not str or not source or not source.isascii():
        return None
    if type(lic) is not str or not lic or not lic.isascii() or not licences.valid(lic):
        return None
    if type(idx) is not int or idx < 0 or type(day) is not str:
        return None
    day = iso_day(day)
    if day is None:
        return None
    origin, repo, path, sha = prov.get("origin"), prov.get("repo"), prov.get("path"), prov.get("sha256")
    if origin is not None and (type(origin) is not str or not origin.isascii()):
        return None
    if repo is not None and (type(repo) is not str or not _REPO.fullmatch(repo)):
        return None
    if path is not None and (type(path) is not str or not path.isascii()):
        return None
    if sha is not None and (type(sha) is not str or not _HEX64.fullmatch(sha)):
        return None
    return source, lic, idx, day.toordinal(), origin, repo, path, sha


def parse_fields(raw: bytes, file: Path, line: int, offset: int) -> tuple[dict, tuple, bytes]:
    """(payload, provenance fields as `plain_fields` gives them, content hash digest) of one line, with
    exactly `parse_line`'s acceptance, values, content hash and errors."""
    try:
        # json.loads(bytes) detects the encoding; a line that opens with `{` then a non-NUL byte is UTF-8
        obj = (
            _decode(raw.decode("utf-8", "surrogatepass"))
            if raw[:1] == b"{" and raw[1:2] != b"\0"
            else _loads(raw)
        )
    except ValueError:  # JSONDecodeError, UnicodeDecodeError: parse_line says which, with file:line
        obj = None
    fields = plain_fields(obj) if type(obj) is dict else None
    if fields is None:
        rec = parse_line(raw, file, line, offset)
        p = rec.provenance
        fields = (
            p.source,
            p.license,
            p.record_idx,
            p.access_date.toordinal(),
            p.origin,
            p.repo,
            p.path,
            p.sha256,
        )
        return rec.payload, fields, bytes.fromhex(rec.content_hash)
    payload = {k: v for k, v in obj.items() if k != "_provenance"}
    return payload, fields, hashlib.sha256(_canonical(payload).encode("utf-8")).digest()


def origin_parts(origin: str) -> tuple[WebUrl | None, str | None]:
    """(`selectors.origin_url(origin)`, `selectors.registrable_domain(origin)`), without `urlsplit` for the
    plain `http(s)://host/path?query#fragment` shape (the same values: proven by tests/test_index.py)."""
    if origin.startswith("https://"):
        scheme, rest = "https", origin[8:]
    elif origin.startswith("http://"):
        scheme, rest = "http", origin[7:]
    else:
        return origin_url(origin), registrable_domain(origin)
    end = _AUTHORITY.match(rest).end()  # type: ignore[union-attr]
    if (end < len(rest) and rest[end] not in "/?#") or "\t" in origin or "\n" in origin or "\r" in origin:
        return origin_url(origin), registrable_domain(origin)  # port, user info, brackets, dropped characters
    authority = rest[:end]
    domain = host_domain(authority.lower())
    host = norm_host(authority)
    if host is None:
        return None, domain
    tail = rest[end:]
    if "#" in tail:
        tail = tail.split("#", 1)[0]
    path, _, query = tail.partition("?")
    return WebUrl(scheme, host, None, path, query), domain


@lru_cache(maxsize=65536)
def reverse_host(host: str) -> str:
    """`docs.example.com` → `com.example.docs`: a `domain:` selector becomes a prefix range."""
    return ".".join(reversed(host.split(".")))


@lru_cache(maxsize=65536)
def _host_key(host: str, port: int | None) -> str:
    return f"{reverse_host(host)}\0{'' if port is None else port}\0"


def url_key(host: str, port: int | None, path: str) -> str:
    """The `ukey` of a normalised URL whose path has no trailing `/`."""
    return _host_key(host, port) + path


def dataset_key(url: WebUrl | None) -> str | None:
    dataset = hf_dataset_of(url)
    return f"{dataset[0]}/{dataset[1]}" if dataset else None


def iter_rows(
    path: Path, source: str, digest: Any = None, start: tuple[int, int] = (0, 1)
) -> Iterator[tuple]:
    """One row per record of a data file (row id = line number), in line order, from byte `start[0]`
    (which begins line `start[1]`); `digest` (a hashlib object) is fed every byte read. Raises the
    `BadInput` that `records.iter_source` raises."""
    offset = start[0]
    with open(path, "rb") as fh:
        fh.seek(offset)
        for lineno, raw in enumerate(fh, start=start[1]):
            if digest is not None:
                digest.update(raw)
            length = len(raw)
            if not raw.strip():
                offset += length
                continue
            payload, fields, ch = parse_fields(raw, path, lineno, offset)
            src, lic, idx, day, origin, repo, rpath, sha = fields
            if src != source:
                raise BadInput(
                    f"{path}:{lineno}",
                    f"_provenance.source is {src!r} but the file lies under data/{source}/",
                )
            try:
                tb = len(record_text(payload).encode("utf-8"))
            except Exception:  # noqa: BLE001  figures streams this file and raises it there
                tb = None
            flags = 0
            if origin is None:
                flags |= NO_ORIGIN
                dom = url = None
            else:
                url, dom = origin_parts(origin)
            if url is None:
                flags |= NO_URL
                ukey = query = hf = None
            else:
                ukey = url_key(url.host, url.port, url.path_key)
                query = url.query
                hf = dataset_key(url)
            if repo:
                owner, _, name = repo.partition("/")
                gkey = (
                    f"{owner.lower()}\0{name.lower()}"
                    if rpath is None
                    else f"{owner.lower()}\0{name.lower()}\0{rpath}"
                )
            else:
                ident = github_file_of(url)
                gkey = None if ident is None else f"{ident[0]}\0{ident[1]}\0{ident[2]}"
            if gkey is None:
                flags |= NO_GH
            elif rpath is None and repo:
                flags |= NO_PATH
            yield (
                lineno,
                offset,
                length,
                idx,
                ch,
                None if sha is None else bytes.fromhex(sha),
                day,
                lic,
                tb,
                dom,
                flags,
                gkey,
                ukey,
                query,
                hf,
            )
            offset += length


def stream_file(path: Path, source: str) -> Iterator[Record]:
    """The records of one data file exactly as `records.iter_source` yields them (for files not served)."""
    for rec in iter_file(path):
        if rec.provenance.source != source:
            raise BadInput(
                f"{path}:{rec.line}",
                f"_provenance.source is {rec.provenance.source!r} but the file lies under data/{source}/",
            )
        yield rec


# ---------------------------------------------------------------- building one file's rows
def _stat_key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _hash_file(path: Path, prefix: int | None = None) -> dict | None:
    """SHA-256 and size of a file, with the stat it had while read; None if it changed meanwhile.

    With `prefix`, also the SHA-256 of its first `prefix` bytes, how many lines they hold and whether
    they end a line: when they are what the index holds rows for, only the rest needs parsing."""
    try:
        verified = time.time_ns()
        st = os.stat(path)
        with open(path, "rb") as fh:
            if prefix is None or prefix > st.st_size:
                digest = hashlib.file_digest(fh, "sha256")
                out = {}
            else:
                digest, lines, left = hashlib.sha256(), 0, prefix
                last = b"\n"
                while left:
                    chunk = fh.read(min(CHUNK, left))
                    if not chunk:
                        return None
                    digest.update(chunk)
                    lines += chunk.count(b"\n")
                    left -= len(chunk)
                    last = chunk[-1:]
                out = {
                    "prefix_sha256": digest.hexdigest(),
                    "prefix_lines": lines,
                    "prefix_ends_line": last == b"\n",
                }
                while chunk := fh.read(CHUNK):
                    digest.update(chunk)
            size = fh.tell()
        if _stat_key(os.stat(path)) != _stat_key(st):
            return None
    except OSError:
        return None
    return {**out, "sha256": digest.hexdigest(), "bytes": size, "stat": _stat_key(st), "verified": verified}


def _build_shard(path: str, source: str, shard: str, start: tuple[int, int] | None = None) -> dict:
    """Parse one file (or, with `start`, its tail from that (offset, line)) into a shard database of its
    own: rows with ids = line numbers, no indexes, no journal. Runs in a worker process, or here.

    Returns the file's sha256 (None for a tail), size and stat, plus `bad` (a line `parse_line` refuses:
    no rows are usable) or `unusable` (a record the index cannot hold, e.g. an integer beyond 64 bits, or
    a file that changed while read: stream it)."""
    verified = time.time_ns()
    conn = sqlite3.connect(shard, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute(f"CREATE TABLE rows {_ROW_SQL}")
        conn.execute("BEGIN")
        st = os.stat(path)
        digest = hashlib.sha256() if start is None else None
        out: dict[str, Any] = {"bad": False, "unusable": False}
        rows = iter_rows(Path(path), source, digest, start or (0, 1))
        try:
            while batch := list(islice(rows, BATCH)):
                conn.executemany(_INSERT.replace("records", "rows"), batch)
        except BadInput:
            out["bad"] = True
            rows.close()
            if digest is not None:
                with open(path, "rb") as fh:  # the bad state is remembered for these bytes
                    digest = hashlib.file_digest(fh, "sha256")
        conn.execute("COMMIT")
        if _stat_key(os.stat(path)) != _stat_key(st):
            return {"unusable": True}
        out.update(
            sha256=digest and digest.hexdigest(), bytes=st.st_size, stat=_stat_key(st), verified=verified
        )
        if not out["bad"]:
            out["agg"] = _aggregates(conn, "rows")  # here, in the worker: the merge only adds them up
        return out
    except (OSError, ValueError, OverflowError, TypeError, RecursionError, sqlite3.Error):
        return {"unusable": True}
    finally:
        conn.close()


# ---------------------------------------------------------------- the view callers use
@dataclasses.dataclass
class IndexedFile:
    """One data file of a refreshed source. `fid` is None when its rows are not served (no manifest
    match, a bad line, or content the index cannot hold): stream it with `stream_file`."""

    source: str
    path: Path
    fid: int | None = None
    stamp: tuple[int, int, int] | None = None  # (inode, size, mtime_ns) as verified: purge's FileCut stamp
    sha256: str | None = None  # as verified
    n: int = 0
    tb: int = 0
    tok: int = 0
    min_day: int | None = None
    max_day: int | None = None
    no_origin: int = 0
    no_gh: int = 0
    no_path: int = 0
    no_url: int = 0
    bad_text: int = 0
    drop_lines: list[int] = dataclasses.field(default_factory=list)
    drop_cum: list[int] = dataclasses.field(default_factory=lambda: [0])

    @property
    def served(self) -> bool:
        return self.fid is not None

    @property
    def lo(self) -> int:
        return (self.fid or 0) << LINE_BITS

    @property
    def hi(self) -> int:
        return self.lo | LINE_MASK

    def locate(self, rid: int, off: int) -> tuple[int, int]:
        """(line, byte offset) now of the row `rid` built at offset `off`: rows cut by purges since the
        file was parsed shift what follows them."""
        line = rid & LINE_MASK
        if not self.drop_lines:
            return line, off
        k = bisect_left(self.drop_lines, line)
        return line - k, off - self.drop_cum[k]


_FILE_COLS = (
    "fid, source, name, bad, sha256, bytes, st_dev, st_ino, st_size, st_mtime, st_ctime, verified, n, tb, tok, "
    "min_day, max_day, no_origin, no_gh, no_path, no_url, bad_text, drops"
)


def _unpack_drops(blob: bytes | None) -> list[tuple[int, int, int]]:
    if not blob:
        return []
    a = array("q")
    a.frombytes(blob)
    return [(a[i], a[i + 1], a[i + 2]) for i in range(0, len(a), 3)]


def _pack_drops(drops: Iterable[tuple[int, int, int]]) -> bytes | None:
    a = array("q")
    for d in sorted(drops):
        a.extend(d)
    return a.tobytes() or None


def _view(source: str, path: Path, row: sqlite3.Row) -> IndexedFile:
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
    for line, _off, length in _unpack_drops(row["drops"]):
        f.drop_lines.append(line)
        f.drop_cum.append(f.drop_cum[-1] + length)
    return f


class Index:
    """An open, locked and refreshed index: `files` lists every data file of the refreshed sources in
    stream order (sources as asked, files as `records.data_files` orders them)."""

    def __init__(self, conn: sqlite3.Connection, lock: Any, files: dict[str, list[IndexedFile]]) -> None:
        self.conn = conn
        self._lock = lock
        self.files = files
        self.by_fid = {f.fid: f for fs in files.values() for f in fs if f.fid is not None}

    def close(self) -> None:
        try:
            self.conn.close()
        finally:
            self._lock.release()

    # ------------------------------------------------------------ look-ups
    def _temp(self, name: str, cols: str, rows: Iterable[tuple]) -> None:
        self.conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({cols})")
        self.conn.execute(f"DELETE FROM temp.{name}")
        self.conn.executemany(
            f"INSERT INTO temp.{name} VALUES ({','.join('?' * (cols.count(',') + 1))})", rows
        )

    def lookup(
        self,
        idxs: dict[str, Iterable[int]],
        hashes: Iterable[str] = (),
        columns: str = "id, off, len, idx, ch",
    ) -> dict[int, list[tuple]]:
        """Rows of served files whose (source, record_idx) is asked in `idxs` or whose content hash is in
        `hashes`, per file id, each list in line order (the first column must be `id`)."""
        wanted = {s: set(v) for s, v in idxs.items() if v}
        found: dict[int, dict[int, tuple]] = defaultdict(dict)
        every = sorted({i for v in wanted.values() for i in v})
        if every:
            self._temp("q_idx", "idx INTEGER PRIMARY KEY", ((i,) for i in every))
            sql = (
                f"SELECT {', '.join('r.' + c.strip() for c in columns.split(','))}, r.idx FROM temp.q_idx q "
                "CROSS JOIN records r ON r.idx = q.idx"
            )
            for row in self.conn.execute(sql):
                f = self.by_fid.get(row[0] >> LINE_BITS)
                if f is not None and row[-1] in wanted.get(f.source, ()):
                    found[f.fid][row[0]] = row[:-1]  # type: ignore[index]
        digests = sorted({bytes.fromhex(h) for h in hashes})
        if digests:
            self._temp("q_ch", "ch BLOB PRIMARY KEY, p BLOB", ((d, d[:8]) for d in digests))
            sql = (
                f"SELECT {', '.join('r.' + c.strip() for c in columns.split(','))} FROM temp.q_ch q "
                "CROSS JOIN records r ON substr(r.ch, 1, 8) = q.p AND r.ch = q.ch"
            )
            for row in self.conn.execute(sql):
                f = self.by_fid.get(row[0] >> LINE_BITS)
                if f is not None:
                    found[f.fid][row[0]] = row
        return {fid: [rows[k] for k in sorted(rows)] for fid, rows in found.items()}

    def read_record(self, f: IndexedFile, rid: int, off: int, length: int) -> Record:
        """Parse one indexed record from its file (the file verified at refresh; the lock is held)."""
        line, offset = f.locate(rid, off)
        with open(f.path, "rb") as fh:
            fh.seek(offset)
            raw = fh.read(length)
        return parse_line(raw, f.path, line, offset)

    # ------------------------------------------------------------ figures
    def _excluding(self, ids: Iterable[int]) -> str:
        self._temp("q_ex", "id INTEGER PRIMARY KEY", ((i,) for i in ids))
        return " AND id NOT IN (SELECT id FROM temp.q_ex)"

    def file_figures(self, f: IndexedFile, exclude: Sequence[int] = ()) -> FileFigures:
        """The file's figures over its records, leaving out the rows `exclude` (ids)."""
        if not exclude:
            return FileFigures(
                f.n, f.tb, f.tok, f.min_day, f.max_day, f.no_origin,
                dict(self.conn.execute("SELECT lic, n FROM file_licenses WHERE fid = ?", (f.fid,)).fetchall()),
                dict(self.conn.execute("SELECT dom, bytes FROM file_domains WHERE fid = ?", (f.fid,)).fetchall()),
            )  # fmt: skip
        where = self._excluding(exclude)
        out = FileFigures(0, 0, 0, None, None, 0, {}, {})
        for lic, dom, n, tb, tok, lo_day, hi_day, no_origin in self.conn.execute(
            "SELECT lic, dom, count(*), sum(tb), sum((tb + 3) / 4), min(day), max(day), sum(flags & 8 != 0)"
            f" FROM records WHERE id BETWEEN ? AND ?{where} GROUP BY lic, dom",
            (f.lo, f.hi),
        ):
            out.n += n
            out.tb += tb or 0
            out.tok += tok or 0
            out.min_day = lo_day if out.min_day is None else min(out.min_day, lo_day)
            out.max_day = hi_day if out.max_day is None else max(out.max_day, hi_day)
            out.no_origin += no_origin
            out.licenses[lic] = out.licenses.get(lic, 0) + n
            if dom is not None:
                out.domains[dom] = out.domains.get(dom, 0) + (tb or 0)
        return out

    def licence_rows(self, f: IndexedFile, lics: Iterable[str], exclude: Sequence[int] = ()) -> list[tuple]:
        """(id, off, lic) of the file's rows with one of `lics`, in line order."""
        self._temp("q_lic", "lic TEXT PRIMARY KEY", ((lic,) for lic in lics))
        where = self._excluding(exclude)
        return self.conn.execute(
            f"SELECT id, off, lic FROM records WHERE id BETWEEN ? AND ? AND lic IN (SELECT lic FROM temp.q_lic)"
            f"{where} ORDER BY id",
            (f.lo, f.hi),
        ).fetchall()

    def tokens(self, f: IndexedFile, tokenizer: str) -> int | None:
        """Tokens of every record of the file counted with the tokenizer whose file has SHA-256 `tokenizer`."""
        row = self.conn.execute(
            "SELECT tokens FROM file_tokens WHERE fid = ? AND tokenizer = ?", (f.fid, tokenizer)
        ).fetchone()
        return None if row is None else row[0]

    def set_tokens(self, f: IndexedFile, tokenizer: str, tokens: int) -> None:
        with _transaction(self.conn):
            self.conn.execute(
                "INSERT OR REPLACE INTO file_tokens VALUES (?, ?, ?)", (f.fid, tokenizer, tokens)
            )


@dataclasses.dataclass
class FileFigures:
    n: int
    tb: int
    tok: int
    min_day: int | None
    max_day: int | None
    no_origin: int
    licenses: dict[str, int]
    domains: dict[str, int]


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# ---------------------------------------------------------------- opening, verifying, refreshing
def index_path(root: Path) -> Path:
    return root / ".kiki" / INDEX_NAME


def _identity(path: Path) -> str:
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}"


def _delete(path: Path) -> None:
    for p in (
        path,
        path.with_name(path.name + "-journal"),
        path.with_name(path.name + "-wal"),
        path.with_name(path.name + "-shm"),
    ):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _connect(path: Path) -> sqlite3.Connection:
    """Open the index, creating it when absent; raises `_Rebuild` when it is not one this machine made."""
    fresh = not path.exists()
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA cache_size=-16384")  # also bounds the sorter building an index: flat memory
        conn.execute("PRAGMA temp_store=FILE")
        if fresh:
            with _transaction(conn):
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [("schema", str(SCHEMA_VERSION)), ("file", _identity(path))],
                )
        else:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("schema") != str(SCHEMA_VERSION) or meta.get("file") != _identity(path):
                raise _Rebuild
    except BaseException:
        conn.close()
        raise
    return conn


def adopt(root: Path) -> None:
    """Bind an index file copied on purpose (a bench's scratch copy of a project) to its new inode.
    Never called by the bot itself: a copied index is otherwise rebuilt."""
    path = index_path(root)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'file'", (_identity(path),))
    finally:
        conn.close()


def note_cuts(root: Path, cuts: Sequence[tuple[int, str, bytes, str, int]]) -> None:
    """Remember rewrites a purge made: (file id, SHA-256 as indexed, row ids cut, SHA-256 and size now)
    each, so that the next refresh derives those files' rows instead of parsing them again. Best effort:
    an index that cannot take the note just parses the files again."""
    path = index_path(root)
    if not cuts or not path.is_file():
        return
    try:
        lock = _Lock(root / ".kiki" / "index.lock")
    except OSError:
        return
    try:
        if not path.is_file():  # deleted meanwhile: a new index must not take notes about old file ids
            return
        conn = _connect(path)
        try:
            with _transaction(conn):
                conn.executemany(
                    "INSERT OR REPLACE INTO pending (fid, old_sha256, ids, new_sha256, new_bytes)"
                    " VALUES (?, ?, ?, ?, ?)",
                    cuts,
                )
        finally:
            conn.close()
    except (sqlite3.Error, _Rebuild, OSError):
        pass  # the refresh that finds the index unusable rebuilds it
    finally:
        lock.release()


@contextlib.contextmanager
def opened(project: Any, sources: Iterable[str]) -> Iterator[Index | None]:
    """The index of `project` (anything with `root`, `data_dir` and `sources`), refreshed for `sources`
    and locked while in use; None when it cannot be used here (callers then stream the files)."""
    ix = _open(project.root, project.data_dir, list(dict.fromkeys(sources)), set(project.sources))
    try:
        yield ix
    finally:
        if ix is not None:
            ix.close()


class _Lock:
    """`.kiki/index.lock`, exclusive across processes and threads (each thread opens the file itself, and
    flock excludes separate opens); taken again by the same thread (a caller of `opened` inside another's
    `with`), it just counts, so nesting cannot deadlock."""

    _local: ClassVar[threading.local] = threading.local()

    @property
    def held(self) -> dict[str, int]:
        if not hasattr(self._local, "held"):
            self._local.held = {}
        return self._local.held

    def __init__(self, path: Path) -> None:
        self.key = str(path.resolve())
        self.fh: Any = None
        if self.held.get(self.key):
            self.held[self.key] += 1
            return
        self.fh = open(path, "a+b")  # noqa: SIM115  held until release
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX)
        except BaseException:
            self.fh.close()
            raise
        self.held[self.key] = 1

    def release(self) -> None:
        self.held[self.key] -= 1
        if self.fh is not None:
            fcntl.flock(self.fh, fcntl.LOCK_UN)
            self.fh.close()
            self.fh = None


def _open(root: Path, data_dir: Path, sources: list[str], known: set[str]) -> Index | None:
    kiki = root / ".kiki"
    try:
        kiki.mkdir(exist_ok=True)
        lock = _Lock(kiki / "index.lock")
    except OSError:
        return None  # a read-only checkout: stream instead
    try:
        path = kiki / INDEX_NAME
        for _attempt in range(2):
            conn = None
            try:
                conn = _connect(path)
                files = _refresh(conn, kiki, data_dir, sources, known)
                return Index(conn, lock, files)
            except BadInput:  # the data is wrong (a duplicate key), not the index
                if conn is not None:
                    conn.close()
                raise
            except (sqlite3.DatabaseError, _Rebuild):
                if conn is not None:
                    conn.close()
                _delete(path)
            except OSError:  # no space, read-only, permissions: the files are streamed instead
                if conn is not None:
                    conn.close()
                break
    except BaseException:
        lock.release()
        raise
    lock.release()
    return None


def _manifest(source_dir: Path) -> dict[str, manifests.FileEntry] | None:
    try:
        found = manifests.load(source_dir)
    except (BadInput, OSError):
        return None  # an unreadable manifest verifies nothing: every file of the source is streamed
    return None if found is None else found.files


def _forget(conn: sqlite3.Connection, fid: int) -> None:
    lo = fid << LINE_BITS
    conn.execute("DELETE FROM records WHERE id BETWEEN ? AND ?", (lo, lo | LINE_MASK))
    for table in ("file_licenses", "file_domains", "file_days", "file_tokens", "pending", "files"):
        conn.execute(f"DELETE FROM {table} WHERE fid = ?", (fid,))


_TOTALS = ("n", "tb", "tok", "no_origin", "no_gh", "no_path", "no_url", "bad_text")


def _aggregates(conn: sqlite3.Connection, table: str, where: str = "", params: tuple = ()) -> dict:
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


def _row_aggregates(rows: Iterable[tuple]) -> dict:
    """`_aggregates` of a few rows given as (lic, dom, tb, day, flags)."""
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


def _add_aggregates(
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


def _insert_file(
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


def _set_stat(conn: sqlite3.Connection, fid: int, meta: dict) -> None:
    conn.execute(
        "UPDATE files SET st_dev = ?, st_ino = ?, st_size = ?, st_mtime = ?, st_ctime = ?, verified = ?"
        " WHERE fid = ?",
        (*meta["stat"], meta["verified"], fid),
    )


def _derive(conn: sqlite3.Connection, row: sqlite3.Row, meta: dict) -> bool:
    """Apply a noted cut to a file's rows, if the file now has exactly the bytes the cut predicted."""
    fid = row["fid"]
    cut = conn.execute("SELECT * FROM pending WHERE fid = ?", (fid,)).fetchone()
    if (
        cut is None
        or cut["old_sha256"] != row["sha256"]
        or (cut["new_sha256"], cut["new_bytes"]) != (meta["sha256"], meta["bytes"])
    ):
        return False
    ids = array("q")
    ids.frombytes(cut["ids"])
    with _transaction(conn):
        gone = []
        for start in range(0, len(ids), 500):
            part = list(ids[start : start + 500])
            gone += conn.execute(
                f"SELECT id, off, len, lic, dom, tb, day, flags FROM records WHERE id IN ({','.join('?' * len(part))})",
                part,
            ).fetchall()
        if len(gone) != len(ids):
            conn.execute("DELETE FROM pending WHERE fid = ?", (fid,))
            return False
        conn.executemany("DELETE FROM records WHERE id = ?", [(i,) for i in ids])
        drops = _unpack_drops(row["drops"]) + [
            (rid & LINE_MASK, off, length) for rid, off, length, *_ in gone
        ]
        conn.execute(
            "UPDATE files SET sha256 = ?, bytes = ?, drops = ? WHERE fid = ?",
            (meta["sha256"], meta["bytes"], _pack_drops(drops), fid),
        )
        _set_stat(conn, fid, meta)
        for table in ("pending", "file_tokens"):
            conn.execute(f"DELETE FROM {table} WHERE fid = ?", (fid,))
        _add_aggregates(conn, fid, _row_aggregates(r[3:] for r in gone), sign=-1)
    return True


def _ensure_indexes(conn: sqlite3.Connection) -> None:
    """Create the look-up indexes that are missing (dropped for a bulk build that did not finish)."""
    have = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    for name, spec in SECONDARY.items():
        if name not in have:
            conn.execute(f"CREATE INDEX {name} ON {spec}")


def _refresh(
    conn: sqlite3.Connection, kiki: Path, data_dir: Path, sources: list[str], known: set[str]
) -> dict[str, list[IndexedFile]]:
    """Bring the rows of `sources` up to date with the files on disk (see the module docstring)."""
    tmp = kiki / "index-tmp"
    if tmp.exists():  # shards of a killed build
        for p in tmp.iterdir():
            p.unlink()
    have = {(r["source"], r["name"]): r for r in conn.execute(f"SELECT {_FILE_COLS} FROM files")}
    on_disk: dict[str, list[Path]] = {s: data_files(data_dir / s) for s in sources}
    wanted = {s: _manifest(data_dir / s) for s in sources}
    views: dict[str, list[IndexedFile]] = {s: [IndexedFile(s, p) for p in on_disk[s]] for s in sources}
    names = {s: {p.name for p in paths} for s, paths in on_disk.items()}
    stale = [
        r["fid"]
        for (s, name), r in have.items()
        if (s in names and name not in names[s]) or (s not in known and s not in names)
    ]
    if stale:
        with _transaction(conn):
            for fid in stale:
                _forget(conn, fid)
    fresh: set[tuple[str, str]] = set()
    to_hash: list[tuple[IndexedFile, manifests.FileEntry, sqlite3.Row | None]] = []
    for s in sources:
        for f in views[s]:
            want = (wanted[s] or {}).get(f.path.name)
            row = have.get((s, f.path.name))
            if want is None:
                continue
            try:
                st = os.stat(f.path)
            except OSError:
                continue
            if not stat_mod.S_ISREG(st.st_mode):
                continue
            if (
                row is not None
                and (row["sha256"], row["bytes"]) == (want.sha256, want.bytes)
                and tuple(row[k] for k in ("st_dev", "st_ino", "st_size", "st_mtime", "st_ctime"))
                == _stat_key(st)
                and max(st.st_mtime_ns, st.st_ctime_ns) < row["verified"] - RACY_NS
            ):
                fresh.add((s, f.path.name))
            else:
                to_hash.append((f, want, row))

    def hash_job(job: tuple[IndexedFile, manifests.FileEntry, sqlite3.Row | None]) -> dict | None:
        f, want, row = job
        same = row is not None and (row["sha256"], row["bytes"]) == (want.sha256, want.bytes)
        tail = (
            row is not None and not same and not row["bad"] and not row["drops"] and row["bytes"] < want.bytes
        )
        return _hash_file(f.path, row["bytes"] if tail else None)  # type: ignore[index]

    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool, \
            console.progress("hashing data files", sum(want.bytes for _, want, _ in to_hash)) as advance:
        hashed = []
        for (_, want, _), meta in zip(to_hash, pool.map(hash_job, to_hash), strict=True):
            hashed.append(meta)
            advance(want.bytes)
    to_parse: list[tuple[IndexedFile, manifests.FileEntry, sqlite3.Row | None, dict]] = []
    for (f, want, row), meta in zip(to_hash, hashed, strict=True):
        key = (f.source, f.path.name)
        if meta is None or (meta["sha256"], meta["bytes"]) != (want.sha256, want.bytes):
            if row is not None and row["fid"] not in stale:
                with _transaction(conn):
                    _forget(conn, row["fid"])  # rows of other bytes than those on disk: never served
            continue
        if row is not None and (row["sha256"], row["bytes"]) == (meta["sha256"], meta["bytes"]):
            with _transaction(conn):
                _set_stat(conn, row["fid"], meta)
            fresh.add(key)
        elif row is not None and _derive(conn, row, meta):
            fresh.add(key)
        else:
            to_parse.append((f, want, row, meta))
    if to_parse:
        _parse_files(conn, tmp, to_parse)
        fresh |= {(f.source, f.path.name) for f, _, _, _ in to_parse}
    _ensure_indexes(conn)
    rows = {
        (r["source"], r["name"]): r
        for r in conn.execute(
            f"SELECT {_FILE_COLS} FROM files WHERE bad = 0 AND source IN ({','.join('?' * len(sources))})",
            sources,
        )
    }
    for s in sources:
        for i, f in enumerate(views[s]):
            key = (s, f.path.name)
            if key in rows and key in fresh:
                views[s][i] = _view(s, f.path, rows[key])
    for s in sorted({f.source for f, _, _, _ in to_parse}):
        _refuse_duplicate_keys(conn, views[s], {f.path.name for f, _, _, _ in to_parse if f.source == s})
    return views


def _refuse_duplicate_keys(conn: sqlite3.Connection, files: list[IndexedFile], parsed: set[str]) -> None:
    """Refuse a record_idx held twice among the served files of one source. Checked when rows enter the
    index (parsed files are the only way a duplicate gets in; purges only take rows out), by one scan of
    the idx index; the parsed files are then forgotten, so every later refresh parses and refuses again
    until the data is fixed."""
    served = {f.fid: f for f in files if f.served}
    if not served:
        return
    fids = ",".join(str(fid) for fid in served)
    dup = conn.execute(
        f"SELECT idx FROM records INDEXED BY records_idx WHERE (id >> {LINE_BITS}) IN ({fids})"
        " GROUP BY idx HAVING count(*) > 1 LIMIT 1"
    ).fetchone()
    if dup is None:
        return
    order = {f.fid: n for n, f in enumerate(files)}
    rows = sorted(
        conn.execute(f"SELECT id, off FROM records WHERE idx = ? AND (id >> {LINE_BITS}) IN ({fids})", (dup[0],)),
        key=lambda r: (order[r[0] >> LINE_BITS], r[0]),
    )[:2]
    where = [f"{(f := served[rid >> LINE_BITS]).path}:{f.locate(rid, off)[0]}" for rid, off in rows]
    with _transaction(conn):
        for f in served.values():
            if f.path.name in parsed:
                _forget(conn, f.fid)  # type: ignore[arg-type]
    raise duplicate_key(files[0].source, dup[0], *where)


def _tail(row: sqlite3.Row | None, meta: dict) -> tuple[int, int] | None:
    """Where to start parsing when the file is the indexed one with lines appended: (offset, line)."""
    if row is None or meta.get("prefix_sha256") != row["sha256"] or not meta["prefix_ends_line"]:
        return None
    return row["bytes"], meta["prefix_lines"] + 1


def _parse_files(
    conn: sqlite3.Connection,
    tmp: Path,
    jobs: list[tuple[IndexedFile, manifests.FileEntry, sqlite3.Row | None, dict]],
) -> None:
    """Parse files whose rows are missing or stale (only the appended lines of a file that grew), in
    worker processes when there is much to parse; then merge each into the index, one transaction each."""
    tmp.mkdir(exist_ok=True)
    total = conn.execute("SELECT coalesce(sum(bytes), 0) FROM files").fetchone()[0]
    size = sum(want.bytes - (row["bytes"] if _tail(row, meta) else 0) for _, want, row, meta in jobs)
    if size >= (8 << 20) and size > BULK_FRACTION * max(total, size):
        for name in SECONDARY:  # much to insert: build the indexes afterwards, in one sorted pass each
            conn.execute(f"DROP INDEX IF EXISTS {name}")
    tasks = [
        (f, want, row, meta, _tail(row, meta), tmp / f"shard-{n}.sqlite")
        for n, (f, want, row, meta) in enumerate(jobs)
    ]
    workers = min(os.cpu_count() or 1, len(tasks))
    with console.progress("indexing records", size) as advance:
        _parse_tasks(conn, tasks, workers if size >= PARALLEL_BYTES else 1, advance)


def _parse_tasks(conn: sqlite3.Connection, tasks: list[tuple], workers: int, advance: Any) -> None:
    """Parse each file (in worker processes when `workers` > 1) and merge it, advancing by its bytes parsed."""
    if workers > 1:
        import multiprocessing

        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [
                pool.submit(_build_shard, str(f.path), f.source, str(shard), tail)
                for f, _, _, _, tail, shard in tasks
            ]
            for (f, want, row, seen, tail, shard), future in zip(tasks, futures, strict=True):
                try:
                    meta = future.result()
                except Exception:  # noqa: BLE001  a worker that died: that file is streamed instead
                    meta = {"unusable": True}
                _merge(conn, f, want, row, seen, tail, meta, shard)
                advance(want.bytes - (tail[0] if tail else 0))
        return
    for f, want, row, seen, tail, shard in tasks:
        _merge(conn, f, want, row, seen, tail, _build_shard(str(f.path), f.source, str(shard), tail), shard)
        advance(want.bytes - (tail[0] if tail else 0))


_SAME = " AND ".join(f"s.{c} IS r.{c}" for c in COLUMNS[3:])  # a row identical but for where it sits


def _merge(
    conn: sqlite3.Connection,
    f: IndexedFile,
    want: manifests.FileEntry,
    row: sqlite3.Row | None,
    seen: dict,
    tail: tuple[int, int] | None,
    meta: dict,
    shard: Path,
) -> None:
    """Put one parsed file (or its appended tail) into the index in one transaction. A file parsed again
    keeps its rows that did not change (only their offsets are corrected), so that an edit costs index
    work for the records it touched, not for the whole file. `seen` is what hashing the file found: a
    tail is used only if the file kept that stat while its tail was parsed."""
    try:
        ok = (
            not meta.get("unusable")
            and (meta["bytes"] == want.bytes)
            and (meta["sha256"] == want.sha256 if tail is None else meta["stat"] == seen["stat"])
        )
        if not ok or (tail is not None and meta["bad"]):
            if row is not None and (not ok or tail is not None):
                with _transaction(conn):
                    _forget(conn, row["fid"])
            if ok:  # a bad line in the tail: remember the whole file as bad
                meta = {**meta, "sha256": want.sha256}
                tail = row = None
            else:
                return
        keep = row is not None and not row["bad"] and not row["drops"] and not meta["bad"]
        sha = want.sha256
        conn.execute("ATTACH DATABASE ? AS shard", (str(shard),))
        try:
            with _transaction(conn):
                if keep:
                    fid = row["fid"]  # type: ignore[index]
                    conn.execute(
                        "UPDATE files SET sha256 = ?, bytes = ?, bad = 0 WHERE fid = ?",
                        (sha, meta["bytes"], fid),
                    )
                    _set_stat(conn, fid, meta)
                    for table in ("pending", "file_tokens"):
                        conn.execute(f"DELETE FROM {table} WHERE fid = ?", (fid,))
                else:
                    if row is not None:
                        _forget(conn, row["fid"])
                    fid = _insert_file(conn, f.source, f.path.name, {**meta, "sha256": sha})
                base = fid << LINE_BITS
                if meta["bad"]:
                    pass  # a file with a bad line serves no rows: it is streamed, which names the line
                elif keep and tail is None:
                    conn.execute(
                        f"DELETE FROM records AS r WHERE id BETWEEN ? AND ? AND NOT EXISTS"
                        f" (SELECT 1 FROM shard.rows s WHERE s.id = r.id - ? AND {_SAME})",
                        (base, base | LINE_MASK, base),
                    )
                    conn.execute(
                        "UPDATE records AS r SET off = s.off, len = s.len FROM shard.rows s WHERE r.id BETWEEN ? AND ?"
                        " AND s.id = r.id - ? AND (r.off != s.off OR r.len != s.len)",
                        (base, base | LINE_MASK, base),
                    )
                    conn.execute(
                        f"INSERT INTO records SELECT s.id + ?, {', '.join('s.' + c for c in COLUMNS[1:])} FROM shard.rows s"
                        " WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.id = s.id + ?)",
                        (base, base),
                    )
                else:
                    conn.execute(
                        f"INSERT INTO records SELECT id + ?, {', '.join(COLUMNS[1:])} FROM shard.rows",
                        (base,),
                    )
                if not meta["bad"]:
                    _add_aggregates(conn, fid, meta["agg"], replace=tail is None)
        finally:
            conn.execute("DETACH DATABASE shard")
    finally:
        _delete(shard)


# ---------------------------------------------------------------- matching through the index
_RANGE = "{0} >= ? AND {0} < ?"


def _queries(
    selectors: Sequence[Selector], sources: Sequence[str], datasets: dict[str, tuple[str, str] | None]
) -> tuple[list[tuple[str, tuple, int, str | None]], dict[str, int]]:
    """Each selector as indexed look-ups: (WHERE clause, parameters, selector index, source or None), and
    the sources that a Hub dataset selector takes whole (source → lowest selector index)."""
    out: list[tuple[str, tuple, int, str | None]] = []
    whole: dict[str, int] = {}
    for i, sel in enumerate(selectors):
        match sel:
            case AccountSelector():
                owner = sel.owner.lower()
                out.append((_RANGE.format("gkey"), (owner + "\0", owner + "\1"), i, None))
            case RepositorySelector():
                repo = f"{sel.owner.lower()}\0{sel.repo.lower()}"
                out.append(("gkey = ?", (repo,), i, None))
                out.append((_RANGE.format("gkey"), (repo + "\0", repo + "\1"), i, None))
            case PathSelector():
                path = f"{sel.owner.lower()}\0{sel.repo.lower()}\0{sel.path}"
                out.append(("gkey = ?", (path,), i, None))
                out.append((_RANGE.format("gkey"), (path + "/", path + "0"), i, None))
            case UrlSelector():
                url = split_url(sel.url)
                key = url_key(url.host, url.port, url.path_key)
                out.append(("ukey = ? AND query = ?", (key, url.query), i, None))
                if sel.prefix:  # pages whose path lies below the folder (its own page: only if equal)
                    out.append((_RANGE.format("ukey"), (key + "/", key + "0"), i, None))
            case DomainSelector():
                rev = reverse_host(sel.host.lower())
                out.append((_RANGE.format("ukey"), (rev + "\0", rev + "\1"), i, None))
                out.append((_RANGE.format("ukey"), (rev + ".", rev + "/"), i, None))
            case HfDatasetSelector():
                dataset = (sel.org.lower(), sel.name.lower())
                out.append(("hf = ?", (f"{dataset[0]}/{dataset[1]}",), i, None))
                for s in sources:
                    if datasets.get(s) == dataset:
                        whole[s] = min(whole.get(s, i), i)
            case RecordSelector():
                out.append(("idx = ?", (sel.idx,), i, sel.source))
            case Sha256Selector():
                digest = bytes.fromhex(sel.digest)
                out.append(("substr(ch, 1, 8) = ? AND ch = ?", (digest[:8], digest), i, None))
                out.append(("substr(sha, 1, 8) = ? AND sha = ?", (digest[:8], digest), i, None))
    return out, whole


def match(
    ix: Index, sources: Sequence[str], selectors: Sequence[Selector], source_urls: dict[str, str | None]
) -> MatchResult:
    """`matching.match_records` over every record of `sources` (in that order), answered from the index:
    the same matches in the same order, counts, scanned and uncovered. Files the index does not serve are
    streamed through the same `Matcher`."""
    matcher = Matcher(selectors)
    datasets = {src: hf_dataset_of(origin_url(url)) for src, url in source_urls.items()}
    queries, whole = _queries(selectors, sources, datasets)
    best: dict[int, tuple[int, int, int, bytes]] = {}  # row id → (lowest selector, record_idx, flags, ch)
    for where, params, i, only in queries:
        rows = ix.conn.execute(f"SELECT id, idx, flags, ch FROM records WHERE {where}", params)
        for rid, idx, flags, ch in rows:
            f = ix.by_fid.get(rid >> LINE_BITS)
            if f is None or (only is not None and f.source != only):
                continue
            got = best.get(rid)
            if got is None or i < got[0]:
                best[rid] = (i, idx, flags, ch)
    per_file: dict[int, list[int]] = defaultdict(list)
    for rid in best:
        per_file[rid >> LINE_BITS].append(rid)
    needs_github = bool(matcher.accounts or matcher.repos or matcher.paths)
    result = MatchResult()
    for source in sources:
        needs_origin = bool(
            matcher.urls or matcher.domains or (matcher.datasets and datasets.get(source) is None)
        )
        whole_i = whole.get(source)
        for f in ix.files.get(source, ()):
            if not f.served:
                for rec in stream_file(f.path, source):
                    prov = rec.provenance
                    result.scanned[source] += 1
                    i, missing = matcher.judge(prov, rec.content_hash, datasets.get(source))
                    if i is not None:
                        result.matches.append((source, prov.record_idx, i))
                        result.hashes.append(rec.content_hash)
                        result.counts[source] += 1
                    elif missing:
                        result.uncovered[source].update(missing)
                continue
            if not f.n:
                continue
            result.scanned[source] += f.n
            if whole_i is not None:
                for rid, idx, ch in ix.conn.execute(
                    "SELECT id, idx, ch FROM records WHERE id BETWEEN ? AND ? ORDER BY id", (f.lo, f.hi)
                ):
                    got = best.get(rid)
                    result.matches.append((source, idx, whole_i if got is None else min(got[0], whole_i)))
                    result.hashes.append(ch.hex())
                result.counts[source] += f.n
                continue
            hits = sorted(per_file.get(f.fid, ()))  # type: ignore[arg-type]
            missing_gh = missing_path = missing_url = 0
            for rid in hits:
                i, idx, flags, ch = best[rid]
                result.matches.append((source, idx, i))
                result.hashes.append(ch.hex())
                missing_gh += flags & NO_GH
                missing_path += (flags & NO_PATH) >> 1
                missing_url += (flags & NO_URL) >> 2
            if hits:
                result.counts[source] += len(hits)
            left = {
                "github_identity": f.no_gh - missing_gh if needs_github else 0,
                "path": f.no_path - missing_path if matcher.paths else 0,
                "origin": f.no_url - missing_url if needs_origin else 0,
            }
            if any(left.values()):
                result.uncovered[source].update({k: v for k, v in left.items() if v})
    return result
