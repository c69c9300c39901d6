"""What the index answers besides matching: records by key or content hash (purge, figures), a file's
figures from its aggregates, and the rows the eligibility rule does not simply use (`judge`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from kiki_bot.core.eligibility import Rule, Verdict
from kiki_bot.index.rows import LINE_BITS, FileFigures, Hit, IndexedFile, authority_of, authority_range
from kiki_bot.index.schema import transaction
from kiki_bot.index.store import Index
from kiki_bot.repo.records import Record, parse_line

_HIT = "r.id, r.off, r.len, r.idx, r.ch"


def lookup(ix: Index, idxs: dict[str, Iterable[int]], hashes: Iterable[str] = ()) -> dict[int, list[Hit]]:
    """Rows of served files whose (source, record_idx) is asked in `idxs` or whose content hash is in
    `hashes`, per file id, each list in line order."""
    wanted = {s: set(v) for s, v in idxs.items() if v}
    found: dict[int, dict[int, Hit]] = defaultdict(dict)
    every = sorted({i for v in wanted.values() for i in v})
    if every:
        ix.temp("q_idx", "idx INTEGER PRIMARY KEY", ((i,) for i in every))
        for row in ix.conn.execute(f"SELECT {_HIT} FROM temp.q_idx q CROSS JOIN records r ON r.idx = q.idx"):
            hit = Hit(*row)
            f = ix.by_fid.get(hit.rid >> LINE_BITS)
            if f is not None and hit.idx in wanted.get(f.source, ()):
                found[f.fid][hit.rid] = hit  # type: ignore[index]
    digests = sorted({bytes.fromhex(h) for h in hashes})
    if digests:
        ix.temp("q_ch", "ch BLOB PRIMARY KEY, p BLOB", ((d, d[:8]) for d in digests))
        sql = f"SELECT {_HIT} FROM temp.q_ch q CROSS JOIN records r ON substr(r.ch, 1, 8) = q.p AND r.ch = q.ch"
        for row in ix.conn.execute(sql):
            hit = Hit(*row)
            f = ix.by_fid.get(hit.rid >> LINE_BITS)
            if f is not None:
                found[f.fid][hit.rid] = hit  # type: ignore[index]
    return {fid: [hits[k] for k in sorted(hits)] for fid, hits in found.items()}


def read_record(f: IndexedFile, hit: Hit) -> Record:
    """Parse one indexed record from its file (the file verified at refresh; the lock is held)."""
    line, offset = f.locate(hit.rid, hit.off)
    with open(f.path, "rb") as fh:
        fh.seek(offset)
        raw = fh.read(hit.length)
    return parse_line(raw, f.path, line, offset)


def _excluding(ix: Index, ids: Iterable[int]) -> str:
    """A condition leaving out the rows `ids` (filled into a temporary table, so any number of them)."""
    ix.temp("q_ex", "id INTEGER PRIMARY KEY", ((i,) for i in ids))
    return " AND id NOT IN (SELECT id FROM temp.q_ex)"


def file_figures(ix: Index, f: IndexedFile, exclude: Sequence[int] = ()) -> FileFigures:
    """The file's figures over its records, leaving out the rows `exclude` (ids)."""
    conn = ix.conn
    if not exclude:
        return FileFigures(
            f.n, f.tb, f.tok, f.min_day, f.max_day, f.no_origin,
            dict(conn.execute("SELECT lic, n FROM file_licenses WHERE fid = ?", (f.fid,)).fetchall()),
            dict(conn.execute("SELECT dom, bytes FROM file_domains WHERE fid = ?", (f.fid,)).fetchall()),
        )  # fmt: skip
    where = _excluding(ix, exclude)
    out = FileFigures(0, 0, 0, None, None, 0, {}, {})
    for lic, dom, n, tb, tok, lo_day, hi_day, no_origin in conn.execute(
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


def tokens(ix: Index, f: IndexedFile, tokenizer: str) -> int | None:
    """Tokens of every record of the file counted with the tokenizer whose file has SHA-256 `tokenizer`."""
    row = ix.conn.execute(
        "SELECT tokens FROM file_tokens WHERE fid = ? AND tokenizer = ?", (f.fid, tokenizer)
    ).fetchone()
    return None if row is None else row[0]


def set_tokens(ix: Index, f: IndexedFile, tokenizer: str, count: int) -> None:
    with transaction(ix.conn):
        ix.conn.execute("INSERT OR REPLACE INTO file_tokens VALUES (?, ?, ?)", (f.fid, tokenizer, count))


# ---------------------------------------------------------------- the eligibility rule over a file's rows
class Refused(NamedTuple):
    """A row the rule refuses (licence outside the policy, reserved origin), where it was built."""

    rid: int
    off: int
    verdict: Verdict
    lic: str
    host: str | None
    day: dt.date
    notices: tuple[str, ...] = ()


@dataclasses.dataclass
class Judged:
    """The rows of one served file that the rule does not simply use, each list in line order."""

    removed: list[tuple[Hit, Verdict]]  # left out: purged or reappeared
    refused: list[Refused]

    @property
    def skip(self) -> list[int]:
        return [hit.rid for hit, _ in self.removed]


def judge(ix: Index, f: IndexedFile, rule: Rule, hits: Sequence[Hit]) -> Judged:
    """`rule.verdict` of every row of `f` that it does not simply use, asked only of the rows that can be
    anything else: `hits` (its rows that `lookup` found for the rule's removals), the rows with a licence
    outside the policy, the rows whose content carries a licence notice, the rows whose origin host has a
    reservation on record."""
    removed = [(hit, rule.removal(f.source, hit.idx, hit.content_hash)) for hit in hits]
    judged = Judged([(hit, v) for hit, v in removed if v is not None], [])
    where = _excluding(ix, judged.skip)
    licences = ix.conn.execute("SELECT lic FROM file_licenses WHERE fid = ?", (f.fid,)).fetchall()
    if refused := [lic for (lic,) in licences if not rule.licence_ok(lic)]:
        ix.temp("q_lic", "lic TEXT PRIMARY KEY", ((lic,) for lic in refused))
        for rid, off, lic, day in ix.conn.execute(
            "SELECT id, off, lic, day FROM records WHERE id BETWEEN ? AND ?"
            f" AND lic IN (SELECT lic FROM temp.q_lic){where} ORDER BY id",
            (f.lo, f.hi),
        ):
            judged.refused.append(Refused(rid, off, Verdict.LICENCE, lic, None, dt.date.fromordinal(day)))
    seen = {r.rid for r in judged.refused}
    for rid, off, lic, day, notice in ix.conn.execute(
        "SELECT id, off, lic, day, notice FROM records WHERE id BETWEEN ? AND ?"
        f" AND notice IS NOT NULL{where} ORDER BY id",
        (f.lo, f.hi),
    ):
        notices = tuple(notice.split("\n"))
        if rid not in seen and rule.uncovered(notices, lic):
            judged.refused.append(Refused(rid, off, Verdict.NOTICE, lic, None, dt.date.fromordinal(day), notices))
    if hosts := rule.reserved_hosts(f.source):
        ranges = (authority_range(h) for h in sorted(hosts))
        ix.temp("q_host", "lo TEXT PRIMARY KEY, hi TEXT", ranges)
        seen = {r.rid for r in judged.refused}
        for rid, off, lic, day, ukey in ix.conn.execute(
            "SELECT r.id, r.off, r.lic, r.day, r.ukey FROM temp.q_host q CROSS JOIN records r"
            f" ON r.ukey >= q.lo AND r.ukey < q.hi WHERE r.id BETWEEN ? AND ?{where}",
            (f.lo, f.hi),
        ):
            host = authority_of(ukey)
            when = dt.date.fromordinal(day)
            if rid not in seen and rule.reserved(f.source, host, when):
                judged.refused.append(Refused(rid, off, Verdict.RESERVED, lic, host, when))
    judged.refused.sort()
    return judged

