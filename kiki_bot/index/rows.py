"""Rows of the provenance index: the fast line parser, which must equal `records.parse_line` (proven by
tests/test_index.py), and the named types the index hands to its callers."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from bisect import bisect_left
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from kiki_bot.core import licences
from kiki_bot.core.errors import BadInput
from kiki_bot.core.selectors import (
    WebUrl,
    github_file_of,
    hf_dataset_of,
    host_domain,
    norm_host,
    origin_url,
    registrable_domain,
)
from kiki_bot.repo.records import Provenance, iso_day, parse_line, record_text

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
    "notice",
)  # fmt: skip
# notice = the licence notices of the content (`licences.notices_in`), one a line; NULL when it carries none


class Hit(NamedTuple):
    """A row found by a look-up: where it was built (`rid`, `off`: see `IndexedFile.locate`), its key, content."""

    rid: int
    off: int
    length: int
    idx: int
    ch: bytes

    @property
    def content_hash(self) -> str:
        return self.ch.hex()


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
    if (uid := prov.get("upstream_id")) is not None and type(uid) not in (str, int):  # not kept: only checked
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


def authority_range(authority: str) -> tuple[str, str]:
    """The `ukey` range of every URL on `authority` (`WebUrl.authority`: `host`, `host:port`, `[v6]:port`)."""
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = authority.partition(":")
    lo = _host_key(host, int(port) if port else None)
    return lo, lo[:-1] + "\1"


def authority_of(ukey: str) -> str:
    """The `WebUrl.authority` of a row's `ukey`: what opt-out evidence names a host by."""
    rev, port, _ = ukey.split("\0", 2)
    host = reverse_host(rev)
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}" if port else host


def dataset_key(url: WebUrl | None) -> str | None:
    dataset = hf_dataset_of(url)
    return f"{dataset[0]}/{dataset[1]}" if dataset else None


def iter_rows(
    path: Path, source: str, digest: Any = None, start: tuple[int, int] = (0, 1)
) -> Iterator[tuple]:
    """One row per record of a data file, its values in `COLUMNS` order (row id = line number; plain
    tuples: this is the hot loop of a build), in line order, from byte `start[0]`
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
                text = record_text(payload)
                tb = len(text.encode("utf-8"))
                notice = "\n".join(licences.notices_in(text)) or None
            except Exception:  # noqa: BLE001  figures streams this file and raises it there
                tb = notice = None
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
                notice,
            )
            offset += length


# ---------------------------------------------------------------- the view callers use
@dataclasses.dataclass
class IndexedFile:
    """One data file of a refreshed source. `fid` is None when its rows are not served (no manifest
    match, a bad line, or content the index cannot hold): stream it with `records.iter_source_file`."""

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

    def where(self, rid: int, off: int) -> str:
        """`file:line` of the row now, for messages."""
        return f"{self.path}:{self.locate(rid, off)[0]}"



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

