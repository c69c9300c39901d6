"""Issue 14 points 1 and 2 over real HTTP: one atomic commit per bot action through the Git Data API, GitHub's
file limits, paging, rate limits and 5xx retries — the real PyGithub against the GitHub emulator, with the
waits going to an injected sleep (nothing sleeps) and x-ratelimit-reset read against an injected clock."""

from __future__ import annotations

import json
import subprocess

import pytest
from factory import make_project, record, source
from github import GithubException, RateLimitExceededException
from test_removal_flow import GH_REPO, body, comment_event, handle, issue_event

from kiki_bot.core.canonical import git_blob_sha
from kiki_bot.core.errors import BadInput
from kiki_bot.shells.github import GitHub, marker
from kiki_bot.shells.settings import Settings

MiB = 1024 * 1024
WRITES = ("POST", "PUT", "PATCH", "DELETE")


class Waits:
    """The injected sleep: records what the bot would have waited, waits for nothing."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


NOW = 1_900_000_000.0


@pytest.fixture
def shell(gh, monkeypatch):
    """The bot's GitHub shell against the emulator, without PyGithub's pauses; its waits are recorded."""
    monkeypatch.setenv("KIKI_GITHUB_THROTTLE", "0")
    gh.create_repo(GH_REPO, files={"README.md": b"hi\n", "data/acme/part-000.jsonl": b'{"a": 1}\n'})
    waits = Waits()
    return GitHub(Settings(), GH_REPO, sleep=waits, clock=lambda: NOW), waits


def writes(gh) -> list[str]:
    return [f"{r.method} {r.path}" for r in gh.requests if r.method in WRITES]


# ------------------------------------------------------------------------------ one atomic commit
@pytest.fixture
def big_env(gh, hub, monkeypatch, tmp_path):
    """A model repository whose one data file is about 50 MiB: 400 records of 128 KiB."""
    filler = "x" * (128 * 1024)
    recs = [record("big", i, f"int f{i}(void) {{ return {i}; }} /* {filler} */") for i in range(400)]
    project = make_project(tmp_path / "repo", sources={"big": source()}, records={"big": recs})
    gh.create_repo(GH_REPO, files={str(p.relative_to(project)): p.read_bytes() for p in project.rglob("*")
                                   if p.is_file()})
    gh.set_permission(GH_REPO, "writer", "write")
    monkeypatch.setenv("KIKI_GITHUB_THROTTLE", "0")
    monkeypatch.setenv("GITHUB_REPOSITORY", GH_REPO)
    return project


def test_a_50_mb_data_file_is_purged_in_one_commit(big_env, gh, cli):
    data = big_env / "data" / "big" / "part-000.jsonl"
    assert data.stat().st_size > 50 * MiB
    text = body("record:big#7")
    number = gh.open_issue(GH_REPO, "Removal", text, user="octo-dev", labels=["removal-request"])
    assert handle(cli, big_env, "issues", issue_event(number, text)).code == 0
    main = gh.repo(GH_REPO).branches["main"]
    old_blob = git_blob_sha(gh.files(GH_REPO)["data/big/part-000.jsonl"])
    gh.requests.clear()
    res = handle(cli, big_env, "issue_comment", comment_event(number, "/kiki approve", "writer"))
    assert res.code == 0, res.err

    repo = gh.repo(GH_REPO)
    [pr] = gh.pulls(GH_REPO)
    head = repo.history[repo.branches[pr.pull.head]]
    assert head.parents == (main,)  # ONE commit on main: data, manifest and ledger change together
    assert head.files["data/big/part-000.jsonl"] == data.read_bytes()
    assert {path for path, content in head.files.items() if repo.history[main].files.get(path) != content} == {
        "data/big/part-000.jsonl", "data/big/MANIFEST.json", "compliance/removals.jsonl"}
    # The old 50 MiB file was recognised by its blob SHA: never downloaded, by either API.
    reads = [r.path for r in gh.requests if r.method == "GET"]
    assert not [p for p in reads if "/contents/data/" in p or p.endswith(f"/git/blobs/{old_blob}")]
    assert [r.path for r in gh.requests if r.method == "POST" and r.path.endswith("/git/blobs")] == [
        f"/repos/{GH_REPO}/git/blobs"] * 3
    # Run again: nothing left to change, so no blob, tree, commit or ref is written.
    gh.requests.clear()
    assert handle(cli, big_env, "issue_comment", comment_event(number, "/kiki approve", "writer")).code == 0
    assert not [w for w in writes(gh) if "/git/" in w]


def test_a_file_over_100_mib_is_refused_before_any_write(shell, gh):
    github, _ = shell
    files = {"compliance/removals.jsonl": b"{}\n", "data/acme/part-000.jsonl": b"x" * (101 * MiB)}
    gh.requests.clear()
    with pytest.raises(BadInput) as refused:
        github.commit_files("kiki/removal/R-1", "main", files, "Purge")
    assert gh.requests == []  # refused before a single request, so before any write
    message = str(refused.value)
    assert message.startswith("data/acme/part-000.jsonl: 101.0 MiB, over the 100 MiB GitHub takes for one file")
    assert "nothing was written" in message and "split source `acme`'s data into several files under data/acme/" in message
    assert "kiki/removal/R-1" not in gh.repo(GH_REPO).branches


def test_unchanged_files_are_not_sent_and_a_left_behind_branch_is_rebuilt(shell, gh):
    github, _ = shell
    github.commit_files("kiki/x", "main", {"data/acme/part-000.jsonl": b'{"a": 1}\n', "new/one.txt": b"1\n"}, "Add")
    repo = gh.repo(GH_REPO)
    first = repo.branches["kiki/x"]
    assert repo.history[first].parents == (repo.branches["main"],)
    assert [r.json for r in gh.requests if r.path.endswith("/git/trees") and r.method == "POST"] == [
        {"tree": [{"path": "new/one.txt", "mode": "100644", "type": "blob", "sha": git_blob_sha(b"1\n")}],
         "base_tree": repo.commit_trees[repo.branches["main"]]}]
    gh.requests.clear()
    github.commit_files("kiki/x", "main", {"new/one.txt": b"1\n"}, "Add")
    assert writes(gh) == [] and repo.branches["kiki/x"] == first
    main = gh.push(GH_REPO, "main", {"README.md": b"moved on\n"})
    github.commit_files("kiki/x", "main", {"new/one.txt": b"1\n"}, "Add")
    rebuilt = repo.history[repo.branches["kiki/x"]]
    assert rebuilt.parents == (main,) and rebuilt.files["README.md"] == b"moved on\n"


@pytest.mark.parametrize("attributes,path,rule", [
    ("data/** filter=lfs diff=lfs merge=lfs -text\n", "data/acme/part-000.jsonl", ".gitattributes line 1"),
    ("# big files\n*.jsonl filter=lfs -text\n", "compliance/removals.jsonl", ".gitattributes line 2"),
])
def test_a_path_tracked_by_git_lfs_is_refused_before_any_write(shell, gh, attributes, path, rule):
    github, _ = shell
    gh.push(GH_REPO, "main", {".gitattributes": attributes.encode()})
    gh.requests.clear()
    with pytest.raises(BadInput) as refused:
        github.commit_files("kiki/x", "main", {path: b"{}\n", "compliance/removals.jsonl": b""}, "Purge")
    assert f"{path}: tracked by Git LFS ({rule}: `" in str(refused.value)
    assert "nothing was written" in str(refused.value)
    assert writes(gh) == []


@pytest.mark.parametrize("attributes,path,line", [
    ({".gitattributes": "*.jsonl filter=lfs\n"}, "data/a/part-000.jsonl", 1),
    ({".gitattributes": "data/** filter=lfs\n"}, "data/a/part-000.jsonl", 1),
    ({".gitattributes": "data/** filter=lfs\n"}, "cards/data/x.md", None),  # anchored at the file's folder
    ({".gitattributes": "/data/*.jsonl filter=lfs\n"}, "data/a/part-000.jsonl", None),  # `*` stops at `/`
    ({".gitattributes": "**/part-*.jsonl filter=lfs\n"}, "data/a/part-000.jsonl", 1),
    ({".gitattributes": "data/ filter=lfs\n"}, "data/a/part-000.jsonl", None),  # a folder matches no file in it
    ({".gitattributes": "*.jsonl filter=lfs\ndata/a/* -filter\n"}, "data/a/part-000.jsonl", None),  # last wins
    ({".gitattributes": "*.jsonl -text\n"}, "data/a/part-000.jsonl", None),
    ({".gitattributes": "*.jsonl filter=lfs\n", "data/a/.gitattributes": "*.jsonl !filter\n"}, "data/a/p.jsonl",
     None),  # a deeper file wins
    ({"data/.gitattributes": "# lfs\na/*.json[l] filter=lfs diff=lfs\n"}, "data/a/part-000.jsonl", 2),
])
def test_which_paths_git_lfs_tracks(attributes, path, line):
    from kiki_bot.core.gitattributes import lfs_rule

    rule = lfs_rule(path, attributes)
    assert (rule.line if rule else None) == line


def test_large_files_are_read_through_the_blob_api(shell, gh):
    """Over 1 MiB the Contents API sends no content (encoding "none"); the bot then reads the blob."""
    github, _ = shell
    ledger = b'{"seq": 1}\n' * (200 * 1024)
    gh.push(GH_REPO, "main", {"compliance/removals.jsonl": ledger})
    assert github.read("compliance/removals.jsonl", "main") == ledger


# ------------------------------------------------------------------------------ paging
def test_a_thread_of_250_comments_is_paged_through(shell, gh):
    github, _ = shell
    number = gh.open_issue(GH_REPO, "Removal", "x")
    for n in range(250):
        gh.add_comment(GH_REPO, number, f"{marker('removal')}\nstatus" if n == 240 else f"comment {n}",
                       user="kiki-bot[bot]" if n == 240 else "octocat")
    gh.requests.clear()
    github.sticky(number, "removal", "approved")
    pages = [r.query for r in gh.requests if r.path.endswith(f"/issues/{number}/comments") and r.method == "GET"]
    assert pages == [{"per_page": "100"}, {"per_page": "100", "page": "2"}, {"per_page": "100", "page": "3"}]
    comments = gh.comments(GH_REPO, number)
    assert len(comments) == 250 and comments[240].body == f"{marker('removal')}\napproved"


def test_the_emulator_gives_at_most_100_a_page(gh, gh_client):
    import urllib.request

    gh.create_repo("o/r")
    for n in range(130):
        gh.open_issue("o/r", f"issue {n}")
    gh_client.get_repo("o/r").get_issue(1).title  # noqa: B018 (the first request sets the emulator's URL)
    with urllib.request.urlopen(f"{gh.base_url}/repos/o/r/issues?per_page=250") as answer:  # noqa: S310 (local)
        assert len(json.load(answer)) == 100 and 'page=2>; rel="next"' in answer.headers["Link"]


def test_workflow_runs_are_paged(shell, gh):
    github, _ = shell
    gh.push(GH_REPO, "main", {".github/workflows/kiki-release.yml": b"on: workflow_dispatch\n"})
    for _ in range(130):
        github.dispatch("kiki-release.yml", "main", {})
    gh.requests.clear()
    assert len(github.runs("kiki-release.yml", "main")) == 130
    assert [r.query.get("page") for r in gh.requests] == [None, "2"]


# ------------------------------------------------------------------------------ rate limits and 5xx
def test_a_secondary_rate_limit_mid_paging_is_waited_out_and_said(shell, gh, capsys):
    github, waits = shell
    number = gh.open_issue(GH_REPO, "Removal", "x")
    for n in range(250):
        gh.add_comment(GH_REPO, number, f"comment {n}")
    comments, second_page = f"/issues/{number}/comments", {"page": "2"}
    gh.refuse_next(403, path=comments, query=second_page, retry_after=30)
    gh.refuse_next(429, path=comments, query=second_page)  # no header: at least a minute, longer each time
    capsys.readouterr()
    assert github.comment_once(number, "rejected", "declined")
    assert waits.seconds == [30.0, 120.0]
    log = capsys.readouterr().err
    assert "GitHub answered 403 (Retry-After) to GET /repos/test-lab/models/issues/1/comments: waiting 30 s" in log
    assert "429 (secondary rate limit)" in log and "waiting 120 s before retry 2 of 5" in log
    assert [c.body.splitlines()[-1] for c in gh.comments(GH_REPO, number)][-1] == "declined"


def test_the_primary_rate_limit_is_waited_until_its_reset(shell, gh, capsys):
    github, waits = shell
    number = gh.open_issue(GH_REPO, "Removal", "x")
    gh.refuse_next(403, path="/labels", reset_at=int(NOW) + 42)
    github.set_labels(number, add=["purged"])
    assert waits.seconds == [43.0]  # until x-ratelimit-reset, plus the second it happens in
    assert "(x-ratelimit-reset)" in capsys.readouterr().err
    assert gh.issue(GH_REPO, number).labels == ["purged"]


def test_rate_limit_waits_are_bounded(shell, gh, capsys):
    github, waits = shell
    gh.open_issue(GH_REPO, "Removal", "x")
    gh.refuse_next(403, path="/issues/1", reset_at=int(NOW) + 3600)  # lifts in an hour: not waited for
    with pytest.raises(RateLimitExceededException):
        github.close(1)
    assert waits.seconds == []
    assert "lifts in 3,601 s, more than the 900 s kiki-bot waits" in capsys.readouterr().err
    gh.refusals.clear()
    gh.refuse_next(429, times=10, path="/issues/1", retry_after=1)
    with pytest.raises(GithubException) as refused:
        github.close(1)
    assert refused.value.status == 429 and waits.seconds == [1.0] * 5  # five retries, then the answer stands
    assert "6 times: giving up" in capsys.readouterr().err
    # A job token outside its permissions gets a 403 without rate-limit headers: a refusal, answered at once.
    gh.refusals.clear()
    job = GitHub(Settings(github_token=gh.mint_token({"issues": "read"})), GH_REPO, sleep=waits)
    with pytest.raises(GithubException) as refusal:
        job.set_labels(1, add=["purged"])
    assert refusal.value.status == 403 and waits.seconds == [1.0] * 5


def test_a_secondary_rate_limit_403_with_no_header_is_waited_out(shell, gh, capsys):
    """GitHub may answer a secondary rate limit with a 403 whose only sign is its message (no Retry-After, no
    x-ratelimit-remaining 0): wait at least a minute, longer each time. Any other bare 403 is a refusal."""
    github, waits = shell
    number = gh.open_issue(GH_REPO, "Removal", "x")
    gh.refuse_next(403, times=2, path="/labels")  # GitHub's "You have exceeded a secondary rate limit" message
    capsys.readouterr()
    github.set_labels(number, add=["purged"])
    assert waits.seconds == [60.0, 120.0] and gh.issue(GH_REPO, number).labels == ["purged"]
    assert "GitHub answered 403 (secondary rate limit)" in capsys.readouterr().err
    gh.refuse_next(403, times=10, path=f"/issues/{number}")  # a limit that does not lift: the answer stands
    with pytest.raises(GithubException) as limited:
        github.close(number)
    assert limited.value.status == 403 and "secondary rate limit" in limited.value.data["message"]
    assert waits.seconds[2:] == [60.0, 120.0, 240.0, 480.0]  # then 960 s: more than kiki-bot waits


def test_server_errors_are_retried_only_where_the_call_is_idempotent(shell, gh):
    github, waits = shell
    number = gh.open_issue(GH_REPO, "Removal", "x")
    gh.refuse_next(502, method="GET", path=f"/issues/{number}/comments")  # reading the list: retried
    gh.refuse_next(502, method="POST", path=f"/issues/{number}/comments")  # the comment: never sent twice
    with pytest.raises(GithubException) as failed:
        github.comment_once(number, "rejected", "declined")
    assert failed.value.status == 502 and waits.seconds == [1.0]
    assert [r.method for r in gh.requests if r.path.endswith("/comments")] == ["GET", "GET", "POST"]
    assert gh.comments(GH_REPO, number) == []
    gh.refuse_next(503, times=2, path="/git/blobs")  # content-addressed: sending it again makes the same blob
    github.commit_files("kiki/x", "main", {"a.txt": b"a\n"}, "A")
    assert waits.seconds == [1.0, 1.0, 2.0] and gh.files(GH_REPO, "kiki/x")["a.txt"] == b"a\n"


# ------------------------------------------------------------------------------ the emulator, as GitHub
def test_emulator_git_data_api(gh, gh_client, tmp_path):
    from github import InputGitTreeElement

    gh.create_repo("o/r", files={"README.md": b"hi\n", "src/a.c": b"int a;\n", "src/deep/b.c": b"int b;\n"})
    repo = gh_client.get_repo("o/r")
    main = repo.get_branch("main").commit
    # Tree shas are git's own.
    for path, data in gh.files("o/r").items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(data)
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    tree = subprocess.run([*git, "write-tree"], check=True, capture_output=True, text=True).stdout.strip()
    assert main.commit.tree.sha == tree
    listing = repo.get_git_tree(tree, recursive=True)
    assert [(e.path, e.type) for e in listing.tree] == [
        ("README.md", "blob"), ("src", "tree"), ("src/a.c", "blob"), ("src/deep", "tree"), ("src/deep/b.c", "blob")]
    assert [e.path for e in repo.get_git_tree(tree).tree] == ["README.md", "src"]

    blob = repo.create_git_blob("int c;\n", "utf-8")
    assert blob.sha == git_blob_sha(b"int c;\n") and repo.get_git_blob(blob.sha).content
    new_tree = repo.create_git_tree([InputGitTreeElement("src/c.c", "100644", "blob", sha=blob.sha),
                                     InputGitTreeElement("src/a.c", "100644", "blob", sha=None)],
                                    base_tree=repo.get_git_tree(tree))
    commit = repo.create_git_commit("Add c, drop a", new_tree, [repo.get_git_commit(main.sha)])
    assert commit.tree.sha == new_tree.sha and [p.sha for p in commit.parents] == [main.sha]
    assert "src/a.c" not in gh.files("o/r", commit.sha) and gh.files("o/r", commit.sha)["src/c.c"] == b"int c;\n"

    with pytest.raises(GithubException) as existing:
        repo.create_git_ref("refs/heads/main", commit.sha)
    assert existing.value.status == 422 and existing.value.data["message"] == "Reference already exists"
    ref = repo.get_git_ref("heads/main")
    assert ref.object.sha == main.sha  # read: a lazy ref would write to /git/ref/, which GitHub does not serve
    ref.edit(commit.sha)
    sideways = repo.create_git_commit("Sideways", new_tree, [repo.get_git_commit(main.sha)])
    with pytest.raises(GithubException) as stale:
        ref.edit(sideways.sha)
    assert stale.value.status == 422 and stale.value.data["message"] == "Update is not a fast forward"
    ref.edit(sideways.sha, force=True)
    assert gh.repo("o/r").branches["main"] == sideways.sha
    with pytest.raises(GithubException) as bad:
        repo.create_git_tree([InputGitTreeElement("x", "100644", "blob", sha="0" * 40)])
    assert bad.value.status == 422


def test_emulator_contents_limits_and_rate_limit_headers(gh, gh_client):
    big, huge = b"x" * (2 * MiB), b"y" * (100 * MiB + 1)
    gh.create_repo("o/r", files={"big.bin": big, "huge.bin": huge, "small.txt": b"s\n"})
    repo = gh_client.get_repo("o/r")
    found = repo.get_contents("big.bin")
    assert (found.encoding, found.content, found.size, found.sha) == ("none", "", 2 * MiB, git_blob_sha(big))
    with pytest.raises(GithubException) as too_large:
        repo.get_contents("huge.bin")
    assert too_large.value.status == 403 and too_large.value.data["errors"][0]["code"] == "too_large"
    with pytest.raises(GithubException) as refused:
        repo.create_git_blob("z" * (100 * MiB + 1), "utf-8")
    assert refused.value.status == 422
    import urllib.request

    with urllib.request.urlopen(f"{gh.base_url}/repos/o/r") as answer:  # noqa: S310 (the local emulator)
        assert answer.headers["x-ratelimit-limit"] == "5000" and int(answer.headers["x-ratelimit-remaining"]) < 5000
