"""Licence policy over SPDX expressions, and the mapping to the Hub's fixed licence ids."""

from __future__ import annotations

from functools import lru_cache

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


@lru_cache(maxsize=1)
def _licensing():
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


@lru_cache(maxsize=4096)
def parse(expression: str):
    """Parse an SPDX expression; raises ValueError naming the unknown ids or the syntax problem."""
    from license_expression import ExpressionError

    licensing = _licensing()
    try:
        parsed = licensing.parse(expression, validate=True, strict=True)
    except ExpressionError as exc:
        raise ValueError(f"not a valid SPDX expression: {exc}") from None
    if parsed is None:
        raise ValueError("empty licence expression")
    return parsed


@lru_cache(maxsize=4096)
def allowed(expression: str, allow: frozenset[str]) -> bool:
    """True when the expression can be satisfied with allowed licences: an OR needs one branch, an AND all."""
    from license_expression import AND, OR, LicenseWithExceptionSymbol

    allow_lower = {a.lower() for a in allow}

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
    """The Hub `license:` value for an SPDX id, and the `license_name` to add when it must be `other`."""
    hub = spdx.lower()
    return (hub, None) if hub in HUB_LICENSES else ("other", hub)
