"""Checking recorded GitHub emulator exchanges against GitHub's published OpenAPI description.

The description is npm `@octokit/openapi` (`generated/api.github.com.deref.json`: every `$ref` inlined), which
`.ci/octokit` installs, pinned, into the git-ignored `.octokit/` of this repository. An exchange's operation is
found by method and path template (a `{param}` is one path segment; the last one may span several, as GitHub's
`{path}`, `{ref}` and `{basehead}` do); its JSON request body is validated against the operation's request
schema and its answer against the schema documented for its status code.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OCTOKIT = REPO / ".octokit" / "node_modules" / "@octokit"
DESCRIPTION = OCTOKIT / "openapi" / "generated" / "api.github.com.deref.json"
SUMMARY: list[str] = []
"""The conformance tests' figures, printed in the run's closing note (tests/conftest.py)."""
INSTALL = "bash .ci/octokit  (what .ci/run does: npm installs the pinned @octokit packages into .octokit/)"


def session_exchanges(service: str, at_least: int) -> list[Any]:
    """Everything the `service` emulator served in this test session (recorder.py), which must be the whole
    suite's: a test over it runs last, and fails, saying so, when only a part of the suite ran."""
    from kiki_bot.demo.emulators.recorder import RECORD_ENV, recorded

    folder = Path(os.environ[RECORD_ENV])
    exchanges = list(recorded(folder, service))
    assert len(exchanges) >= at_least, (
        f"only {len(exchanges)} {service} emulator exchanges were recorded in {folder}: this test checks what the "
        "whole suite made the emulator serve, so run it with the suite (`pytest`), where it runs last"
    )
    return exchanges


def octokit_file(relative: str) -> Path:
    """A file of the installed @octokit packages; a missing install is an error saying how to install."""
    path = OCTOKIT / relative
    if not path.exists():
        raise RuntimeError(f"{path} is missing: the npm @octokit packages are not installed; run {INSTALL}")
    return path


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    spec: dict[str, Any]

    def request_schema(self) -> dict[str, Any] | None:
        content = (self.spec.get("requestBody") or {}).get("content") or {}
        return (content.get("application/json") or {}).get("schema")

    def response(self, status: int) -> dict[str, Any] | None:
        """The documented answer for `status`, or None when GitHub documents no such status here."""
        responses = self.spec.get("responses") or {}
        found = responses.get(str(status))
        return found if found is not None else responses.get("default")


SLASHED = frozenset({"path", "ref", "basehead", "branch", "tag"})
"""Parameters GitHub matches across `/` when they end the path (a file path, `heads/x`, a branch `a/b`)."""


def _pattern(template: str, greedy_last: bool) -> re.Pattern[str]:
    parts = re.split(r"\{([^}]+)\}", template)
    regex = ""
    for i in range(0, len(parts), 2):
        regex += re.escape(parts[i])
        if i + 1 < len(parts):
            slashed = greedy_last and i + 2 == len(parts) - 1 and not parts[-1] and parts[i + 1] in SLASHED
            regex += ".+" if slashed else "[^/]+"
    return re.compile(regex)


class Description:
    """GitHub's REST API description: operations by method and path template."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self._operations: list[tuple[re.Pattern[str], re.Pattern[str], Operation]] = []
        for template, item in document["paths"].items():
            for method, spec in item.items():
                if isinstance(spec, dict) and "responses" in spec:
                    operation = Operation(method.upper(), template, spec)
                    self._operations.append((_pattern(template, False), _pattern(template, True), operation))

    def operation(self, method: str, path: str) -> Operation | None:
        """The operation serving `method path` (as sent: `%2F` stays inside its segment); segment-exact templates
        win, then the most literal one."""
        for greedy in (False, True):
            found = [
                op
                for exact, last, op in self._operations
                if op.method == method and (last if greedy else exact).fullmatch(path)
            ]
            if found:
                return max(found, key=lambda op: len(re.sub(r"\{[^}]+\}", "", op.template)))
        return None


@cache
def description() -> Description:
    return Description(json.loads(octokit_file("openapi/generated/api.github.com.deref.json").read_bytes()))


def as_github_means(schema: Any) -> Any:
    """The description read as GitHub's own tooling reads it (each listed with its reason):

    * `nullable: true` beside an `enum` admits null (OpenAPI 3.0.3's clarification; e.g. an open issue's
      `state_reason` is null), where the validator would check null against the enum;
    * `oneOf` is `anyOf`: GitHub's alternatives overlap (a 409's "basic-error" or an empty object both match
      any error body), so an answer that fits two of them is not wrong.
    """
    if isinstance(schema, list):
        return [as_github_means(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {("anyOf" if key == "oneOf" else key): as_github_means(value) for key, value in schema.items()}
    if schema.get("nullable") and isinstance(schema.get("enum"), list) and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]
    return schema


@cache
def _validator(schema_json: str) -> Any:
    from openapi_schema_validator import OAS30Validator, oas30_format_checker

    return OAS30Validator(as_github_means(json.loads(schema_json)), format_checker=oas30_format_checker)


def schema_errors(schema: dict[str, Any], value: Any) -> list[str]:
    """Every way `value` breaks `schema` (OpenAPI 3.0: `nullable`, ...), each as `at <json path>: <message>`."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    errors = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
    return [f"at {e.json_path}: {e.message[:300]}" for e in errors]


def media_schema(response: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    """(media type, schema) of a documented answer's JSON body; (None, None) when it documents no body."""
    content = response.get("content") or {}
    for media, spec in content.items():
        if "json" in media:
            return media, spec.get("schema")
    return (next(iter(content)), None) if content else (None, None)


@dataclass(frozen=True)
class Finding:
    method: str
    path: str
    template: str | None
    status: int
    part: str  # "route" | "request" | "response"
    problem: str

    def __str__(self) -> str:
        where = f"{self.method} {self.template or self.path} -> {self.status}"
        return f"{where} ({self.part}): {self.problem}"


def check(exchange: Any, api: Description) -> list[Finding]:
    """What about one recorded exchange (recorder.Exchange) GitHub's description does not allow."""
    operation = api.operation(exchange.method if exchange.method != "HEAD" else "GET", exchange.path)
    if operation is None:
        return [Finding(exchange.method, exchange.path, None, exchange.status, "route", "no such operation")]

    def finding(part: str, problem: str) -> Finding:
        return Finding(exchange.method, exchange.path, operation.template, exchange.status, part, problem)

    findings = []
    request_schema = operation.request_schema()
    if exchange.request is not None:
        if request_schema is None:
            findings.append(finding("request", "the operation takes no JSON body"))
        else:
            findings += [finding("request", e) for e in schema_errors(request_schema, exchange.request)]
    response = operation.response(exchange.status)
    if response is None:
        documented = ", ".join(operation.spec.get("responses") or {})
        return [*findings, finding("response", f"status not documented (documented: {documented})")]
    media, schema = media_schema(response)
    if media is None:
        if exchange.response_bytes:
            findings.append(finding("response", "a body where GitHub sends none"))
    elif exchange.method != "HEAD":
        if exchange.response is None:
            findings.append(finding("response", f"no JSON body where GitHub sends {media}"))
        elif schema is not None:
            findings += [finding("response", e) for e in schema_errors(schema, exchange.response)]
    return findings


def check_all(exchanges: Iterable[Any], api: Description) -> tuple[int, int, list[tuple[Any, Finding]]]:
    """(requests with a body validated, answers validated, each finding with its exchange), checking each
    distinct exchange once."""
    bodies = answers = 0
    findings: list[tuple[Any, Finding]] = []
    seen: set[bytes] = set()
    for exchange in exchanges:
        bodies += exchange.request is not None
        answers += 1
        key = json.dumps([exchange.method, exchange.path, exchange.status, exchange.request, exchange.response])
        digest = hashlib.sha256(key.encode()).digest()
        if digest not in seen:
            seen.add(digest)
            findings += [(exchange, finding) for finding in check(exchange, api)]
    return bodies, answers, findings
