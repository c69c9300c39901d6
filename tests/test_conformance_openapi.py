"""The GitHub emulator answers as GitHub's published API description says GitHub answers (issue 14, point 3).

Every request the suite makes of the GitHub emulator is recorded (kiki_bot/demo/emulators/recorder.py; the
recording starts in tests/emulator_fixtures.py). `test_everything_the_emulator_served_is_what_github_describes`
runs last (tests/conftest.py orders it so) and validates each JSON request body and each answer against
npm `@octokit/openapi`'s `generated/api.github.com.deref.json`. What the description does not say, though
GitHub does it, is listed below with its reason; the goal is none. The closing summary of the run gives the
counts.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from openapi_conformance import (
    SUMMARY,
    Description,
    Finding,
    check_all,
    description,
    media_schema,
    schema_errors,
)

from kiki_bot.demo.emulators import GitHubEmulator
from kiki_bot.demo.emulators.recorder import RECORD_ENV, Exchange, recorded

UNDOCUMENTED_ERRORS: dict[tuple[str, str, int], str] = {
    ("GET", "/repos/{owner}/{repo}/pulls", 403): "a job token without `pull-requests: read` on a private "
    "repository: GitHub answers 403 'Resource not accessible by integration' to any operation outside a token's "
    "permissions (docs: permissions required for GitHub Apps); the description lists that 403 on few operations",
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", 403): "the same 403 outside a token's permissions",
    ("POST", "/repos/{owner}/{repo}/git/refs", 403): "the same 403 outside a token's permissions",
    ("POST", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", 403): "the same 403 outside "
    "a token's permissions",
    ("POST", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", 404): "an unknown workflow: "
    "GitHub's 404 Not Found, which the description leaves out here",
    ("POST", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", 422): "a workflow without the "
    "`workflow_dispatch` trigger, or inputs it does not declare: GitHub's 422 (its docs for this operation say "
    "so), which the description leaves out",
    ("DELETE", "/repos/{owner}/{repo}/issues/comments/{comment_id}", 404): "a comment already deleted: GitHub's "
    "404 Not Found, which the description leaves out here",
}
"""(method, path template, status) -> why GitHub answers it though the operation does not list the status.
Such an answer is validated against GitHub's basic-error body instead."""

BARE_LABEL_ARRAY = (
    "a bare JSON array of label names, which the operation's own description accepts ('You can also pass an "
    "`array` of labels directly') but its schema leaves out; PyGithub's Issue.add_to_labels/set_labels send it"
)
LABEL_BODIES = {("POST", "/repos/{owner}/{repo}/issues/{issue_number}/labels"),
                ("PUT", "/repos/{owner}/{repo}/issues/{issue_number}/labels")}

NOT_DESCRIBED: dict[tuple[str, str], str] = {
    ("PATCH", r"/repos/[^/]+/[^/]+/git/ref/.+"): "the ref update kiki_bot/github.py makes through a lazy "
    "PyGithub GitRef (`get_git_ref(...).edit`), which PATCHes the /git/ref/ URL it was built from; GitHub "
    "describes PATCH only on /git/refs/{ref}: to be fixed in the bot's git-data writes (issue 14 point 1)",
}
"""(method, path regex) -> why an exchange with no operation in the description is served anyway."""


def _basic_error(api: Description) -> dict:
    operation = api.operation("GET", "/repos/o/r")
    assert operation is not None and (response := operation.response(404)) is not None
    _, schema = media_schema(response)
    assert schema is not None
    return schema


def _excused(exchange: Exchange, finding: Finding, api: Description) -> object | None:
    """The listed exception that covers `finding` (which then has been checked as the exception says), or None."""
    key = (finding.method, finding.template or "", finding.status)
    if finding.part == "response" and key in UNDOCUMENTED_ERRORS and "status not documented" in finding.problem:
        return key if not schema_errors(_basic_error(api), exchange.response) else None
    if finding.part == "request" and (finding.method, finding.template) in LABEL_BODIES:
        bare = isinstance(exchange.request, list) and all(isinstance(x, str) for x in exchange.request)
        return "labels" if bare else None
    for method, pattern in NOT_DESCRIBED:
        if finding.part == "route" and finding.method == method and re.fullmatch(pattern, finding.path):
            return (method, pattern)
    return None


def _reason(exception: object) -> str:
    if exception == "labels":
        return BARE_LABEL_ARRAY
    return {**UNDOCUMENTED_ERRORS, **NOT_DESCRIBED}[exception]  # type: ignore[index]


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
    api = description()
    samples = {r"\d+": ["1"], ".+": ["x"], ".*": ["x"], "refs?": ["refs"]}
    missing = []
    for method, template, _ in GitHubEmulator.routes:
        paths = [""]
        for literal, name, regex in re.findall(r"([^{]*)(?:\{(\w+)(?::([^}]+))?\})?", template):
            values = samples.get(regex, ["x"]) if name else [""]
            paths = [path + literal + value for path in paths for value in values]
        missing += [f"{method} {path}" for path in paths if api.operation(method, path) is None]
    assert not missing, f"emulator routes GitHub does not have: {missing}"


def test_everything_the_emulator_served_is_what_github_describes() -> None:
    """Runs last: validates every request body and answer the GitHub emulator served in this session."""
    folder = Path(os.environ[RECORD_ENV])
    exchanges = list(recorded(folder, "github"))
    assert len(exchanges) > 1000, (
        f"only {len(exchanges)} GitHub emulator exchanges were recorded in {folder}: this test checks what the "
        "whole suite made the emulator serve, so run it with the suite (`pytest`), where it runs last"
    )
    bodies, answers, left, used = _verdict(exchanges, description())
    listed = {*UNDOCUMENTED_ERRORS, "labels", *NOT_DESCRIBED}
    SUMMARY.append(f"OpenAPI conformance (@octokit/openapi): {bodies} request bodies and {answers} answers of the "
                   f"GitHub emulator validated; {len(left)} finding(s); {len(used)} listed exception(s) used")
    SUMMARY.extend(f"  exception {exception}: {_reason(exception)}" for exception in sorted(used, key=str))
    assert not left, f"{len(left)} finding(s), first 40:\n" + "\n".join(left[:40])
    assert not listed - used, f"listed exceptions no longer needed, remove them: {sorted(listed - used, key=str)}"
