"""Licence policy over SPDX expressions, and the mapping to the Hub's fixed licence ids."""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator

# The Hub accepts only these `license:` values (hub-docs repositories-licenses.md); anything else is `other`.
HUB_LICENSES = frozenset(
    """apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0
    bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc
    cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0
    cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0
    cdla-sharing-1.0 cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1
    eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc h-research intel-research lppl-1.3c
    ms-pl apple-ascl apple-amlr mpl-2.0 odc-by odbl openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib
    pddl lgpl-lr deepfloyd-if-license fair-noncommercial-research-license llama2 llama3 llama3.1 llama3.2
    llama3.3 llama4 gemma unknown other""".split()
)


# SPDX lets anyone name a licence outside the list as LicenseRef-<idstring>, optionally in another document.
_LICENSE_REF = re.compile(r"^(DocumentRef-[A-Za-z0-9.-]+:)?LicenseRef-[A-Za-z0-9.-]+$")


# license-expression builds its parser lazily and not thread-safely: threads parsing a first expression at
# once get AttributeErrors or wrong "not valid" verdicts. Records are validated in threads (concurrent runs).
_PARSING = threading.Lock()


@lru_cache(maxsize=1)
def _licensing():
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


@lru_cache(maxsize=1)
def _suggestible() -> tuple[str, ...]:
    """The SPDX licence ids a "did you mean" may propose (no exceptions, none of the shipped LicenseRefs)."""
    return tuple(k for k, s in _licensing().known_symbols.items()
                 if not s.is_exception and not k.startswith("LicenseRef-"))


def _unknown(key: str) -> str:
    from kiki_bot.core.errors import did_you_mean

    if key.lower() in HUB_LICENSES:  # e.g. llama3, gemma: Hub ids that SPDX does not list
        return f"`{key}` is not an SPDX licence id (write the Hub's `{key.lower()}` licence as LicenseRef-{key})"
    hint = did_you_mean(key, _suggestible())
    return f"`{key}` is not an SPDX licence id " + (
        f"({hint})" if hint else "(a licence outside the SPDX list is written LicenseRef-<name>)")


@lru_cache(maxsize=4096)
def parse(expression: str):
    """Parse an SPDX expression whose every id is on the SPDX list (or a LicenseRef-); raises ValueError
    in kiki-bot's words, with a "did you mean" for an unknown id."""
    from license_expression import ExpressionError

    with _PARSING:
        licensing = _licensing()
        try:
            parsed = licensing.parse(expression, validate=False, strict=True)
        except ExpressionError as exc:
            raise ValueError(f"`{expression}` is not a valid SPDX licence expression ({exc})") from None
        symbols = licensing.license_symbols(parsed, decompose=True) if parsed is not None else []
    if parsed is None:
        raise ValueError("empty licence expression: expected an SPDX id such as MIT, or an expression")
    for symbol in symbols:
        if symbol.key not in licensing.known_symbols and not _LICENSE_REF.match(symbol.key):
            raise ValueError(_unknown(symbol.key))
    return parsed


def _expression(text: str) -> str:
    parse(text)
    return text


def _licence_id(text: str) -> str:
    from license_expression import LicenseSymbol

    if isinstance(parse(text), LicenseSymbol):
        return text
    raise ValueError(f"`{text}` is an expression: expected one SPDX licence id such as MIT")


@lru_cache(maxsize=4096)
def valid(text: str) -> bool:
    """Whether `text` is an SPDX expression `Expression` accepts (the index's fast path asks per record)."""
    try:
        parse(text)
    except ValueError:
        return False
    return True


# The field types of licences: every file that names one validates it where it is written.
Expression = Annotated[str, AfterValidator(_expression)]
LicenceId = Annotated[str, AfterValidator(_licence_id)]


@lru_cache(maxsize=4096)
def allowed(expression: str, allow: frozenset[str]) -> bool:
    """True when the expression can be satisfied with allowed licences: an OR needs one branch, an AND all."""
    from license_expression import AND, OR, LicenseWithExceptionSymbol

    allow_lower = {parse(a).key.lower() for a in allow}  # as parsed: GPL-2.0 is GPL-2.0-only

    def ok(node) -> bool:
        if isinstance(node, AND):
            return all(ok(a) for a in node.args)
        if isinstance(node, OR):
            return any(ok(a) for a in node.args)
        if isinstance(node, LicenseWithExceptionSymbol):
            return node.license_symbol.key.lower() in allow_lower
        return node.key.lower() in allow_lower

    return ok(parse(expression))


def hub_license(spdx: str) -> tuple[str, str | None]:
    """The Hub `license:` value for an SPDX id (or LicenseRef-<Hub id>), and the `license_name` to add when
    it must be `other`."""
    hub = spdx.lower().removeprefix("licenseref-")  # LicenseRef-llama3 is the Hub's llama3
    return (hub, None) if hub in HUB_LICENSES else ("other", hub)


# ---------------------------------------------------------------- licence evidence in the content itself
_SPDX_LINE = re.compile(r"SPDX-License-Identifier:[ \t]*(.*?)[ \t]*(?:\*/|-->|\n|$)")
SPDX_NOTICE = "SPDX-License-Identifier: "
# Recognisable notices without an SPDX line, by the licence-id prefix a declared licence must start with to
# cover it (the GPL's pattern needs "GNU General", so the Lesser and Affero GPLs' names do not match it).
_NOTICES = {
    "AGPL": (re.compile(r"GNU\s+Affero\s+General\s+Public\s+License", re.I), "the GNU Affero GPL"),
    "LGPL": (re.compile(r"GNU\s+(?:Lesser|Library)\s+General\s+Public\s+License", re.I), "the GNU Lesser GPL"),
    "GPL": (re.compile(r"GNU\s+General\s+Public\s+License", re.I), "the GNU GPL"),
    "Apache": (re.compile(r"Licensed\s+under\s+the\s+Apache\s+License", re.I), "the Apache License"),
    "MPL": (re.compile(r"Mozilla\s+Public\s+License", re.I), "the Mozilla Public License"),
    "MIT": (re.compile(r"Permission\s+is\s+hereby\s+granted,\s+free\s+of\s+charge", re.I), "the MIT licence"),
    "BSD": (re.compile(r"Redistribution\s+and\s+use\s+in\s+source\s+and\s+binary\s+forms", re.I), "a BSD licence"),
    # Creative Commons restrictions (CC-BY-NC-*, CC-BY-ND-*); NC-ND is NonCommercial first, as its id is
    "CC-BY-NC": (re.compile(r"\bCC[-\s]BY[-\s]NC\b|Creative\s+Commons\s+Attribution[-\s]+Non[-\s]?Commercial", re.I),
                 "a Creative Commons NonCommercial licence"),
    "CC-BY-ND": (re.compile(r"\bCC[-\s]BY[-\s]ND\b|Creative\s+Commons\s+Attribution[-\s]+No[-\s]?Deriv", re.I),
                 "a Creative Commons NoDerivatives licence"),
}
_COMMENT_BREAK = re.compile(r"\s*\n\s*(?:\*(?!/)|//+|#+|;+|--+)?\s*")
# A cheap first look: content with none of these carries no notice (most records; the index asks every one).
_HINT = re.compile(r"SPDX-License-Identifier|General\s+Public|Apache\s+License|Mozilla\s+Public|"
                   r"hereby\s+granted|Redistribution\s+and\s+use|CC[-\s]BY|Creative\s+Commons", re.I)


def notices_in(text: str) -> tuple[str, ...]:
    """The licence notices a record's content carries, each once: `SPDX-License-Identifier: <expression>` as
    written, or the family (`GPL`, `Apache`, ...) of a notice's wording. Whether the record's declared licence
    covers them is the eligibility rule's question (`uncovered`)."""
    if not _HINT.search(text):
        return ()
    found = [SPDX_NOTICE + m.group(1).strip() for m in _SPDX_LINE.finditer(text)]
    flat = _COMMENT_BREAK.sub(" ", _SPDX_LINE.sub("\n", text))
    found += [family for family, (pattern, _) in _NOTICES.items() if pattern.search(flat)]
    return tuple(dict.fromkeys(found))


def _keys(expression: str) -> frozenset[str]:
    parsed = parse(expression)
    with _PARSING:
        symbols = _licensing().license_symbols(parsed, decompose=True)
    return frozenset(s.key for s in symbols)


def uncovered(notices: tuple[str, ...], declared: str) -> list[str]:
    """The `notices` (`notices_in`) that the declared licence does not cover, one phrase each.

    An `SPDX-License-Identifier:` expression is covered when it can be satisfied with the declared licences
    alone; a notice without one (GPL, Apache, MIT, BSD, MPL, CC BY-NC/ND wording) when a declared id is of its
    family.
    The content's own notice is evidence: a record that says GPL is not MIT because its provenance says so."""
    keys = _keys(declared)
    found: list[str] = []
    for notice in notices:
        if notice.startswith(SPDX_NOTICE):
            try:
                covered = allowed(notice.removeprefix(SPDX_NOTICE), keys)
            except ValueError:
                found.append(f"an `{notice}` line that is no valid SPDX expression")
                continue
            if not covered:
                found.append(f"an `{notice}` line")
        elif not any(k.lower().startswith(notice.lower()) for k in keys):
            found.append(f"a notice of {_NOTICES[notice][1]}")
    return found
