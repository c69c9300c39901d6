"""The README's quick start, played exactly as printed: its shell commands are read from README.md's
"Quick start" code blocks (so this test breaks when the README drifts) and run in a shell, from `kiki-bot init`
in an empty clone through the edits, `data manifest`, `card render`, `card check`, commit, push and the
release tag. What GitHub Actions then does runs on the emulators: the tag push releases (real training on a
tiny base), the maintainer merges the review pull request, the merge publishes.

Two steps cannot run literally offline, and are done as their result: `pip install 'kiki-bot @ git+https://…'`
(kiki-bot is installed already; the metadata such an install leaves, PEP 610 `direct_url.json` with the
commit, is put ahead on the path), and the edits the README asks for in an editor.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w
from conftest import REPO
from factory import record, write_jsonl
from test_init import dist_info, fill_in, pins

GH_REPO = "octo-org/models"
ORIGIN = f"https://github.com/{GH_REPO}.git"
COMMIT = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"  # the kiki-bot commit `pip install` from git would record
TAG = "example-lora/v0.1.0"
MAINTAINER = {"login": "octo-maintainer", "type": "User"}


def quick_start() -> list[list[str]]:
    """The commands of each `sh` block of the README's quick start, comments dropped."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## Quick start")
    section = text[start:text.index("\n## ", start + 1)]
    blocks = re.findall(r"^```sh\n(.*?)^```", section, re.S | re.M)
    return [[line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
            for block in blocks]


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    from kiki_bot.demo.tinymodel import make_tiny_base

    texts = [f"int f{i}(void) {{ return {i}; }} /* explain f{i} */" for i in range(200)]
    return make_tiny_base(tmp_path_factory.mktemp("base"), texts, seed=0)


def shell(tmp_path: Path) -> dict[str, str]:
    """A user's shell: kiki-bot on PATH as installed from git at COMMIT, a git identity, no CI variables."""
    site = dist_info(tmp_path / "site", {"url": "https://github.com/kiki-bot/kiki-bot",
                                          "vcs_info": {"vcs": "git", "commit_id": COMMIT}})
    env = {k: v for k, v in os.environ.items()
           if k not in ("GITHUB_TOKEN", "KIKI_GITHUB_TOKEN", "GITHUB_REPOSITORY", "GITHUB_ACTIONS", "CI")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(site),
               GIT_AUTHOR_NAME="Octo", GIT_AUTHOR_EMAIL="octo@example.org", GIT_COMMITTER_NAME="Octo",
               GIT_COMMITTER_EMAIL="octo@example.org")
    return env


def run(line: str, cwd: Path, env: dict[str, str]) -> None:
    if line.startswith("pip install "):  # done as its result: see the module docstring
        assert "git+https://github.com/kiki-bot/kiki-bot" in line, line
        return
    res = subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"$ {line}\n{res.stdout}\n{res.stderr}"


def edit(repo: Path, base: Path) -> None:
    """What the README asks for in an editor: kiki.toml and the adapter filled in, the base model, own records."""
    fill_in(repo)
    path = repo / "adapters" / "example-lora.toml"
    doc = tomllib.loads(path.read_text())
    doc["base_model"].update(id="octo-org/tiny-base", license="Apache-2.0", parameters=150000.0,
                             local_path=str(base))
    doc["lora"].update(num_layers=2)
    doc["training"].update(iters=10, batch_size=2, learning_rate=1e-3, max_seq_length=64, save_every=5,
                           steps_per_report=5, steps_per_eval=5, valid_fraction=0.2)
    path.write_text(tomli_w.dumps(doc))
    write_jsonl(repo / "data" / "example-source" / "part-000.jsonl",
                [record("example-source", i, f"int f{i}(void) {{ return {i}; }}", repo="example-org/example-firmware",
                        origin=f"https://github.com/example-org/example-firmware/blob/main/src/f{i}.c")
                 for i in range(20)])
    source = repo / "sources" / "example-source.toml"  # where they come from: collected on 2025-10-02
    doc = tomllib.loads(source.read_text())
    doc.update(collected_from=dt.date(2025, 10, 2), collected_to=dt.date(2025, 10, 2))
    source.write_text(tomli_w.dumps(doc))


def event(cli, where: Path, name: str, payload: dict):
    path = where.parent / f"{name}.json"
    path.write_text(json.dumps({**payload, "repository": {"full_name": GH_REPO, "default_branch": "main"},
                                "sender": MAINTAINER}))
    return cli("handle", "--event-name", name, "--event-path", path, "-C", where)


def checkout(gh, ref: str, where: Path) -> Path:
    """What actions/checkout gives a job: the files of `ref` on GitHub."""
    for name, data in gh.files(GH_REPO, ref).items():
        (where / name).parent.mkdir(parents=True, exist_ok=True)
        (where / name).write_bytes(data)
    return where


def test_the_quick_start_as_printed(tmp_path, gh, hub, cli, gh_client, tiny_base, monkeypatch):
    blocks = quick_start()
    assert len(blocks) == 3, blocks  # scaffold; after the edits: manifest, render, check; release
    assert any(line.startswith("kiki-bot init") for line in blocks[0])
    env = shell(tmp_path)
    bare = tmp_path / "github" / "models.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    repo = tmp_path / "models"  # "a clone of your model repository": empty, its origin on github.com
    subprocess.run(["git", "clone", "-q", str(bare), str(repo)], check=True, capture_output=True)
    subprocess.run(["git", "-C", str(repo), "remote", "set-url", "origin", ORIGIN], check=True)
    subprocess.run(["git", "-C", str(repo), "config", f"url.{bare.as_uri()}.pushInsteadOf", ORIGIN], check=True)

    for line in blocks[0]:
        run(line, repo, env)
    assert pins(repo) == {COMMIT}
    assert tomllib.loads((repo / "kiki.toml").read_text())["hub"]["namespace"] == "octo-org"  # from origin
    edit(repo, tiny_base)
    for block in blocks[1:]:
        for line in block:
            run(line, repo, env)
    assert subprocess.run(["git", "-C", str(bare), "rev-parse", TAG], capture_output=True).returncode == 0

    # On GitHub: the pushed repository; the tag push runs the release job in a checkout of the tag.
    pushed = subprocess.run(["git", "-C", str(repo), "ls-files"], capture_output=True, text=True, check=True)
    gh.create_repo(GH_REPO, files={name: (repo / name).read_bytes() for name in pushed.stdout.split()})
    monkeypatch.setenv("KIKI_GITHUB_THROTTLE", "0")
    monkeypatch.setenv("KIKI_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GITHUB_REPOSITORY", GH_REPO)
    runner = checkout(gh, "main", tmp_path / "release-job" / "model")
    res = event(cli, runner, "push", {"ref": f"refs/tags/{TAG}", "created": True, "deleted": False, "base_ref": None})
    assert res.code == 0, res.err
    [pr] = gh.pulls(GH_REPO)
    assert pr.title == f"Release {TAG}"
    review = json.loads(gh.files(GH_REPO, "kiki/release/example-lora/0.1.0")["cards/example-lora/card.json"])
    assert review["run"]["iterations"] == 10 and review["published_at"] is None
    assert review["changelog"][0]["version"] == "0.1.0" and len(review["changelog"]) == 1  # the draft is replaced

    # The maintainer merges the review pull request; the merge runs the publish job on the default branch.
    gh_client.get_repo(GH_REPO).get_pull(pr.number).merge(merge_method="squash")
    publisher = checkout(gh, "main", tmp_path / "publish-job" / "model")
    merged = {"action": "closed", "number": pr.number,
              "pull_request": {"number": pr.number, "merged": True, "head": {"ref": "kiki/release/example-lora/0.1.0"},
                               "base": {"ref": "main"}}}
    res = event(cli, publisher, "pull_request", merged)
    assert res.code == 0, res.err
    assert "v0.1.0" in hub.repo("octo-org/example-lora").tags
    assert [r.tag_name for r in gh.releases(GH_REPO)] == [TAG]
    card = json.loads(gh.files(GH_REPO, "main")["cards/example-lora/card.json"])
    assert card["header"]["version"] == "0.1.0" and card["published_at"] is not None

    # Published now: the same tag again is refused, where before publish it was the first release.
    again = checkout(gh, "main", tmp_path / "next-job" / "model")
    res = cli("release", TAG, "--dry-run", "-C", again)
    assert res.code == 2 and "not newer than the last published version v0.1.0 of example-lora" in res.err


def readme_section(title: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n## {title}")
    return text[start:text.index("\n## ", start + 1)]


def test_the_readme_record_example_is_a_valid_record():
    from kiki_bot.repo.records import parse_line

    [line] = re.findall(r"^```json\n(.*?)\n```", readme_section("The record format"), re.S | re.M)
    rec = parse_line(line.encode(), Path("README.md"), 1)
    assert rec.key == ("my-source", 0) and rec.provenance.sha256 is not None


def test_the_readme_removal_request_parses_and_line_n_counts_within_content_to_remove():
    from kiki_bot.core.issueform import RemovalRequest, parse_removal_request

    [body] = re.findall(r"^```markdown\n(.*?)^```", readme_section("A removal request by hand"), re.S | re.M)
    request = parse_removal_request(body)
    assert isinstance(request, RemovalRequest), request
    assert [s.raw for s in request.selectors] == ["https://github.com/my-org/firmware/blob/main/src/led.c",
                                                   "record:my-source#17"]
    errors = parse_removal_request(body.replace("record:my-source#17", "record:my-source#17\n*"))
    assert [(e.field, e.line) for e in errors] == [("Content to remove", 3)]  # line 3 of the answer, not the file
