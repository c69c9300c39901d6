"""Moment 3 end to end: pull requests on a real git repository through `kiki-bot handle`, one sticky review
comment in the GitHub emulator, the job summary, forks — and every way a PR can be wrong or hostile."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from pathlib import Path

import pytest
import tomli_w
from conftest import REPO
from factory import KIKI, adapter, make_project, record, source, write_jsonl
from markdown_it import MarkdownIt

from kiki_bot.core.carddiff import Change
from kiki_bot.repo import ledgerfile, manifests
from kiki_bot.repo.records import iter_source
from kiki_bot.review import KIND, MAX_CHARS, AdapterReview, Check, comment_text
from kiki_bot.shells.github import marker

FIXTURES = REPO / "tests" / "fixtures" / "github-events"
GH_REPO = "test-lab/models"
PR = 1
RENDER = ("card", "render", "--version", "0.1.0", "--date", "2026-05-06", "-C")
GIT_IDENTITY = ("-c", "user.email=test@example.org", "-c", "user.name=Test", "-c", "commit.gpgsign=false")
EVIL = "[x](https://evil) ![img](https://evil/i.png) <img src=x> @someone ```"


# ---------------------------------------------------------------- a repository, a PR, an event
def git(root: Path, *args: str) -> str:
    run = subprocess.run(
        ["git", "-C", str(root), *GIT_IDENTITY, *args], check=True, capture_output=True, text=True
    )
    return run.stdout.strip()


def commit(project: Path, message: str) -> None:
    git(project.parent, "add", "-A")
    git(project.parent, "commit", "-q", "-m", message)


@pytest.fixture
def summary(tmp_path, monkeypatch) -> Path:
    """The Actions runner's environment; returns the job summary file."""
    path = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(path))
    monkeypatch.setenv("KIKI_GITHUB_THROTTLE", "0")
    monkeypatch.setenv("GITHUB_REPOSITORY", GH_REPO)
    return path


@pytest.fixture
def start(tmp_path, gh, cli, summary):
    """`start(**make_project args)`: a git repository whose `model/` folder is a project with its cards
    committed on `main`, the `feature` branch checked out, and PR #1 open in the emulator."""

    def run(**project_args) -> Path:
        project = make_project(tmp_path / "repo" / "model", **project_args)
        assert cli(*RENDER, project).code == 0
        git(project.parent, "init", "-q", "-b", "main")
        commit(project, "base")
        git(project.parent, "checkout", "-q", "-b", "feature")
        gh.create_repo(GH_REPO)
        gh.push(GH_REPO, "feature", {"README.md": b"models\n"})
        assert gh.open_pull(GH_REPO, "feature") == PR
        return project

    return run


def event(project: Path, action: str = "opened", head_repo: str | None = GH_REPO) -> dict:
    """The real fixture payload, pointed at our repository's commits."""
    root = project.parent
    payload = json.loads((FIXTURES / f"pull_request.{action}.payload.json").read_text())
    pr = payload["pull_request"]
    payload["number"] = pr["number"] = PR
    pr["base"].update(ref="main", sha=git(root, "rev-parse", "main"))
    pr["head"].update(ref="feature", sha=git(root, "rev-parse", "HEAD"))
    pr["base"]["repo"]["full_name"] = payload["repository"]["full_name"] = GH_REPO
    pr["head"]["repo"] = head_repo and {**pr["head"]["repo"], "full_name": head_repo}
    return payload


def handle(cli, project: Path, payload: dict):
    path = project.parent.parent / "event.json"
    path.write_text(json.dumps(payload))
    return cli("handle", "--event-name", "pull_request", "--event-path", path, "-C", project)


def the_comment(gh) -> str:
    [comment] = gh.comments(GH_REPO, PR)
    assert comment.body.startswith(marker(KIND) + "\n")
    return comment.body.removeprefix(marker(KIND) + "\n")


def rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| Section")]


def edit_a_record(project: Path) -> None:
    path = project / "data" / "acme-fw" / "part-000.jsonl"
    path.write_text(path.read_text().replace("return 3; }", "return 3; /* longer */ }"))
    manifests.refresh(path.parent)


# ---------------------------------------------------------------- the review
def test_a_data_change_lists_exactly_what_the_summary_now_says(start, cli, gh, summary):
    project = start()
    write_jsonl(
        project / "data" / "acme-fw" / "part-001.jsonl",
        [
            record(
                "acme-fw",
                20 + i,
                f"int g{i}(void) {{ return {i}; }}",
                license="Apache-2.0",
                access_date="2025-11-15",
                origin=f"https://gitlab.com/acme/fw/-/blob/main/g{i}.c",
            )
            for i in range(5)
        ],
    )
    manifests.refresh(project / "data" / "acme-fw")
    assert cli("card", "render", "-C", project).code == 0
    commit(project, "five more records")

    res = handle(cli, project, event(project))
    assert res.code == 0, res.err
    text = the_comment(gh)
    assert rows(text) == [
        "| 1.3 Size | Latest collection | 10/2025 | 11/2025 |",
        "| 2.3 Crawled data | Crawl period | From 10/2025 to 10/2025 | From 10/2025 to 11/2025 |",
        "| 2.3 Crawled data | Domains crawled | 1 | 2 (+1) |",
        "| A. Sources | acme-fw records | 20 | 25 (+5) |",
        "| A. Sources | acme-fw tokens | 210 | 260 (+50) |",
        "| A. Sources | Licences | — | added: Apache-2.0 |",
    ]
    assert "### ✅ tiny-lora" in text and "❌" not in text.replace("0 ❌ failed", "")
    assert summary.read_text() == text.rstrip("\n") + "\n"  # the same report, where forks can read it too


def test_a_stale_card_fails_with_its_diff(start, cli, gh, summary):
    project = start()
    edit_a_record(project)
    commit(project, "edit a record, forget the card")

    res = handle(cli, project, event(project))
    assert res.code == 1 and "failed: card review: tiny-lora" in res.err
    text = the_comment(gh)
    assert rows(text) == ["| A. Sources | acme-fw tokens | 210 | 213 (+3) |"]
    assert "- ❌ Committed card matches the data: the diff is below" in text
    [diff] = re.findall(r"^```diff\n(.*?)\n```$", text, re.DOTALL | re.MULTILINE)
    assert "card.json sources.acme-fw.bytes: 790 → 803" in diff.splitlines()
    assert "cards/tiny-lora/README.md: differs from what the data says" in diff.splitlines()
    assert str(project) not in text  # the runner's paths are made relative
    assert summary.read_text() == text.rstrip("\n") + "\n"


def test_synchronize_edits_the_one_comment(start, cli, gh):
    project = start()
    edit_a_record(project)
    commit(project, "edit a record")
    assert handle(cli, project, event(project)).code == 1
    [first] = gh.comments(GH_REPO, PR)
    first_id, first_body = first.id, first.body

    assert cli("card", "render", "-C", project).code == 0
    commit(project, "render the card")
    res = handle(cli, project, event(project, "synchronize"))
    assert res.code == 0, res.err
    [comment] = gh.comments(GH_REPO, PR)
    assert comment.id == first_id and comment.body != first_body
    assert "### ✅ tiny-lora" in comment.body and "- ✅ Committed card matches the data" in comment.body
    assert [r.method for r in gh.requests if r.method != "GET"] == ["POST", "PATCH"]


@pytest.mark.parametrize("head_repo", ["someone/models", None], ids=["fork", "deleted fork"])
def test_a_fork_gets_the_job_summary_and_the_exit_code_only(start, cli, gh, summary, monkeypatch, head_repo):
    project = start()
    edit_a_record(project)
    commit(project, "edit a record")
    monkeypatch.delenv("GITHUB_TOKEN")  # a fork's run has no usable token: nothing may need one

    res = handle(cli, project, event(project, head_repo=head_repo))
    assert res.code == 1, res.err
    assert "### ❌ tiny-lora" in summary.read_text()
    assert gh.requests == [] and gh.comments(GH_REPO, PR) == []


def purge(project: Path, idx: int) -> None:
    """What the gated purge job records for record acme-fw#idx (the data itself is left to the caller)."""
    [rec] = [r for r in iter_source(project / "data", "acme-fw") if r.provenance.record_idx == idx]
    ledgerfile.append_once(
        project / "compliance" / "removals.jsonl",
        "purged",
        {"id": "R-5", "issue": 5},
        "kiki-bot[bot]",
        dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
        records=[["acme-fw", idx, rec.content_hash]],
        adapters=["tiny-lora"],
    )


def test_a_purge_that_keeps_the_record_fails_and_names_it(start, cli, gh):
    project = start()
    purge(project, 3)
    commit(project, "purge R-5 but keep the record")

    res = handle(cli, project, event(project))
    assert res.code == 1
    text = the_comment(gh)
    assert "- ❌ Removed content stays out" in text
    assert (
        "  - removed content is back: data/acme-fw/part-000.jsonl:4 (record acme-fw\\#&#8203;3 was purged (removal ledger))"
        in text.splitlines()
    )


def test_removed_content_scraped_again_fails_and_is_named(start, cli, gh):
    project = start()
    git(project.parent, "checkout", "-q", "main")  # the base branch has the purge done: ledger, data, card
    purge(project, 3)
    write_jsonl(
        project / "data" / "acme-fw" / "part-000.jsonl",
        [record("acme-fw", i, f"int f{i}(void) {{ return {i}; }}") for i in range(20) if i != 3],
    )
    manifests.refresh(project / "data" / "acme-fw")
    assert cli("card", "render", "-C", project).code == 0
    commit(project, "purge R-5")
    git(project.parent, "checkout", "-q", "feature")
    git(project.parent, "merge", "-q", "--ff-only", "main")
    again = record("acme-fw", 3, "int f3(void) { return 3; }")
    again["_provenance"]["record_idx"] = 20  # the same content under a new index: a later scrape
    write_jsonl(project / "data" / "acme-fw" / "part-001.jsonl", [again])
    manifests.refresh(project / "data" / "acme-fw")
    commit(project, "new scrape")

    res = handle(cli, project, event(project))
    assert res.code == 1
    text = the_comment(gh)
    assert "- ❌ Removed content stays out" in text
    assert re.search(
        r"^  - removed content is back: data/acme-fw/part-001\.jsonl:1 \(record acme-fw\\#&#8203;20 "
        r"has the content [0-9a-f]{12}… of a removed record\)$",
        text,
        re.MULTILINE,
    ), text


def test_five_adapters_collapse_and_stay_under_the_bound(start, cli, gh):
    names = [f"lora-{a}" for a in range(5)]
    ids = {name: [f"{name}-src-{s:02}" for s in range(16)] for name in names}
    every = [sid for name in names for sid in ids[name]]
    project = start(
        sources={sid: source(name=f"Source {sid}") for sid in every},
        records={sid: [record(sid, i, f"int {sid[-2:]}_{i};") for i in range(2)] for sid in every},
        adapters={name: adapter(ids[name], hub_repo=f"test-lab/{name}") for name in names},
    )
    kiki = {**KIKI, "provider": {**KIKI["provider"], "contact": "https://test-lab.eu/contact"}}
    (project / "kiki.toml").write_text(tomli_w.dumps(kiki))
    for sid in every:
        write_jsonl(
            project / "data" / sid / "part-000.jsonl",
            [record(sid, i, f"int {sid[-2:]}_{i} = {i};") for i in range(3)],
        )
        manifests.refresh(project / "data" / sid)
    commit(project, "a new contact and one more record everywhere, cards left stale")

    res = handle(cli, project, event(project))
    assert res.code == 1
    text = the_comment(gh)
    assert len(text) <= MAX_CHARS
    for name in names:
        assert f"<details><summary>❌ {name}: 33 field(s) changed, 1 check(s) failed</summary>" in text
    assert text.count("</details>") == 5 and not re.search("^### ", text, re.MULTILINE)
    assert text.count("… 3 more changed fields.") == 5  # 30 rows each, then a count


def test_the_comment_stays_under_the_limit_whatever_the_pr_holds():
    big = "<@[x](https://evil)>" * 100  # escaping makes it grow several times
    review = AdapterReview(
        "lora",
        False,
        [Change("A. Sources", big, big, big)] * 500,
        [
            Check("Committed card matches the data", [big] * 1000, diff=True),
            *(Check(f"check {i}", [big] * 500) for i in range(6)),
        ],
    )
    five = comment_text([review] * 5)
    assert len(five) <= MAX_CHARS and five.count("</details>") == 5
    assert len(re.findall(r"^… \d+ more changed fields\.$", five, re.MULTILINE)) == 5
    fifty = comment_text([review] * 50)
    assert len(fifty) <= MAX_CHARS and fifty.endswith("`kiki-bot card check` prints everything.\n")


def test_pr_text_never_becomes_links_images_html_or_mentions(start, cli, gh):
    project = start()
    (project / "sources" / "evil.toml").write_text(tomli_w.dumps(source("2.1", name=EVIL)))
    write_jsonl(
        project / "data" / "evil" / "part-000.jsonl",
        [record("evil", i, f"{EVIL} {i}", origin="https://evil/i.png") for i in range(30)],
    )
    manifests.refresh(project / "data" / "evil")
    (project / "adapters" / "tiny-lora.toml").write_text(tomli_w.dumps(adapter(["acme-fw", "evil"])))
    commit(project, "add a public dataset, card left stale so its diff is shown")

    res = handle(cli, project, event(project))
    assert res.code == 1
    text = the_comment(gh)
    assert (
        "| 2.1 Public datasets | Large datasets | — | added: \\[x\\](https:&#8203;//evil) "
        "\\!\\[img\\](https:&#8203;//evil/i.png) &lt;img src=x> @&#8203;someone \\`\\`\\` |"
    ) in rows(text)
    assert "```` diff" not in text and re.search(
        "^````diff$", text, re.MULTILINE
    )  # the fence outgrows the data's ```
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    assert "<a " not in html and "<img" not in html
    [block] = re.findall(r"^(`{4,})diff\n(.*?)\n\1$", text, re.MULTILINE | re.DOTALL)
    assert EVIL[:40] in block[1]  # the diff shows the PR's text verbatim, inside the code block only
    outside = text.replace(block[1], "")
    assert "@someone" not in outside and "https://" not in outside and "<img" not in outside


# ---------------------------------------------------------------- when there is nothing to review, or no way to
def test_a_pr_that_touches_no_project_data_does_nothing(start, cli, gh, summary):
    project = start()
    (project.parent / "README.md").write_text("# models\n")
    (project / "notes.md").write_text("not data\n")
    commit(project, "docs")
    res = handle(cli, project, event(project))
    assert res.code == 0, res.err
    assert gh.requests == [] and not summary.exists()


def test_data_no_adapter_uses_is_said_so(start, cli, gh, summary):
    project = start()
    (project / "sources" / "spare.toml").write_text(tomli_w.dumps(source()))
    write_jsonl(project / "data" / "spare" / "part-000.jsonl", [record("spare", 0, "int spare;")])
    manifests.refresh(project / "data" / "spare")
    commit(project, "a source for later")
    assert handle(cli, project, event(project)).code == 0
    assert "no adapter's summary depends on them" in the_comment(gh) and summary.exists()


def test_unreadable_pr_data_is_a_failed_check_not_a_crash(start, cli, gh):
    project = start()
    with (project / "data" / "acme-fw" / "part-000.jsonl").open("a") as fh:
        fh.write("{not json\n")
    manifests.refresh(project / "data" / "acme-fw")
    commit(project, "a broken line")
    res = handle(cli, project, event(project))
    assert res.code == 1
    text = the_comment(gh)
    assert "- ❌ The card renders from the data" in text
    assert "  - data/acme-fw/part-000.jsonl:21: not valid JSON" in text


def test_each_bad_line_of_pr_data_is_its_own_item(start, cli, gh):
    project = start()
    with (project / "data" / "acme-fw" / "part-000.jsonl").open("a") as fh:
        fh.write('{not json\n{"text": "no provenance"}\n')
    manifests.refresh(project / "data" / "acme-fw")
    commit(project, "two broken lines")
    assert handle(cli, project, event(project)).code == 1
    text = the_comment(gh)
    assert "  - data/acme-fw/part-000.jsonl:21: not valid JSON" in text
    assert "  - data/acme-fw/part-000.jsonl:22: missing \\`\\_provenance\\` object" in text, text


def test_a_new_adapter_is_reviewed_against_no_card(start, cli, gh):
    project = start()
    (project / "adapters" / "second-lora.toml").write_text(
        tomli_w.dumps(adapter(["acme-fw"], hub_repo="test-lab/second"))
    )
    assert cli("card", "render", "second-lora", "-C", project).code == 0
    commit(project, "a second adapter")
    res = handle(cli, project, event(project))
    assert res.code == 0, res.err
    text = the_comment(gh)
    assert "### ✅ second-lora" in text and "tiny-lora" not in text
    assert "New adapter: the base branch has no card for it" in text
    assert "| A. Sources | acme-fw records | — | 20 |" in rows(text)


@pytest.mark.parametrize(
    "sha,words",
    [
        ("--output=/tmp/pwned", "pull_request.base.sha: expected a 40-hex commit id"),
        ("f" * 40, "is not in the checkout"),
    ],
)
def test_base_commits_are_checked_before_git_sees_them(start, cli, gh, sha, words):
    project = start()
    payload = event(project)
    payload["pull_request"]["base"]["sha"] = sha
    res = handle(cli, project, payload)
    assert res.code == 2 and words in res.err
    assert gh.requests == []


# ---------------------------------------------------------------- the ledger only grows
def request(project: Path, n: int) -> None:
    """A `requested` entry that affects no adapter, so no card figure depends on it."""
    at = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    path = project / "compliance" / "removals.jsonl"
    deadline = at + dt.timedelta(days=30)
    ledgerfile.append_once(path, "requested", {"id": f"R-{n}", "issue": n}, "alice", at, selectors=["other/repo"],
                           body_sha256="ab" * 32, deadline=deadline, adapters=[])


def three_requests_on_main(project: Path, cli) -> Path:
    """Main gets a ledger of three entries and cards that recorded it; the feature branch starts there."""
    git(project.parent, "checkout", "-q", "main")
    for n in (1, 2, 3):
        request(project, n)
    assert cli("card", "render", "-C", project).code == 0
    commit(project, "three requests")
    git(project.parent, "checkout", "-q", "feature")
    git(project.parent, "merge", "-q", "--ff-only", "main")
    return project / "compliance" / "removals.jsonl"


@pytest.mark.parametrize(
    ("cut", "words"),
    [
        (lambda lines: lines[:1], "entry seq 2 (line 2) of the base branch is missing here"),
        (lambda lines: [], "entry seq 1 (line 1) of the base branch is missing here"),
        (
            lambda lines: [*lines[:2], lines[2].replace(b'"alice"', b'"mallory"')],
            "entry seq 3 (line 3) of the base branch is changed here",
        ),
    ],
    ids=["last two dropped", "emptied", "last one edited"],
)
def test_a_pr_that_shrinks_or_rewrites_the_ledger_fails_though_its_cards_agree(start, cli, gh, cut, words):
    project = start()
    path = three_requests_on_main(project, cli)
    path.write_bytes(b"".join(cut(path.read_bytes().splitlines(keepends=True))))
    if path.read_bytes():
        entries = [json.loads(line) for line in path.read_bytes().splitlines()]
        path.write_bytes(b"")
        for e in entries:  # re-chained, so the PR's own ledger verifies
            ledgerfile.append_once(path, e["event"], e["request"], e["actor"], dt.datetime.fromisoformat(e["at"]),
                                   **{k: e[k] for k in ("selectors", "body_sha256", "adapters")},
                                   deadline=dt.datetime.fromisoformat(e["deadline"]))
    assert cli("card", "render", "-C", project).code == 0
    assert cli("ledger", "verify", "-C", project).code == 0 and cli("card", "check", "-C", project).code == 0
    commit(project, "a shorter history")

    res = handle(cli, project, event(project))
    assert res.code == 1, res.err
    text = the_comment(gh)
    assert "- ❌ Removal ledger intact" in text
    assert f"  - compliance/removals.jsonl: {words}; the removal ledger only grows" in text, text


def test_a_pr_that_appends_to_the_ledger_or_leaves_an_older_one_passes(start, cli, gh):
    project = start()
    three_requests_on_main(project, cli)
    request(project, 4)
    assert cli("card", "render", "-C", project).code == 0
    commit(project, "one more request")
    assert handle(cli, project, event(project)).code == 0

    # A branch from before main's three requests (-f: this test repository tracks the provenance cache).
    git(project.parent, "checkout", "-q", "-f", "-b", "older", "main~1")
    edit_a_record(project)
    assert cli("card", "render", "-C", project).code == 0
    commit(project, "a data change on an older branch")
    res = handle(cli, project, event(project, "synchronize"))
    assert res.code == 0, res.err  # merging keeps main's ledger: the PR does not touch it
    assert "- ✅ Removal ledger intact" in the_comment(gh)
