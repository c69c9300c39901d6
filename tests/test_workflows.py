"""The GitHub Action and the reusable workflows: their security rules, read from the YAML, and what they run
when a runner plays them (tests/actions_runner.py) against the GitHub and Hub emulators.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from actions_runner import GH_REPO, HUB_ENV, Runner, as_text, condition, evaluate, load, read_outputs
from conftest import REPO
from emulator_fixtures import HF_TOKEN
from factory import adapter, make_project, source

from kiki_bot import init
from kiki_bot.repo import skeleton

FIXTURES = REPO / "tests" / "fixtures" / "github-events"
OWN = REPO / ".github" / "workflows"
ACTION = REPO / "action.yml"
PIN = "4f8c1e0b9d2a7c6e5f4a3b2c1d0e9f8a7b6c5d4e"  # the kiki-bot commit the callers are written to pin (init --ref)

CHECKOUT = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683"
SETUP_PYTHON = "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065"

# Least privilege, job by job: exactly these scopes, nothing more.
PERMISSIONS = {
    "release": {"tag": {}, "release": {"contents": "write", "pull-requests": "write"}},
    "publish": {"branch": {}, "publish": {"contents": "write", "issues": "write"}},
    "removal-triage": {"triage": {"contents": "read", "issues": "write"}},
    "removal-purge": {"purge": {"contents": "write", "pull-requests": "write", "issues": "write"}},
    "removal-refresh": {"refresh": {"contents": "write", "pull-requests": "write"}},
    "deadlines": {"deadlines": {"contents": "write", "actions": "write", "pull-requests": "write", "issues": "write"}},
    "card-review": {"review": {"contents": "read", "pull-requests": "write", "issues": "write"}},
    "ci": {"ci": {"contents": "read"}},
}
TRIGGERS = {  # what each caller written by `init` listens to
    "release": {
        "push": {"tags": ["*/v*"]},
        "workflow_dispatch": {"inputs": {"tag": {
            "description": "The release tag <adapter>/v<semver> to build; the dispatch runs on that tag.",
            "required": True,
            "type": "string",
        }}},
    },
    "publish": {"pull_request": {"types": ["closed"]}},
    "removal-triage": {"issues": {"types": ["opened", "labeled"]}},
    "removal-purge": {"issue_comment": {"types": ["created"]}},
    "removal-refresh": {"push": {"branches": ["main"]}},
    "deadlines": {"schedule": [{"cron": "0 */6 * * *"}], "workflow_dispatch": None},
    "card-review": {"pull_request": {"types": ["opened", "synchronize", "reopened"]}},
}


@pytest.fixture(scope="module")
def callers(tmp_path_factory) -> dict[str, Path]:
    """The caller workflows `kiki-bot init` writes, by moment."""
    root = tmp_path_factory.mktemp("init")
    init.init(root, repository="example-org/models", ref=PIN)
    return {m: root / ".github" / "workflows" / f"kiki-{m}.yml" for m in skeleton.MOMENTS}


def all_workflows(callers: dict[str, Path]) -> list[Path]:
    return sorted(OWN.glob("*.yml")) + list(callers.values())


def steps_of(doc: dict) -> list[tuple[str, dict]]:
    """(job id, step) for every step of a workflow, or of a composite action (job id `action`)."""
    if "runs" in doc:
        return [("action", s) for s in doc["runs"]["steps"]]
    return [(jid, s) for jid, job in doc["jobs"].items() for s in job.get("steps", [])]


# ================================================================ the rules, read from the YAML
def test_every_moment_has_a_reusable_workflow_and_a_caller(callers):
    assert sorted(p.stem for p in OWN.glob("*.yml")) == sorted([*skeleton.MOMENTS, "ci"])
    for moment in skeleton.MOMENTS:
        assert "workflow_call" in load(OWN / f"{moment}.yml")["on"]
        assert load(callers[moment])["on"] == TRIGGERS[moment], moment


def test_no_dangerous_triggers(callers):
    for path in all_workflows(callers):
        on = load(path)["on"]
        assert not {"pull_request_target", "workflow_run"} & set(on), path
        assert "edited" not in ((on.get("issues") or {}).get("types") or []), path
        assert "edited" not in ((on.get("issue_comment") or {}).get("types") or []), path


def test_permissions_are_empty_at_workflow_level_and_least_per_job(callers):
    for path in all_workflows(callers):
        doc = load(path)
        assert doc["permissions"] == {}, f"{path}: workflow-level permissions must be {{}}"
        for jid, job in doc["jobs"].items():
            assert "permissions" in job, f"{path}: job {jid} must declare its permissions"
    for name, jobs in PERMISSIONS.items():
        doc = load(OWN / f"{name}.yml")
        assert {jid: job["permissions"] for jid, job in doc["jobs"].items()} == jobs, name


def test_callers_grant_exactly_what_the_reusable_workflow_asks(callers):
    """A called job can only lower the caller's token permissions, so the caller must grant their union."""
    for moment, path in callers.items():
        [job] = load(path)["jobs"].values()
        wanted: dict[str, str] = {}
        for scopes in PERMISSIONS[moment].values():
            for scope, level in scopes.items():
                wanted[scope] = "write" if "write" in (level, wanted.get(scope)) else level
        assert job["permissions"] == wanted, moment


def test_third_party_actions_are_pinned_and_checkout_keeps_no_credentials(callers):
    for path in [ACTION, *all_workflows(callers)]:
        doc = load(path)
        uses = [s["uses"] for _, s in steps_of(doc) if "uses" in s]
        uses += [job["uses"] for job in (doc.get("jobs") or {}).values() if "uses" in job]
        for ref in uses:
            if ref.startswith("./"):
                continue
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), (
                f"{path}: {ref} is not pinned to a full SHA"
            )
        for _, step in steps_of(doc):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["uses"] == CHECKOUT and step["with"]["persist-credentials"] is False, path
            if step.get("uses", "").startswith("actions/setup-python@"):
                assert step["uses"] == SETUP_PYTHON, path


def test_callers_pin_kiki_bot_by_the_same_sha_twice(callers):
    for moment, path in callers.items():
        [job] = load(path)["jobs"].values()
        assert (
            job["uses"] == f"{skeleton.KIKI_BOT_REPO}/.github/workflows/{moment}.yml@{PIN}"
        )
        assert job["with"] == {"kiki-bot-ref": PIN}
        assert "secrets" not in job, "the Hub token comes from the hub-publish environment, not the caller"


def test_no_expression_inside_any_run_script(callers):
    """Untrusted text (and everything else) reaches scripts through env: only."""
    for path in [ACTION, *all_workflows(callers)]:
        for jid, step in steps_of(load(path)):
            if "run" in step:
                assert "${{" not in step["run"], f"{path}: job {jid}, step {step.get('name')}"


def test_secrets_only_in_jobs_of_the_hub_publish_environment(callers):
    for path in all_workflows(callers):
        for jid, job in load(path)["jobs"].items():
            text = yaml.safe_dump(job)
            if "secrets." in text or "hf-token" in text:
                assert job.get("environment") == HUB_ENV, f"{path}: job {jid} uses a secret outside {HUB_ENV}"
    hub_jobs = {
        (n, jid)
        for n in PERMISSIONS
        for jid, job in load(OWN / f"{n}.yml")["jobs"].items()
        if job.get("environment") == HUB_ENV
    }
    assert hub_jobs == {
        ("release", "release"),
        ("publish", "publish"),
        ("deadlines", "deadlines"),
        ("removal-purge", "purge"),  # a source's data may live in a Hub dataset
    }


def test_runners_concurrency_and_checkouts():
    release = load(OWN / "release.yml")["jobs"]["release"]
    assert release["runs-on"] == ["self-hosted", "macOS", "ARM64"]
    assert release["concurrency"] == {
        "group": "kiki-release-${{ github.ref_name }}",  # one tag's runs (GitHub keeps one waiting per group)
        "cancel-in-progress": False,
    }
    assert (
        load(OWN / "publish.yml")["jobs"]["publish"]["concurrency"]["group"]
        == "kiki-publish-${{ needs.branch.outputs.adapter }}"
    )
    assert load(OWN / "removal-triage.yml")["jobs"]["triage"]["concurrency"] == {
        "group": "removal-${{ github.event.issue.number }}",
        "cancel-in-progress": False,
    }
    review = load(OWN / "card-review.yml")["jobs"]["review"]
    [head] = [s for s in review["steps"] if s.get("with", {}).get("path") == "model"]
    assert (
        head["with"]["fetch-depth"] == 0
        and head["with"]["ref"] == "${{ github.event.pull_request.head.sha }}"
    )
    ci = load(OWN / "ci.yml")
    assert ci["jobs"]["ci"]["steps"][-1]["run"] == "bash .ci/run"
    assert ci["jobs"]["ci"]["steps"][1]["with"]["python-version"] == "3.11"


def test_action_inputs_reach_scripts_through_env_only():
    doc = load(ACTION)
    assert doc["runs"]["using"] == "composite"
    assert set(doc["inputs"]) >= {"project-dir", "github-token", "hf-token", "dry-run", "extra"}
    assert doc["inputs"]["project-dir"]["default"] == "." and doc["inputs"]["dry-run"]["default"] == "false"
    assert {k: v["value"] for k, v in doc["outputs"].items()} == {
        k: f"${{{{ steps.handle.outputs.{k} }}}}" for k in ("version", "pr-url", "hub-url")
    }
    handle = next(s for s in doc["runs"]["steps"] if s.get("id") == "handle")
    assert handle["env"]["KIKI_GITHUB_TOKEN"] == "${{ inputs.github-token }}"
    assert handle["env"]["HF_TOKEN"] == "${{ inputs.hf-token }}"


def test_action_requirements_satisfy_pyproject():
    """requirements/*.txt pin every runtime dependency (and the train extra) at a version pyproject allows."""
    import tomllib

    from packaging.requirements import Requirement

    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]

    def pins(name: str) -> dict[str, str]:
        text = (REPO / "requirements" / name).read_text()
        assert "--hash=sha256:" in text
        return {
            m.group(1).lower().replace("_", "-"): m.group(2)
            for m in re.finditer(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", text, re.MULTILINE)
        }

    for name, deps in (
        ("action.txt", meta["dependencies"]),
        ("action-train.txt", meta["dependencies"] + meta["optional-dependencies"]["train"]),
    ):
        pinned = pins(name)
        assert "hatchling" in pinned, "the action builds kiki-bot without build isolation"
        for dep in map(Requirement, deps):
            key = dep.name.lower().replace("_", "-")
            if dep.marker and not any(dep.marker.evaluate({"sys_platform": p}) for p in ("linux", "darwin")):
                continue
            assert key in pinned, f"{name}: {dep.name} is not pinned (regenerate: see the file's header)"
            assert dep.specifier.contains(pinned[key], prereleases=True), (
                f"{name}: {key}=={pinned[key]} ∉ {dep}"
            )
    assert "mlx-lm" not in pins("action.txt"), "the light jobs must not install the training stack"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def repo_fields(event: dict) -> dict:
    event["repository"].update(full_name=GH_REPO, default_branch="main")
    return event


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    from kiki_bot.demo.tinymodel import make_tiny_base

    texts = [f"int f{i}(void) {{ return {i}; }} /* explain f{i} */" for i in range(100)]
    return make_tiny_base(tmp_path_factory.mktemp("base"), texts, seed=0)


@pytest.fixture
def model(tmp_path, gh, hub, tiny_base) -> Path:
    """A model repository on disk (what checkout yields) and in the GitHub emulator."""
    ad = adapter(["acme-fw"])
    ad["base_model"].update(local_path=str(tiny_base))
    ad["training"].update(valid_fraction=0.2)
    root = make_project(tmp_path / "model-src", sources={"acme-fw": source()}, adapters={"tiny-lora": ad})
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "data"], check=True)
    gh.create_repo(
        GH_REPO,
        files={str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()},
        private=True,
    )
    return root


def runner(tmp_path: Path, model: Path, event_name: str, payload: dict, **kw) -> Runner:
    home = tmp_path / "run"
    home.mkdir()
    inputs = {"kiki-bot-ref": PIN} | kw.pop("inputs", {})
    return Runner(home, event_name, payload, model, inputs=inputs, **kw)


# ------------------------------------------------------------ moment 1: tag → release (dry run), merge → publish
def test_release_workflow_on_a_tag_push(tmp_path, model, gh, hub):
    event = repo_fields(fixture("push.payload.json"))
    event.update(ref="refs/tags/tiny-lora/v0.1.0", created=True, deleted=False)
    run = runner(
        tmp_path, model, "push", event, inputs={"dry-run": True}, environment_secrets={"HF_TOKEN": HF_TOKEN}
    )
    jobs = run.run(OWN / "release.yml")
    assert jobs["tag"].status == "success" and jobs["tag"].outputs == {"adapter": "tiny-lora"}
    release = jobs["release"]
    assert release.status == "success", "\n".join(release.logs)
    # The training extra was installed from the pinned, hash-checked requirements, then kiki-bot without deps.
    pip = run.pip_log.read_text().splitlines()
    assert pip[0].startswith("-m pip install") and "--require-hashes -r " in pip[0]
    assert Path(pip[0].split(" -r ")[1]).resolve() == REPO / "requirements" / "action-train.txt"
    assert "--no-deps --no-build-isolation " in pip[1] and Path(pip[1].split()[-1]).resolve() == REPO
    # --dry-run: the plan printed as JSON lines, nothing done.
    handle_log = release.logs[-1]
    planned = [
        json.loads(line)["action"]
        for line in handle_log.split("\n--- stderr")[0].splitlines()
        if line.startswith("{")
    ]
    assert planned == ["train", "hub_stage", "pull_request"]
    assert gh.pulls(GH_REPO) == [] and [r for r in [*gh.requests, *hub.requests] if r.method != "GET"] == []
    assert release.outputs["version"] == "0.1.0"
    assert release.summary.startswith("## kiki-bot: push event")
    run.assert_no_token_leaked()


def test_publish_workflow_on_the_merged_review_pr(tmp_path, model, gh, hub, hf_api):
    from kiki_bot.repo import cards
    from kiki_bot.repo.project import Project

    project = Project(model)  # the merged review PR brought the card of 0.1.0
    cards.write(
        project,
        project.adapter("tiny-lora"),
        cards.render_adapter(project, project.adapter("tiny-lora"), "0.1.0"),
    )
    hf_api.create_repo("test-lab/tiny-lora")
    event = repo_fields(fixture("pull_request.closed.payload.json"))
    event["pull_request"].update(merged=True, merge_commit_sha="1" * 40)
    event["pull_request"]["head"]["ref"] = "kiki/release/tiny-lora/0.1.0"
    event["pull_request"]["head"]["repo"]["full_name"] = GH_REPO
    run = runner(tmp_path, model, "pull_request", event, environment_secrets={"HF_TOKEN": HF_TOKEN})
    jobs = run.run(OWN / "publish.yml")
    assert jobs["branch"].outputs == {"adapter": "tiny-lora"}
    publish = jobs["publish"]
    assert publish.status == "success", "\n".join(publish.logs)
    assert publish.outputs == {
        "version": "0.1.0",
        "hub-url": f"{os.environ['HF_ENDPOINT']}/test-lab/tiny-lora/tree/v0.1.0",
    }
    assert [r.tag_name for r in gh.releases(GH_REPO)] == ["tiny-lora/v0.1.0"]
    assert run.pip_log.read_text().splitlines()[0].endswith("requirements/action.txt")
    assert publish.summary.startswith("## kiki-bot: pull_request event")
    run.assert_no_token_leaked()


def test_publish_ignores_unmerged_and_foreign_review_branches(tmp_path, model):
    base = repo_fields(fixture("pull_request.closed.payload.json"))
    base["pull_request"]["head"]["ref"] = "kiki/release/tiny-lora/0.1.0"
    base["pull_request"]["head"]["repo"]["full_name"] = GH_REPO
    not_merged = copy.deepcopy(base)
    not_merged["pull_request"]["merged"] = False
    fork = copy.deepcopy(base)
    fork["pull_request"].update(merged=True)
    fork["pull_request"]["head"]["repo"]["full_name"] = "mallory/models"
    other = copy.deepcopy(base)
    other["pull_request"].update(merged=True)
    other["pull_request"]["head"]["ref"] = "feature/kiki/release/x/1.0.0"
    for n, event in enumerate((not_merged, fork, other)):
        (tmp_path / str(n)).mkdir()
        jobs = runner(tmp_path / str(n), model, "pull_request", event).run(OWN / "publish.yml")
        assert {j.status for j in jobs.values()} == {"skipped"}


def test_a_bad_ref_or_tag_stops_the_release_before_anything_runs(tmp_path, model):
    event = repo_fields(fixture("push.payload.json"))
    event.update(ref="refs/tags/tiny-lora/v0.1.0", deleted=False)
    for n, (inputs, ref) in enumerate(
        (
            ({"kiki-bot-ref": "main"}, "refs/tags/tiny-lora/v0.1.0"),
            ({}, "refs/tags/$(touch pwned)/v1"),
            ({}, "refs/tags/v1.0.0"),
        )
    ):
        (tmp_path / str(n)).mkdir()
        payload = event | {"ref": ref}
        run = runner(tmp_path / str(n), model, "push", payload, inputs=inputs)
        jobs = run.run(OWN / "release.yml")
        assert jobs["tag"].status == "failure" and jobs["release"].status == "skipped", ref
        assert "::error title=kiki-bot::" in jobs["tag"].logs[0]
        assert not list((tmp_path / str(n)).rglob("pwned"))


def test_release_runs_for_the_bots_own_dispatch_on_the_tag_it_names(tmp_path, model, gh, hub):
    """The deadline run dispatches the release caller on the tag it made (its token's tag push starts nothing):
    that runs the release; a dispatch by anyone else, on a branch, or naming another tag runs nothing."""
    tag = "tiny-lora/v0.1.0"

    def dispatched(sender: str, ref: str = f"refs/tags/{tag}", named: str = tag) -> dict:
        event = repo_fields(fixture("workflow_dispatch.payload.json"))
        event.update(ref=ref, inputs={"tag": named}, workflow=".github/workflows/kiki-release.yml")
        event["sender"].update(login=sender, type="Bot" if sender.endswith("[bot]") else "User")
        return event

    cases = [  # (event, tag job, release job)
        (dispatched("github-actions[bot]"), "success", "success"),
        (dispatched("octocat"), "skipped", "skipped"),
        (dispatched("github-actions[bot]", ref="refs/heads/main"), "skipped", "skipped"),
        (dispatched("github-actions[bot]", named="tiny-lora/v9.9.9"), "failure", "skipped"),
    ]
    results = []
    for n, (event, tag_status, release_status) in enumerate(cases):
        (tmp_path / str(n)).mkdir()
        run = runner(tmp_path / str(n), model, "workflow_dispatch", event, inputs={"dry-run": True})
        results.append(jobs := run.run(OWN / "release.yml"))
        assert (jobs["tag"].status, jobs["release"].status) == (tag_status, release_status), n
        run.assert_no_token_leaked()
    assert results[0]["tag"].outputs == {"adapter": "tiny-lora"}
    handle_log = results[0]["release"].logs[-1].split("\n--- stderr")[0]
    planned = [json.loads(line)["action"] for line in handle_log.splitlines() if line.startswith("{")]
    assert planned == ["train", "hub_stage", "pull_request"]
    assert "::error title=kiki-bot::a dispatched release must run on the tag its input names" in results[3]["tag"].logs[0]


# ------------------------------------------------------------ moments 2 and 3, and the deadline run
FORM_BODY = """### Content to remove

acme/fw

### Your relationship to the content

I am the author or rightsholder

### Reason

Copyright

### Additional details

_No response_

### Confirmation

- [X] I confirm that the information in this request is accurate
"""


def issue_event(action: str, labels: list[str], sender_type: str = "User") -> dict:
    """An issue event about an issue that exists in the GitHub emulator (opened with the removal form)."""
    from emulator_fixtures import GITHUB

    event = repo_fields(fixture("issues.opened.payload.json"))
    event["action"] = action
    event["issue"].update(body=FORM_BODY, labels=[{"name": name} for name in labels])
    event["issue"]["number"] = GITHUB.open_issue(
        GH_REPO, "Removal request", FORM_BODY, event["sender"]["login"], labels
    )
    event["sender"]["type"] = sender_type
    if action == "labeled":
        event["label"] = {"name": labels[-1]}
    return event


def comment_event(
    body: str,
    labels: list[str],
    on_pull_request: bool = False,
    user_type: str = "User",
    number: int | None = None,
) -> dict:
    """A maintainer's comment on a removal request that exists in the GitHub emulator (issue `number`, or a new one)."""
    from emulator_fixtures import GITHUB

    event = repo_fields(fixture("issue_comment.created.payload.json"))
    login = event["comment"]["user"]["login"]
    GITHUB.set_permission(GH_REPO, login, "write")
    event["issue"]["number"] = number or GITHUB.open_issue(
        GH_REPO, "Removal request", FORM_BODY, "requester", labels
    )
    event["comment"].update(body=body, id=GITHUB.add_comment(GH_REPO, event["issue"]["number"], body, login))
    event["comment"]["user"]["type"] = user_type
    event["issue"]["labels"] = [{"name": name} for name in labels]
    event["issue"].pop("pull_request", None)
    if on_pull_request:
        event["issue"]["pull_request"] = {"url": "https://api.github.com/repos/o/r/pulls/1"}
    return event


def pr_event(action: str, model: Path) -> dict:
    """A pull request whose base and head are the model repository's commit (the checkout is a git clone)."""
    event = repo_fields(fixture("pull_request.opened.payload.json"))
    event["action"] = action
    sha = subprocess.run(
        ["git", "-C", str(model), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    event["pull_request"]["head"].update(sha=sha, ref="data-update")
    event["pull_request"]["base"].update(sha=sha, ref="main")
    return event


def by_stranger(event: dict) -> dict:
    """The comment written by someone with no role in the repository who did not open the issue."""
    event["comment"].update(author_association="NONE")
    event["comment"]["user"].update(login="mallory", id=6666)
    return event


CASES = [  # (reusable workflow, event name, payload, does its job run?)
    ("removal-triage", "issues", lambda m: issue_event("opened", ["removal-request"]), True),
    ("removal-triage", "issues", lambda m: issue_event("labeled", ["removal-request"]), True),
    (
        "removal-triage",
        "issues",
        lambda m: issue_event("labeled", ["removal-request", "awaiting-approval"]),
        False,
    ),
    ("removal-triage", "issues", lambda m: issue_event("opened", ["bug"]), False),
    (
        "removal-triage",
        "issues",
        lambda m: issue_event("opened", ["removal-request"], sender_type="Bot"),
        False,
    ),
    ("removal-triage", "issues", lambda m: issue_event("edited", ["removal-request"]), False),
    ("removal-purge", "issue_comment", lambda m: comment_event("/kiki approve", ["removal-request"]), True),
    (
        "removal-purge",
        "issue_comment",
        lambda m: comment_event("/kiki reject not ours", ["removal-request"]),
        True,
    ),
    ("removal-purge", "issue_comment", lambda m: comment_event("thanks!", ["removal-request"]), False),
    (
        "removal-purge",
        "issue_comment",
        lambda m: by_stranger(comment_event("/kiki approve", ["removal-request"])),
        False,
    ),
    ("removal-purge", "issue_comment", lambda m: comment_event("/kiki approve", ["bug"]), False),
    (
        "removal-purge",
        "issue_comment",
        lambda m: comment_event("/kiki approve", ["removal-request"], True),
        False,
    ),
    (
        "removal-purge",
        "issue_comment",
        lambda m: comment_event("/kiki approve", ["removal-request"], user_type="Bot"),
        False,
    ),
    ("card-review", "pull_request", lambda m: pr_event("opened", m), True),
    ("card-review", "pull_request", lambda m: pr_event("synchronize", m), True),
    ("card-review", "pull_request", lambda m: pr_event("closed", m), False),
    (
        "deadlines",
        "schedule",
        lambda m: {"schedule": "0 */6 * * *", "repository": {"full_name": GH_REPO}},
        True,
    ),
    (
        "deadlines",
        "workflow_dispatch",
        lambda m: repo_fields(fixture("workflow_dispatch.payload.json")),
        True,
    ),
    ("deadlines", "push", lambda m: repo_fields(fixture("push.payload.json")), False),
]


@pytest.mark.parametrize(
    ("workflow", "event_name", "payload", "runs"),
    CASES,
    ids=[f"{w}-{e}-{n}" for n, (w, e, _, _) in enumerate(CASES)],
)
def test_which_events_start_a_job(tmp_path, model, workflow, event_name, payload, runs):
    """Each job's `if:` on the real event payloads; a job that runs goes through to `kiki-bot handle` (dry run)."""
    run = runner(
        tmp_path,
        model,
        event_name,
        payload(model),
        inputs={"dry-run": True},
        environment_secrets={"HF_TOKEN": HF_TOKEN},
    )
    [job] = run.run(OWN / f"{workflow}.yml").values()
    if not runs:
        assert job.status == "skipped"
        return
    assert job.status == "success", "\n".join(job.logs)
    assert job.summary.startswith(f"## kiki-bot: {event_name} event")
    [install, _] = run.pip_log.read_text().splitlines()
    assert Path(install.split(" -r ")[1]).resolve() == REPO / "requirements" / "action.txt"
    run.assert_no_token_leaked()


def test_expressions_evaluate_as_github_does(tmp_path):
    ctx = {
        "github": {
            "event": {
                "issue": {"labels": [{"name": "Removal-Request"}, {"name": "bug"}]},
                "comment": {"body": "/KIKI approve"},
            },
            "event_name": "issues",
        },
        "inputs": {"dry-run": False, "project-dir": "."},
    }
    assert condition("contains(github.event.issue.labels.*.name, 'removal-request')", ctx)
    assert condition(
        "startsWith(github.event.comment.body, '/kiki') && !github.event.issue.pull_request", ctx
    )
    assert not condition("github.event_name == 'push' || github.event.missing.deep == 'x'", ctx)
    assert evaluate("model/${{ inputs.project-dir }}", ctx) == "model/."
    assert evaluate("${{ inputs.dry-run }}", ctx) is False and as_text(False) == "false"
    (tmp_path / "out").write_text("a=1\nb<<EOF_x\nline 1\nline 2\nEOF_x\n")
    assert read_outputs(tmp_path / "out") == {"a": "1", "b": "line 1\nline 2"}


def test_the_purge_job_holds_the_hub_token_and_triage_does_not(tmp_path, model, gh, hub):
    """The gated job that purges runs in the hub-publish environment and gets HF_TOKEN, so a source whose data
    lives in a Hub dataset is purged there too; the untrusted triage job gets neither."""
    data = model / "data" / "acme-fw" / "part-000.jsonl"
    src = model / "sources" / "acme-fw.toml"
    src.write_text(src.read_text() + '\n[hub_data]\nrepo = "test-lab/fw-data"\n')
    dataset = hub.create_repo("test-lab/fw-data", repo_type="dataset", files={"part-000.jsonl": data.read_bytes()})
    commits = len(dataset.log("main"))
    opened = issue_event("opened", ["removal-request"])
    jobs = {}
    for name, event_name, payload in (
        ("removal-triage", "issues", opened),
        ("removal-purge", "issue_comment", comment_event("/kiki approve", ["removal-request"],
                                                         number=opened["issue"]["number"])),
    ):
        (tmp_path / name).mkdir()
        run = runner(tmp_path / name, model, event_name, payload, environment_secrets={"HF_TOKEN": HF_TOKEN})
        [jobs[name]] = run.run(OWN / f"{name}.yml").values()
        assert jobs[name].status == "success", "\n".join(jobs[name].logs)
        run.assert_no_token_leaked()
    assert "HF_TOKEN" not in jobs["removal-triage"].env_seen
    assert "HF_TOKEN" in jobs["removal-purge"].env_seen
    assert load(OWN / "removal-purge.yml")["jobs"]["purge"]["environment"] == HUB_ENV
    assert "environment" not in load(OWN / "removal-triage.yml")["jobs"]["triage"]
    assert len(dataset.log("main")) == commits + 1  # the purge's commit on the Hub
    assert dataset.files("main")["part-000.jsonl"] != data.read_bytes()


def test_a_push_to_the_default_branch_rebuilds_a_stale_purge_pr(tmp_path, model, gh):
    """The default branch moves while a purge PR is open: the refresh job rebuilds the PR's branch on the new
    head, under its own token (contents and pull requests, no issue access), so the PR can merge."""
    opened = issue_event("opened", ["removal-request"])
    approve = comment_event("/kiki approve", ["removal-request"], number=opened["issue"]["number"])
    for name, event_name, payload in (("removal-triage", "issues", opened),
                                      ("removal-purge", "issue_comment", approve)):
        (tmp_path / name).mkdir()
        [job] = runner(tmp_path / name, model, event_name, payload).run(OWN / f"{name}.yml").values()
        assert job.status == "success", "\n".join(job.logs)
    [pr] = gh.pulls(GH_REPO)
    purged = {p: b for p, b in gh.files(GH_REPO, pr.pull.head).items() if p.startswith(("data/", "compliance/"))}
    moved = gh.push(GH_REPO, "main", {"README.md": b"a maintainer's change\n"})
    history, said = gh.repo(GH_REPO).history, len(gh.comments(GH_REPO, opened["issue"]["number"]))
    assert not history.is_ancestor(moved, gh.repo(GH_REPO).branches[pr.pull.head])  # left behind
    push = repo_fields(fixture("push.payload.json"))
    push.update(ref="refs/heads/main", after=moved, created=False, deleted=False)
    (tmp_path / "refresh").mkdir()
    run = runner(tmp_path / "refresh", model, "push", push)
    [job] = run.run(OWN / "removal-refresh.yml").values()
    assert job.status == "success", "\n".join(job.logs)
    assert gh.scopes[run.tokens[-1]] == {"contents": "write", "pull-requests": "write"}
    assert {r.token for r in gh.requests if r.method != "GET"} >= {run.tokens[-1]}
    head = gh.repo(GH_REPO).branches[pr.pull.head]
    assert history.is_ancestor(moved, head) and gh.issue(GH_REPO, pr.number).state == "open"
    rebuilt = gh.files(GH_REPO, pr.pull.head)
    assert rebuilt["README.md"] == b"a maintainer's change\n"
    assert {p: rebuilt[p] for p in purged} == purged  # the purge, carried over whole
    assert len(gh.comments(GH_REPO, opened["issue"]["number"])) == said
    run.assert_no_token_leaked()


# ------------------------------------------------------------ concurrency: who can displace a maintainer's decision
REQUESTER = ("requester", 1001)


def on_request(event: dict, number: int = 7) -> dict:
    """`event` about removal request #`number`, opened by REQUESTER."""
    event["issue"].update(number=number, labels=[{"name": "removal-request"}])
    event["issue"].pop("pull_request", None)
    event["issue"]["user"].update(login=REQUESTER[0], id=REQUESTER[1], type="User")
    event["sender"].update(login=REQUESTER[0], id=REQUESTER[1], type="User")
    return event


def opened_request() -> tuple[str, dict]:
    return "issues", on_request(repo_fields(fixture("issues.opened.payload.json")))


def command(body: str, association: str, user: tuple[str, int]) -> tuple[str, dict]:
    """A `/kiki …` comment on request #7 by `user`, whom GitHub relates to the repository as `association`."""
    event = on_request(repo_fields(fixture("issue_comment.created.payload.json")))
    event["comment"].update(body=body, author_association=association)
    event["comment"]["user"].update(login=user[0], id=user[1], type="User")
    event["sender"].update(login=user[0], id=user[1])
    return "issue_comment", event


def queue(arrivals: list[tuple[str, tuple[str, dict]]], callers: dict[str, Path]) -> tuple[list[str], list[str]]:
    """GitHub's job concurrency for events arriving while every job that started is still running: per group
    one job runs and one waits; a newer waiting job cancels the one waiting before it (`cancel-in-progress:
    true` would cancel the running one too). A job skipped by its `if:` (the caller's or the reusable
    workflow's) never joins a group. Returns (labels of the jobs started or waiting, labels of those cancelled)."""
    joined = []
    for label, (event_name, payload) in arrivals:
        moment = {"issues": "removal-triage", "issue_comment": "removal-purge"}[event_name]
        ctx = {"github": {"event_name": event_name, "event": payload, "repository": GH_REPO}, "inputs": {}}
        [caller] = load(callers[moment])["jobs"].values()
        [job] = load(OWN / f"{moment}.yml")["jobs"].values()
        if condition(caller.get("if"), ctx) and condition(job.get("if"), ctx):
            joined.append((label, job, ctx))
    return waitlist(joined)


def waitlist(joined: list[tuple[str, dict, dict]]) -> tuple[list[str], list[str]]:
    """GitHub's rule for jobs (label, job, expression context) joining their concurrency groups in this order,
    every one that started still running: (labels started or waiting, labels cancelled)."""
    running: dict[str, str] = {}
    waiting: dict[str, str] = {}
    cancelled: list[str] = []
    for label, job, ctx in joined:
        group = str(evaluate(job["concurrency"]["group"], ctx)).casefold()  # group names ignore case
        if group not in running:
            running[group] = label
            continue
        if job["concurrency"]["cancel-in-progress"] is not False:
            cancelled.append(running[group])
        if group in waiting:
            cancelled.append(waiting[group])
        waiting[group] = label
    return [*running.values(), *waiting.values()], cancelled


MAINTAINER, OTHER_MAINTAINER, STRANGER = ("maint", 2002), ("maint2", 2003), ("mallory", 6666)


def test_no_comment_displaces_a_maintainers_pending_decision(callers):
    """Triage is still running when a maintainer approves; a stranger's `/kiki x` and the requester's own
    comment arrive next. The approval neither waits behind triage nor is cancelled by either comment."""
    kept, cancelled = queue(
        [
            ("triage", opened_request()),
            ("approve", command("/kiki approve", "MEMBER", MAINTAINER)),
            ("stranger", command("/kiki x", "NONE", STRANGER)),
            ("contributor", command("/kiki approve", "CONTRIBUTOR", STRANGER)),
            ("requester", command("/kiki approve", "NONE", REQUESTER)),
        ],
        callers,
    )
    assert cancelled == []
    assert sorted(kept) == ["approve", "requester", "triage"]  # a stranger's comment starts no job at all


def test_a_collaborator_without_the_permission_cannot_displace_a_maintainers_waiting_decision(callers):
    """GitHub keeps one waiting job per concurrency group, and the `if:` lets in every collaborator: kiki-bot
    checks their permission only once the job runs. A read-only collaborator's second `/kiki approve` while
    their first runs must not cancel the maintainer's approval waiting between them: that purge would be lost."""
    reader = ("reader", 4004)
    kept, cancelled = queue(
        [
            ("reader-1", command("/kiki approve", "COLLABORATOR", reader)),
            ("approve", command("/kiki approve", "MEMBER", MAINTAINER)),
            ("reader-2", command("/kiki approve", "COLLABORATOR", reader)),
            ("reader-3", command("/kiki approve", "COLLABORATOR", reader)),
        ],
        callers,
    )
    assert "approve" in kept and "approve" not in cancelled


def test_a_release_the_deadline_run_dispatched_is_never_displaced_by_another_tag():
    """The deadline run dispatches the retrain it tagged while another release of the adapter runs; a
    maintainer's tag pushed next must not cancel the dispatched one waiting: the deadline would pass."""
    job = load(OWN / "release.yml")["jobs"]["release"]

    def tagged(tag: str, event: str) -> dict:
        return {"github": {"event_name": event, "ref": f"refs/tags/{tag}", "ref_name": tag, "repository": GH_REPO},
                "needs": {"tag": {"outputs": {"adapter": tag.split("/")[0]}}}, "inputs": {}}

    kept, cancelled = waitlist([("v0.2.0", job, tagged("tiny-lora/v0.2.0", "push")),
                                ("retrain", job, tagged("tiny-lora/v0.1.1", "workflow_dispatch")),
                                ("v0.2.1", job, tagged("tiny-lora/v0.2.1", "push"))])
    assert cancelled == [] and "retrain" in kept


def test_a_second_maintainer_command_queues_apart_from_the_first(callers):
    """Each person's commands on one request queue in a group of their own, none cancelling a running one or
    anyone else's waiting one; the requester's own comments (self-approval) queue apart too. Different people's
    commands may run at once: one decision per request holds through the branch's ledger (kiki-bot refuses to
    push a ledger without the steps the branch records, and a later decision is answered, changing nothing)."""
    kept, cancelled = queue(
        [
            ("approve", command("/kiki approve", "COLLABORATOR", MAINTAINER)),
            ("reject", command("/kiki reject not ours", "OWNER", OTHER_MAINTAINER)),
            ("requester-1", command("/kiki approve", "NONE", REQUESTER)),
            ("requester-2", command("/kiki approve", "NONE", REQUESTER)),
        ],
        callers,
    )
    assert cancelled == [] and sorted(kept) == ["approve", "reject", "requester-1", "requester-2"]
    groups = {
        name: load(OWN / f"{name}.yml")["jobs"][jid]["concurrency"]
        for name, jid in (("removal-triage", "triage"), ("removal-purge", "purge"))
    }
    assert groups["removal-purge"]["cancel-in-progress"] is False
    assert groups["removal-purge"]["group"] != groups["removal-triage"]["group"]
