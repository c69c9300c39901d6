"""Identifier lines of a removal request → typed, literal selectors (DESIGN.md section 3).

A line is parsed into exactly what it names, never more: there are no patterns, and anything that is not
one of the documented forms raises `InvalidSelector` with the reason (messages never echo the line, so they
are safe to post). `str(selector)` is the canonical, normalised form used in comments and the ledger, and
`parse_selector(str(sel)) == sel` holds for every selector.
"""

from __future__ import annotations

import ipaddress
import re
from functools import cache, lru_cache
from typing import Annotated, Literal, NamedTuple
from urllib.parse import quote, unquote, urlsplit

from publicsuffixlist import PublicSuffixList
from pydantic import BaseModel, ConfigDict, Field

from kiki_bot.core.errors import BadInput
from kiki_bot.core.provenance import Provenance

_LOGIN = re.compile(r"[A-Za-z0-9](?:-?[A-Za-z0-9])*")  # GitHub: alnum and single inner hyphens
_REPO = re.compile(r"[A-Za-z0-9._-]{1,100}")
_HF_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
_SOURCE_ID = re.compile(r"[A-Za-z0-9._-]+")
_HOST = re.compile(
    r"(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*"
)
_DIGITS = re.compile(r"[0-9]{1,18}")
_IPV4_END = re.compile(r"[0-9]+|0x[0-9a-f]*")
"""A host's last label that makes it an IPv4 address (the URL standard's "ends in a number"): 163.com is a domain."""
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_PATTERN_CHARS = "*?^$[]{}()|\\+"
GITHUB_HOSTS = frozenset({"github.com", "www.github.com"})
HF_HOSTS = frozenset({"huggingface.co", "www.huggingface.co"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


class InvalidSelector(BadInput):
    """An identifier line that is none of the accepted forms; `problem` says why in bot-authored words."""

    def __init__(self, problem: str) -> None:
        super().__init__("", problem)


class _Selector(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @property
    def owner_login(self) -> str | None:
        """The GitHub login whose content this selector names (self-approval policy); None if not GitHub content."""
        return None


class AccountSelector(_Selector):
    kind: Literal["account"] = "account"
    owner: str

    @property
    def owner_login(self) -> str:
        return self.owner

    def __str__(self) -> str:
        return f"https://github.com/{self.owner}"


class RepositorySelector(_Selector):
    kind: Literal["repository"] = "repository"
    owner: str
    repo: str

    @property
    def owner_login(self) -> str:
        return self.owner

    def __str__(self) -> str:
        return f"https://github.com/{self.owner}/{self.repo}"


class PathSelector(_Selector):
    """A file (`blob`) or folder (`tree`) in a repository, at every revision: the ref is not kept."""

    kind: Literal["path"] = "path"
    owner: str
    repo: str
    path: str
    is_tree: bool

    @property
    def owner_login(self) -> str:
        return self.owner

    def __str__(self) -> str:
        return (
            f"https://github.com/{self.owner}/{self.repo}/{'tree' if self.is_tree else 'blob'}/HEAD/"
            f"{quote(self.path, safe='/')}"
        )


class UrlSelector(_Selector):
    """A page; with `prefix` (the URL ends in `/`) also everything below it."""

    kind: Literal["url"] = "url"
    url: str
    prefix: bool

    def __str__(self) -> str:
        return self.url


class DomainSelector(_Selector):
    kind: Literal["domain"] = "domain"
    host: str

    def __str__(self) -> str:
        return f"domain:{self.host}"


class HfDatasetSelector(_Selector):
    kind: Literal["hf_dataset"] = "hf_dataset"
    org: str
    name: str

    def __str__(self) -> str:
        return f"hf:datasets/{self.org}/{self.name}"


class RecordSelector(_Selector):
    kind: Literal["record"] = "record"
    source: str
    idx: int

    def __str__(self) -> str:
        return f"record:{self.source}#{self.idx}"


class Sha256Selector(_Selector):
    kind: Literal["sha256"] = "sha256"
    digest: str

    def __str__(self) -> str:
        return f"sha256:{self.digest}"


Selector = Annotated[
    AccountSelector
    | RepositorySelector
    | PathSelector
    | UrlSelector
    | DomainSelector
    | HfDatasetSelector
    | RecordSelector
    | Sha256Selector,
    Field(discriminator="kind"),
]


class WebUrl(NamedTuple):
    """An http(s) URL split and normalised per DESIGN.md: scheme/host lower-cased, default port and fragment gone."""

    scheme: str
    host: str
    port: int | None
    path: str
    query: str

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def path_key(self) -> str:
        """The path as compared: percent-decoded, one trailing `/` ignored."""
        return decode_path(self.path).removesuffix("/")

    @property
    def key(self) -> tuple[str, str, str]:
        """What equality compares: http and https alike, trailing `/` ignored, query kept."""
        return (self.authority, self.path_key, self.query)

    @property
    def is_folder(self) -> bool:
        """A folder URL (its decoded path ends in `/`, no query) also covers the pages below its path."""
        return decode_path(self.path).endswith("/") and not self.query

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority}{self.path}{'?' + self.query if self.query else ''}"


@lru_cache(maxsize=4096)
def norm_host(host: str) -> str | None:
    """Lower-cased ASCII (IDNA) host without a trailing dot, or None when it is not a host name or IP."""
    host = host.lower().removesuffix(".")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if _HOST.fullmatch(host):
        return host
    try:
        return str(ipaddress.IPv6Address(host))
    except ValueError:
        return None


def split_url(text: str) -> WebUrl:
    """Normalise an http(s) URL or raise `InvalidSelector` saying what is wrong with it."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise InvalidSelector("not a well-formed URL (bad host or port)") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidSelector("only http:// and https:// URLs are accepted")
    if "@" in parts.netloc:
        raise InvalidSelector("URLs with a user name or password (`user@host`) are not accepted")
    host = norm_host(parts.hostname or "")
    if host is None:
        raise InvalidSelector("the URL has no valid host name")
    if port == _DEFAULT_PORTS[scheme]:
        port = None
    return WebUrl(scheme, host, port, parts.path, parts.query)


def origin_url(origin: str | None) -> WebUrl | None:
    """A record's `origin` as a normalised URL, or None when it is absent or not an http(s) URL."""
    if not origin:
        return None
    try:
        return split_url(origin)
    except InvalidSelector:
        return None


def decode_path(path: str) -> str:
    """A URL path percent-decoded, as DESIGN.md compares paths; bytes that are not UTF-8 keep it literal."""
    if "%" not in path:
        return path
    try:
        return unquote(path, errors="strict")
    except UnicodeDecodeError:
        return path


def _segments(path: str) -> list[str]:
    """URL path → segments of the percent-decoded path (so `%2F` separates); one trailing `/` is ignored."""
    segs = decode_path(path).removeprefix("/").split("/")
    return segs[:-1] if segs[-1] == "" else segs


def _bad_segment(segments: list[str]) -> str | None:
    """Why a decoded path cannot be compared literally (an empty, `.` or `..` segment), or None."""
    if "" in segments:
        return "the URL has an empty path segment (`//`) after percent-decoding"
    if "." in segments or ".." in segments:
        return "the URL path has a `.` or `..` segment after percent-decoding; give the path without them"
    return None


def github_identity(prov: Provenance) -> tuple[str, str, str | None] | None:
    """(owner, repo) lower-cased and the exact path (or None) of a record's GitHub content.

    From `repo`/`path` when set, else from an origin `github.com/<owner>/<repo>/blob|tree/<ref>/<path>`.
    """
    if prov.repo:
        owner, repo = prov.repo.split("/")
        return owner.lower(), repo.lower(), prov.path
    return github_file_of(origin_url(prov.origin))


def github_file_of(url: WebUrl | None) -> tuple[str, str, str] | None:
    """(owner, repo) lower-cased and the path of a `github.com/<owner>/<repo>/blob|tree/<ref>/<path>` URL."""
    if url is None or url.authority not in GITHUB_HOSTS:
        return None
    segs = _segments(url.path)
    if len(segs) < 5 or segs[2] not in ("blob", "tree") or _bad_segment(segs):
        return None
    if not (_valid_login(segs[0]) and _valid_repo(segs[1])):
        return None
    return segs[0].lower(), segs[1].lower(), "/".join(segs[4:])


def hf_dataset_of(url: WebUrl | None) -> tuple[str, str] | None:
    """(org, name) lower-cased when the URL is a Hugging Face dataset or lies below one."""
    if url is None or url.authority not in HF_HOSTS:
        return None
    segs = _segments(url.path)
    if (
        len(segs) < 3
        or segs[0] != "datasets"
        or not (_HF_NAME.fullmatch(segs[1]) and _HF_NAME.fullmatch(segs[2]))
    ):
        return None
    return segs[1].lower(), segs[2].lower()


def _valid_login(name: str) -> bool:
    return len(name) <= 39 and bool(_LOGIN.fullmatch(name))


def _valid_repo(name: str) -> bool:
    return bool(_REPO.fullmatch(name)) and name not in (".", "..")


def _login(text: str) -> str:
    if not text:
        raise InvalidSelector("the GitHub owner is empty")
    if "." in text:
        raise InvalidSelector(
            "looks like a host name, not a GitHub login: write `domain:<host>` for a whole web domain "
            "or the full https:// URL of a page"
        )
    if not _valid_login(text):
        raise InvalidSelector(
            "not a valid GitHub login (letters, digits and single hyphens, at most 39 characters)"
        )
    return text.lower()


def _repo(text: str) -> str:
    name = text.removesuffix(".git")
    if not name:
        raise InvalidSelector("the repository name is empty")
    if not _valid_repo(name):
        raise InvalidSelector("not a valid repository name (letters, digits, `.`, `_` and `-`)")
    return name.lower()


def _github(url: WebUrl) -> AccountSelector | RepositorySelector | PathSelector | UrlSelector:
    segs = _segments(url.path)
    if not segs:
        raise InvalidSelector(
            "names all of GitHub: give an account (`https://github.com/<owner>`) or a repository"
        )
    if len(segs) == 1:
        return AccountSelector(owner=_login(segs[0]))
    owner, repo = _login(segs[0]), _repo(segs[1])
    if len(segs) == 2:
        return RepositorySelector(owner=owner, repo=repo)
    if segs[2] not in ("blob", "tree"):
        return UrlSelector(url=str(url), prefix=url.is_folder)
    if len(segs) == 3:
        raise InvalidSelector(f"a `/{segs[2]}/` URL needs a branch, tag or commit after `{segs[2]}/`")
    if len(segs) == 4 and segs[2] == "tree":
        return RepositorySelector(owner=owner, repo=repo)
    if len(segs) == 4:
        raise InvalidSelector("a `/blob/` URL needs a path after the branch, tag or commit")
    return PathSelector(owner=owner, repo=repo, path="/".join(segs[4:]), is_tree=segs[2] == "tree")


def _hf_url(url: WebUrl) -> HfDatasetSelector | UrlSelector:
    """The dataset's own URL (or its `/tree/<ref>` root) is the dataset; any deeper URL — a file, a folder, a
    viewer page or row — stays that literal URL: a request is never widened beyond what it names."""
    segs = _segments(url.path)
    if len(segs) < 3:
        raise InvalidSelector("a dataset URL needs `/datasets/<org>/<name>`")
    dataset = hf_dataset_of(url)
    if dataset is None:
        raise InvalidSelector("not a valid dataset name (`/datasets/<org>/<name>`)")
    rest = segs[3:]
    if url.query or not (not rest or (rest[0] == "tree" and len(rest) == 2)):
        return UrlSelector(url=str(url), prefix=url.is_folder)
    return HfDatasetSelector(org=dataset[0], name=dataset[1])


def _url(text: str) -> Selector:
    """Any URL; its path is compared literally after percent-decoding, so a path that decoding or a server
    would rewrite (an empty, `.` or `..` segment) is refused here rather than accepted and refused later."""
    url = split_url(text)
    problem = _bad_segment(_segments(url.path))
    if problem:
        raise InvalidSelector(problem)
    if url.authority in GITHUB_HOSTS:
        return _github(url)
    if url.authority in HF_HOSTS and _segments(url.path)[:1] == ["datasets"]:
        return _hf_url(url)
    return UrlSelector(url=str(url), prefix=url.is_folder)


@cache
def _public_suffixes() -> PublicSuffixList:
    """The one Public Suffix List (loading it takes a while): `domain:` checks and registrable domains."""
    return PublicSuffixList()


@lru_cache(maxsize=65536)
def registrable_domain(url: str) -> str | None:
    """The registrable domain (public suffix list) of a URL's host: how the card counts crawled domains."""
    return host_domain((urlsplit(url).hostname or "").lower())


@lru_cache(maxsize=65536)
def host_domain(hostname: str) -> str | None:
    """`registrable_domain` of a URL whose `urlsplit(...).hostname`, lower-cased, is `hostname`."""
    if not hostname:
        return None
    return _public_suffixes().privatesuffix(hostname) or hostname


def _domain(text: str) -> DomainSelector:
    host = norm_host(text)
    if host is None or ":" in host:
        raise InvalidSelector(
            "`domain:` needs a host name such as `domain:example.com` (no scheme, port or path)"
        )
    if _IPV4_END.fullmatch(host.rsplit(".", 1)[-1]):  # the URL standard reads such a host as an IPv4 address
        raise InvalidSelector(
            "an IP address is not a domain: `domain:` takes a host name whose last label is not a number; "
            "give the full URL of a page on an IP address"
        )
    if _public_suffixes().is_public(host):  # every single label is one: a domain has at least one dot
        raise InvalidSelector(
            "`domain:` names a public suffix shared by many owners; name a registrable domain"
        )
    return DomainSelector(host=host)


def _hf(text: str) -> HfDatasetSelector:
    segs = text.removesuffix("/").split("/")
    if len(segs) != 3 or segs[0] != "datasets":
        raise InvalidSelector("expected `hf:datasets/<org>/<name>` (only datasets)")
    if not (_HF_NAME.fullmatch(segs[1]) and _HF_NAME.fullmatch(segs[2])):
        raise InvalidSelector("not a valid dataset name in `hf:datasets/<org>/<name>`")
    return HfDatasetSelector(org=segs[1].lower(), name=segs[2].lower())


def _record(text: str) -> RecordSelector:
    source, sep, idx = text.rpartition("#")
    if not sep or not _SOURCE_ID.fullmatch(source) or source in (".", ".."):
        raise InvalidSelector(
            "expected `record:<source-id>#<record_idx>` with a source id of letters, digits, `.`, `_`, `-`"
        )
    if not _DIGITS.fullmatch(idx):
        raise InvalidSelector("the record index after `#` must be a non-negative whole number")
    return RecordSelector(source=source, idx=int(idx))


def _sha256(text: str) -> Sha256Selector:
    if not _HEX64.fullmatch(text):
        raise InvalidSelector("expected `sha256:` followed by exactly 64 hexadecimal digits")
    return Sha256Selector(digest=text.lower())


_PREFIXED = {"sha256:": _sha256, "record:": _record, "domain:": _domain, "hf:": _hf}


def parse_selector(line: str) -> Selector:
    """One identifier line → its selector; raises `InvalidSelector` (with why) for anything else."""
    text = line.strip()
    if not text:
        raise InvalidSelector("empty identifier")
    if any(c.isspace() for c in text):
        raise InvalidSelector(
            "contains spaces: put one identifier per line, without list markers or comments"
        )
    if "*" in text:
        raise InvalidSelector("wildcards are not accepted; a URL ending in `/` covers everything below it")
    lower = text.lower()
    for prefix, parse in _PREFIXED.items():
        if lower.startswith(prefix):
            return parse(text[len(prefix) :])
    if lower.startswith("git@"):
        host, _, rest = text[4:].partition(":")
        segs = rest.split("/")
        if host.lower() not in GITHUB_HOSTS or len(segs) != 2:
            raise InvalidSelector("expected `git@github.com:<owner>/<repo>.git`")
        return RepositorySelector(owner=_login(segs[0]), repo=_repo(segs[1]))
    if "://" in text:
        return _url(text)
    bad = sorted({c for c in text if c in _PATTERN_CHARS})
    if bad:
        raise InvalidSelector(
            f"contains pattern characters ({' '.join(bad)}): identifiers are literal, not wildcards or regular expressions"
        )
    if lower in GITHUB_HOSTS or lower.startswith(tuple(h + "/" for h in GITHUB_HOSTS)):
        raise InvalidSelector(
            "write GitHub identifiers as `<owner>`, `<owner>/<repo>` or a full https://github.com/ URL"
        )
    segs = text.split("/")
    if len(segs) == 1:
        return AccountSelector(owner=_login(text))
    if len(segs) == 2:
        return RepositorySelector(owner=_login(segs[0]), repo=_repo(segs[1]))
    raise InvalidSelector(
        "not an identifier: `<owner>/<repo>` has one `/`; give files and folders as full URLs"
    )
