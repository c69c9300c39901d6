"""The event router against GitHub's published webhooks (issue 14, point 5): every example payload of the events
it routes (npm `@octokit/webhooks-examples`) is routed without error, each made relevant to kiki-bot reaches its
moment with every field that moment reads, and those fields are ones `@octokit/webhooks-schemas` says GitHub
always sends for that event and action."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from openapi_conformance import octokit_file

from kiki_bot import events

BOT = "kiki-bot[bot]"
PERSON = {"login": "octocat", "id": 1, "type": "User"}

NOT_IN_SCHEMAS: dict[tuple[str, str], str] = {
    ("schedule", ""): "`schedule` is no webhook: GitHub Actions starts the run from the workflow's cron, and its "
    "event payload (`schedule`, `workflow`, `repository`) has no schema in @octokit/webhooks-schemas",
    ("workflow_dispatch", "inputs.tag"): "a workflow_dispatch's `inputs` are the ones the workflow declares "
    "(kiki-bot's release workflow declares `tag`): the schema can only say `inputs` is an object",
}
"""What the schemas cannot say, with the reason: (event, field) -> why."""


def _examples() -> dict[str, list[dict[str, Any]]]:
    index = json.loads(octokit_file("webhooks-examples/api.github.com/index.json").read_bytes())
    routed = {route.event for route in events.ROUTES}
    return {entry["name"]: entry["examples"] for entry in index if entry["name"] in routed}


def _definitions() -> dict[str, Any]:
    return json.loads(octokit_file("webhooks-schemas/schema.json").read_bytes())["definitions"]


def _relevant(event: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The example as kiki-bot's own events look: a person's removal request, a release tag, a review PR."""
    payload = copy.deepcopy(payload)
    payload["sender"] = {**(payload.get("sender") or {}), **PERSON}
    if event in ("issues", "issue_comment"):
        issue = payload.setdefault("issue", {})
        issue["labels"] = [*(issue.get("labels") or []), {"name": events.REMOVAL_LABEL}]
        issue.pop("pull_request", None)
        if payload.get("action") == "labeled":
            payload["label"] = {"name": events.REMOVAL_LABEL}
        if "comment" in payload:
            payload["comment"]["body"] = "/kiki approve"
    if event == "push":
        payload["ref"], payload["deleted"] = "refs/tags/example-lora/v1.2.3", False
    if event == "pull_request" and payload.get("action") == "closed":
        payload["pull_request"]["merged"] = True
        payload["pull_request"]["head"]["ref"] = "kiki/release/example-lora/1.2.3"
    if event == "workflow_dispatch":
        payload["inputs"] = {"tag": "example-lora/v1.2.3"}
    return payload


def _takes(route: events.Route, event: str, action: str | None) -> bool:
    return route.event == event and (route.actions is None or action in route.actions)


def test_every_example_payload_of_a_routed_event_is_routed_and_has_what_its_moment_reads() -> None:
    examples = _examples()
    assert set(examples) == {route.event for route in events.ROUTES} - {"schedule"}
    reached: set[str] = set()
    count = 0
    for event, payloads in examples.items():
        for payload in payloads:
            where = f"{event}.{payload.get('action', '')} example"
            for variant in (payload, _relevant(event, payload)):
                count += 1
                taken = events.route(event, variant, BOT)
                if taken is not None:
                    events.check_fields(taken, variant, where)  # raises BadInput on a missing field
                    reached.add(taken.target)
            action = payload.get("action")
            if any(_takes(route, event, action) for route in events.ROUTES):
                assert events.route(event, _relevant(event, payload), BOT) is not None, where
            assert events.route(event, {**payload, "sender": {"login": BOT, "type": "Bot"}}, BOT) is None or (
                event == "workflow_dispatch"), f"{where}: a bot's event must not be routed"
    assert reached == {route.target for route in events.ROUTES if route.event != "schedule"}
    assert count > 100


def _resolve(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """One object schema for `schema`: `$ref`s followed, `allOf` merged, and a null alternative noted."""
    if "$ref" in schema:
        return _resolve(definitions[schema["$ref"].rsplit("/", 1)[-1]], definitions)
    merged: dict[str, Any] = {key: value for key, value in schema.items() if key not in ("allOf", "oneOf", "anyOf")}
    merged["required"] = list(schema.get("required", []))
    merged["properties"] = dict(schema.get("properties", {}))
    types = schema.get("type")
    merged["nullable"] = types == "null" or (isinstance(types, list) and "null" in types)
    for part in schema.get("allOf", []):
        part = _resolve(part, definitions)
        merged["required"] += part["required"]
        merged["properties"] |= part["properties"]
        merged["nullable"] = merged["nullable"] and part["nullable"]
    alternatives = [_resolve(alt, definitions) for alt in schema.get("oneOf", []) + schema.get("anyOf", [])]
    if alternatives:
        objects = [alt for alt in alternatives if not (alt.get("type") == "null")]
        merged["nullable"] |= len(objects) < len(alternatives) or any(alt["nullable"] for alt in objects)
        merged["required"] += sorted(set.intersection(*(set(alt["required"]) for alt in objects))) if objects else []
        for alt in objects:
            merged["properties"] = alt["properties"] | merged["properties"]
    return merged


def always_sent(definition: str, path: str, definitions: dict[str, Any]) -> str | None:
    """None when every payload valid under `definition` has a non-null value at `path`, else why not."""
    node, walked = _resolve(definitions[definition], definitions), ""
    for key in path.split("."):
        if key not in node["required"]:
            return f"`{walked}{key}` is optional in {definition}"
        walked += f"{key}."
        node = _resolve(node["properties"][key], definitions)
        if node["nullable"]:
            return f"`{walked.rstrip('.')}` may be null in {definition}"
    return None


@pytest.mark.parametrize("route", events.ROUTES, ids=lambda r: f"{r.event}->{r.target}")
def test_the_fields_a_route_requires_are_ones_github_always_sends(route: events.Route) -> None:
    definitions = _definitions()
    if route.event == "schedule":
        assert ("schedule", "") in NOT_IN_SCHEMAS
        return
    names = [f"{route.event}${a}" for a in route.actions] if route.actions else [f"{route.event}$event"]
    problems = []
    for definition in names:
        for path in route.fields():
            if (route.event, path) in NOT_IN_SCHEMAS:
                continue
            if (why := always_sent(definition, path, definitions)) is not None:
                problems.append(why)
    assert not problems, problems
