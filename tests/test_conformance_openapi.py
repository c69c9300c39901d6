"""The GitHub emulator answers as GitHub's published API description says GitHub answers (issue 14, point 3).

Every request the suite makes of the GitHub emulator is recorded (kiki_bot/demo/emulators/recorder.py; the
recording starts in tests/emulator_fixtures.py). `test_everything_the_emulator_served_is_what_github_describes`
runs last (tests/conftest.py orders it so) and validates each JSON request body and each answer against
npm `@octokit/openapi`'s `generated/api.github.com.deref.json`. What the description does not say, though
GitHub does it, is listed below with its reason; the goal is none. The closing summary of the run gives the
counts.
"""

from __future__ import annotations

import re

from openapi_conformance import (
    SUMMARY,
    Description,
    Finding,
    check_all,
    description,
    media_schema,
    schema_errors,
    session_exchanges,
)

from kiki_bot.demo.emulators import GitHubEmulator
from kiki_bot.demo.emulators.recorder import Exchange

ANY_OPERATION: dict[str, tuple[tuple[int, ...], str]] = {
    "Resource not accessible by integration": ((403,), "a job token outside its permissions: GitHub answers this "
    "403 to any operation (docs: permissions required for GitHub Apps); the description lists it on few"),
    "API rate limit exceeded": ((403, 429), "the primary rate limit, which GitHub may answer to any request "
    "(docs: rate limits for the REST API); tests ask for it with GitHubEmulator.refuse_next"),
    "You have exceeded a secondary rate limit": ((403, 429), "the secondary rate limit, likewise"),
    "Server Error": ((500, 502, 503, 504), "a server error, which GitHub may answer to any request; tests ask for "
    "it with GitHubEmulator.refuse_next to prove that idempotent calls are retried"),
}
"""Error message -> (statuses, why): answers GitHub may give to any operation, whatever it documents. Such an
answer is validated against GitHub's basic-error body."""

UNDOCUMENTED_ERRORS: dict[tuple[str, str, int], str] = {
    ("POST", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", 404): "an unknown workflow: "
    "GitHub's 404 Not Found, which the description leaves out here",
    ("POST", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", 422): "a workflow without the "
    "`workflow_dispatch` trigger, or inputs it does not declare: GitHub's 422 (its docs for this operation say "
    "so), which the description leaves out",
    ("DELETE", "/repos/{owner}/{repo}/issues/comments/{comment_id}", 404): "a comment already deleted: GitHub's "
    "404 Not Found, which the description leaves out here",
}
"""(method, path template, status) -> why GitHub answers it though the operation does not list the status.
Such an answer is validated against GitHub's basic-error body."""

BARE_LABEL_ARRAY = (
    "a bare JSON array of label names, which the operation's own description accepts ('You can also pass an "
    "`array` of labels directly') but its schema leaves out; PyGithub's Issue.add_to_labels/set_labels send it"
)
LABEL_BODIES = {("POST", "/repos/{owner}/{repo}/issues/{issue_number}/labels"),
                ("PUT", "/repos/{owner}/{repo}/issues/{issue_number}/labels")}


def _basic_error(api: Description) -> dict:
    operation = api.operation("GET", "/repos/o/r")
    assert operation is not None and (response := operation.response(404)) is not None
    _, schema = media_schema(response)
    assert schema is not None
    return schema


def _excused(exchange: Exchange, finding: Finding, api: Description) -> object | None:
    """The listed exception that covers `finding` (which then has been checked as the exception says), or None."""
    key = (finding.method, finding.template or "", finding.status)
    if finding.part == "response" and "status not documented" in finding.problem:
        message = str((exchange.response or {}).get("message", "")) if isinstance(exchange.response, dict) else ""
        generic = next((m for m, (statuses, _) in ANY_OPERATION.items()
                        if finding.status in statuses and message.startswith(m)), None)
        exception = generic or (key if key in UNDOCUMENTED_ERRORS else None)
        return exception if exception and not schema_errors(_basic_error(api), exchange.response) else None
    if finding.part == "request" and (finding.method, finding.template) in LABEL_BODIES:
        bare = isinstance(exchange.request, list) and all(isinstance(x, str) for x in exchange.request)
        return "labels" if bare else None
    return None


def _reason(exception: object) -> str:
    if exception == "labels":
        return BARE_LABEL_ARRAY
    if isinstance(exception, str):
        return ANY_OPERATION[exception][1]
    return UNDOCUMENTED_ERRORS[exception]  # type: ignore[index]


def _verdict(exchanges: list[Exchange], api: Description) -> tuple[int, int, list[str], set[object]]:
    """(request bodies, answers, unexcused findings, exceptions used)."""
    bodies, answers, findings = check_all(exchanges, api)
    left, used = [], set()
    for exchange, finding in findings:
        exception = _excused(exchange, finding, api)
        if exception is None:
            left.append(str(finding))
        else:
            used.add(exception)
    return bodies, answers, left, used


def test_the_checker_finds_an_answer_that_lacks_what_github_sends() -> None:
    """The check itself: an issue without `node_id` (as the emulator sent it before) is a finding."""
    api = description()
    issue = {"id": 1, "number": 1, "title": "t", "state": "open", "locked": False, "comments": 0,
             "url": "https://api.github.com/repos/o/r/issues/1", "user": None, "labels": []}
    exchange = Exchange("github", "GET", "/repos/o/r/issues/1", {}, "", None, 200, {}, "application/json",
                        issue, 1)
    _, _, findings = check_all([exchange], api)
    assert "at $: 'node_id' is a required property" in {f.problem for _, f in findings}
    unknown = Exchange("github", "GET", "/repos/o/r/no-such-thing", {}, "", None, 200, {}, "", None, 0)
    assert [f.problem for _, f in check_all([unknown], api)[2]] == ["no such operation"]


def test_every_route_of_the_emulator_is_an_operation_of_githubs_api() -> None:
    """Each route, its fields filled with a sample value (a number where it takes digits), is one GitHub serves."""
    api = description()
    missing = []
    for method, template, _ in GitHubEmulator.routes:
        path = re.sub(r"\{\w+(?::([^}]+))?\}", lambda field: "1" if field[1] == r"\d+" else "x", template)
        if api.operation(method, path) is None:
            missing.append(f"{method} {template}")
    assert not missing, f"emulator routes GitHub does not have: {missing}"


def test_everything_the_emulator_served_is_what_github_describes() -> None:
    """Runs last: validates every request body and answer the GitHub emulator served in this session."""
    exchanges = session_exchanges("github", at_least=1000)
    bodies, answers, left, used = _verdict(exchanges, description())
    listed = {*ANY_OPERATION, *UNDOCUMENTED_ERRORS, "labels"}
    SUMMARY.append(f"OpenAPI conformance (@octokit/openapi): {bodies} request bodies and {answers} answers of the "
                   f"GitHub emulator validated; {len(left)} finding(s); {len(used)} listed exception(s) used")
    SUMMARY.extend(f"  exception {exception}: {_reason(exception)}" for exception in sorted(used, key=str))
    assert not left, f"{len(left)} finding(s), first 40:\n" + "\n".join(left[:40])
    assert not listed - used, f"listed exceptions no longer needed, remove them: {sorted(listed - used, key=str)}"
