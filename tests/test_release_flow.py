"""Moment 1 end to end: a tag push through `kiki-bot handle`, real mlx-lm training on a tiny base,
the review PR in the GitHub emulator, publishing to the Hub emulator — and every way it must refuse."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from conftest import REPO
from factory import adapter, make_project, record, source, write_jsonl

FIXTURES = REPO / "tests" / "fixtures" / "github-events"
GH_REPO = "test-lab/models"
TAG = "tiny-lora/v0.1.0"


# The tiny base converts to PEFT exactly, so PEFT's files take the Hub repo's root and mlx-lm's go under mlx/.
MLX_WEIGHTS = "mlx/adapters.safetensors"


def mlx_weights(files: dict[str, bytes]) -> bytes | None:
    """mlx-lm's weights among a Hub revision's files, in whichever layout that version was staged."""
    return files.get(MLX_WEIGHTS, files.get("adapters.safetensors"))


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def push_event(tag: str) -> dict:
    event = fixture("push.payload.json")
    event.update(ref=f"refs/tags/{tag}", created=True, deleted=False)  # the fixture is a deletion
    event["repository"]["full_name"] = GH_REPO
    event["repository"]["default_branch"] = "main"
    return event


def merged_event(pr_number: int, branch: str) -> dict:
    event = fixture("pull_request.closed.payload.json")
    event["pull_request"].update(number=pr_number, merged=True)
    event["pull_request"]["head"]["ref"] = branch
    event["pull_request"]["base"]["ref"] = "main"
    event["repository"]["full_name"] = GH_REPO
    event["repository"]["default_branch"] = "main"
    return event


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    from kiki_bot.demo.tinymodel import make_tiny_base

    texts = [f"int f{i}(void) {{ return {i}; }} /* explain f{i} */" for i in range(200)]
    return make_tiny_base(tmp_path_factory.mktemp("base"), texts, seed=0)


def tiny_project(root: Path, base: Path, **records) -> Path:
    ad = adapter(["acme-fw"])
    ad["base_model"].update(local_path=str(base), parameters=150000.0)
    ad["training"].update(iters=10, batch_size=2, save_every=5, steps_per_report=5, steps_per_eval=5,
                          max_seq_length=64, valid_fraction=0.2, learning_rate=1e-3)
    ad["eval"] = {"benchmark": "held-out split", "metric": "loss",
                  "command": "python -m kiki_bot.evaluate --base {base} --adapter {adapter} --data {data}"}
    return make_project(root, sources={"acme-fw": source()}, adapters={"tiny-lora": ad}, **records)


@pytest.fixture
def env(gh, hub, monkeypatch, tmp_path, tiny_base):
    """A model repository on disk and in the GitHub emulator, with the runner's environment."""
    project = tiny_project(tmp_path / "repo", tiny_base)
    files = {str(p.relative_to(project)): p.read_bytes() for p in project.rglob("*") if p.is_file()}
    gh.create_repo(GH_REPO, files=files)
    monkeypatch.setenv("KIKI_GITHUB_THROTTLE", "0")
    monkeypatch.setenv("KIKI_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GITHUB_REPOSITORY", GH_REPO)
    return project


def handle(cli, project: Path, name: str, payload: dict, *extra: str):
    path = project.parent / f"{name}.json"
    path.write_text(json.dumps(payload))
    return cli("handle", "--event-name", name, "--event-path", path, "-C", project, *extra)


def writes(emulator) -> list:
    """Requests that change something: not the checks before a commit (YAML, preupload, the LFS batch asking
    which content the Hub lacks)."""
    return [r for r in emulator.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")
            and not r.path.endswith(("/validate-yaml", "/info/lfs/objects/batch")) and "/preupload/" not in r.path]


def test_tag_to_published_adapter(env, gh, hub, cli, gh_client, tiny_base):
    res = handle(cli, env, "push", push_event(TAG))
    assert res.code == 0, res.err
    assert gh.pulls(GH_REPO), res.err
    [pr] = gh.pulls(GH_REPO)
    assert pr.title == f"Release {TAG}"
    branch = gh.files(GH_REPO, "kiki/release/tiny-lora/0.1.0")
    assert b"Public Summary of Training Content" in branch["cards/tiny-lora/README.md"]
    card = json.loads(branch["cards/tiny-lora/card.json"])
    assert card["run"]["trained_tokens"] > 0 and card["evaluation"]["adapter"] is not None
    assert card["run"]["origin"] == "release"  # the release's own training run, not facts typed in
    assert b"Training run (this release's, recorded by kiki-bot): " in branch["cards/tiny-lora/README.md"]
    assert card["published_at"] is None  # under review: not published until publish runs
    assert "loss-curve.svg" in pr.body and "| acme-fw | 20 | 0 | 0 |" in pr.body
    assert "Records in" in pr.body and "Tokens processed" in pr.body and "delta" in pr.body

    staged = hub.repo("test-lab/tiny-lora")
    [hub_pr] = staged.discussions.values()
    assert hub_pr.status == "open" and MLX_WEIGHTS in staged.files(f"refs/pr/{hub_pr.num}")

    # A second delivery of the same event changes nothing and posts nothing.
    gh_writes, hub_writes = len(writes(gh)), len(writes(hub))
    assert handle(cli, env, "push", push_event(TAG)).code == 0
    assert len(writes(gh)) == gh_writes and len(writes(hub)) == hub_writes

    # The maintainer merges; the checkout now has the card; the merged-PR event publishes.
    gh_client.get_repo(GH_REPO).get_pull(pr.number).merge(merge_method="squash")
    for name, data in gh.files(GH_REPO, "main").items():
        (env / name).parent.mkdir(parents=True, exist_ok=True)
        (env / name).write_bytes(data)
    assert handle(cli, env, "pull_request", merged_event(pr.number, "kiki/release/tiny-lora/0.1.0")).code == 0
    assert "v0.1.0" in staged.tags and staged.discussions[hub_pr.num].status == "merged"
    assert [r.tag_name for r in gh.releases(GH_REPO)] == [TAG]
    published = json.loads(gh.files(GH_REPO, "main")["cards/tiny-lora/card.json"])["published_at"]
    assert published is not None  # recorded on the default branch, where the next release reads it
    assert json.loads((env / "cards/tiny-lora/card.json").read_text())["published_at"] == published

    gh_writes, hub_writes = len(writes(gh)), len(writes(hub))
    assert cli("publish", TAG, "-C", env).code == 0
    assert len(writes(gh)) == gh_writes and len(writes(hub)) == hub_writes

    # What users download: a card the Hub accepts, a clean config, an adapter that loads and generates.
    from huggingface_hub import ModelCard, snapshot_download

    from kiki_bot.shells import samples

    local = Path(snapshot_download("test-lab/tiny-lora", revision="v0.1.0"))
    ModelCard((local / "README.md").read_text()).validate()  # the Hub's own check, raises if refused
    assert ModelCard.load("test-lab/tiny-lora").data.base_model == "test-lab/tiny-base"
    config = json.loads((local / "mlx" / "adapter_config.json").read_text())
    assert config["model"] == "test-lab/tiny-base"
    assert not [v for v in json.dumps(config).split('"') if v.startswith("/")]
    assert len((local / "training-content-hashes.txt").read_text().split()) == 20
    assert isinstance(samples.mlx(tiny_base, local / "mlx", "int f", max_tokens=5), str)

    # The same tag again, or an older one, is refused once published.
    for tag in (TAG, "tiny-lora/v0.0.9"):
        res = handle(cli, env, "push", push_event(tag))
        assert res.code == 2 and "not newer than the last published version v0.1.0" in res.err


def _no_side_effects(gh, hub):
    assert gh.pulls(GH_REPO) == [] and writes(hub) == []


@pytest.mark.parametrize("tag,words", [
    ("tiny-lora/0.1.0", "not `<adapter>/v<major>.<minor>.<patch>` (e.g. tiny-lora/v0.1.0)"),
    ("tiny-lora/v1", "not `<adapter>/v"),
    ("Tiny Lora/v0.1.0", "(e.g. tiny-lora/v0.1.0)"),  # the example names this project's adapter
    ("other-lora/v0.1.0", "unknown adapter 'other-lora'"),
])
def test_bad_tags_are_refused(env, gh, hub, cli, tag, words):
    for command in ("release", "publish"):
        res = cli(command, tag, "-C", env)
        assert res.code == 2 and words in res.err and "devstral" not in res.err, res.err
    _no_side_effects(gh, hub)


def test_missing_base_model(env, gh, hub, cli, tmp_path):
    path = env / "adapters" / "tiny-lora.toml"
    text = path.read_text()
    start = text.index("local_path = ")
    path.write_text(text[:start] + f'local_path = "{tmp_path / "nowhere"}"' + text[text.index("\n", start):])
    res = cli("release", TAG, "-C", env)
    assert res.code == 2 and "base_model.local_path" in res.err
    _no_side_effects(gh, hub)


def test_pinned_base_weights_are_checked_before_anything_is_built(env, gh, hub, cli, tiny_base, tmp_path):
    from kiki_bot.shells.trainspec import weights_sha256

    path = env / "adapters" / "tiny-lora.toml"
    text = path.read_text()
    pin = lambda sha: path.write_text(text.replace("[base_model]\n", f'[base_model]\nsha256 = "{sha}"\n', 1))  # noqa: E731
    pin("0" * 64)
    res = cli("release", TAG, "-C", env)
    assert res.code == 2 and "key `base_model.sha256`" in res.err and f"hash to {weights_sha256(tiny_base)}" in res.err
    assert not (tmp_path / "runs").exists()  # refused before the training set was assembled
    _no_side_effects(gh, hub)
    pin("0" * 63)
    res = cli("release", TAG, "-C", env)
    assert res.code == 2 and "sha256" in res.err and "Traceback" not in res.err
    pin(weights_sha256(tiny_base))
    res = cli("release", TAG, "--dry-run", "-C", env)
    assert res.code == 0, res.err


def test_licence_violation_and_manifest_mismatch(env, gh, hub, cli):
    data = env / "data" / "acme-fw" / "part-000.jsonl"
    data.write_text(data.read_text() + "\n")
    res = cli("release", TAG, "-C", env)
    assert res.code == 2 and "MANIFEST.json" in res.err
    write_jsonl(data, [record("acme-fw", i, f"int g{i};") for i in range(9)] +
                [record("acme-fw", 9, "int h;", license="GPL-2.0-only")])
    assert cli("data", "manifest", "-C", env).code == 0
    res = cli("release", TAG, "-C", env)
    assert res.code == 2 and "part-000.jsonl:10" in res.err and "allow-list" in res.err
    _no_side_effects(gh, hub)


def test_dry_run_prints_the_plan_and_does_nothing(env, gh, hub, cli):
    res = cli("release", TAG, "--dry-run", "-C", env)
    assert res.code == 0, res.err
    actions = [json.loads(line)["action"] for line in res.out.splitlines()]
    assert actions == ["train", "hub_stage", "pull_request"]
    _no_side_effects(gh, hub)


def test_ignored_events_do_nothing(env, gh, hub, cli):
    before = len(gh.requests) + len(hub.requests)
    for name, fixture_name in (("issues", "issues.opened.payload.json"), ("push", "push.payload.json"),
                               ("pull_request", "pull_request.closed.payload.json"),
                               ("release", "release.published.payload.json")):
        res = handle(cli, env, name, fixture(fixture_name))
        assert res.code == 0 and "nothing for kiki-bot to do" in res.err
    bot = copy.deepcopy(push_event(TAG))
    bot["sender"].update(type="Bot", login="kiki-bot[bot]")
    assert handle(cli, env, "push", bot).code == 0
    assert len(gh.requests) + len(hub.requests) == before


def test_malformed_event_file(env, cli, tmp_path):
    bad = tmp_path / "event.json"
    bad.write_text("{not json")
    res = cli("handle", "--event-name", "push", "--event-path", bad, "-C", env)
    assert res.code == 2 and "not a JSON event payload" in res.err


def _sync_main(gh, project: Path) -> None:
    """The runner's checkout of the default branch after a merge."""
    for name, data in gh.files(GH_REPO, "main").items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_bytes(data)


def _purge_privately(cli, project: Path, *lines: str) -> str:
    from test_removal_flow import body

    request = project.parent / "request.md"
    request.write_text(body(*lines))
    res = cli("removal", "file", "--body", request, "--json", "-C", project)
    assert res.code == 0, res.err
    rid = res.json()["request"]
    assert cli("removal", "purge", rid, "-C", project, "--actor", "maint").code == 0
    return rid


def test_a_re_run_after_a_purge_retrains_and_the_released_entry_names_the_new_training_set(
        env, gh, hub, cli, tmp_path):
    import hashlib

    from kiki_bot.core import ledger
    from kiki_bot.core.canonical import content_hash
    from kiki_bot.repo import ledgerfile

    def sha(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    assert handle(cli, env, "push", push_event(TAG)).code == 0
    branch = "kiki/release/tiny-lora/0.1.0"
    data = tmp_path / "runs" / "tiny-lora" / "0.1.0" / "data"
    first_split = sha((data / "train.jsonl").read_bytes() + (data / "valid.jsonl").read_bytes())
    staged = hub.repo("test-lab/tiny-lora")
    [hub_pr] = staged.discussions.values()
    pr_rev = f"refs/pr/{hub_pr.num}"
    first_weights = sha(staged.files(pr_rev)[MLX_WEIGHTS])

    rid = _purge_privately(cli, env, "record:acme-fw#3", "record:acme-fw#4")
    purged = ledger.find(ledgerfile.read(env / "compliance" / "removals.jsonl"), "purged", rid).records
    assert len(purged) == 2

    # The same tag again (a re-tag, or the workflow re-run) before the review PR is merged.
    res = cli("release", TAG, "-C", env)
    assert res.code == 0, res.err
    # Retrained on the new training set, and the new weights are what is staged.
    now_staged = staged.files(pr_rev)
    assert sha(now_staged[MLX_WEIGHTS]) != first_weights
    files = gh.files(GH_REPO, branch)
    run = json.loads(files["cards/tiny-lora/card.json"])["run"]
    [released] = [e for e in _entries(files) if e.event == "released"]
    assert (released.request.id, released.adapter, released.version) == (rid, "tiny-lora", "0.1.0")
    assert released.adapter_sha256 == run["adapter_sha256"] == sha(now_staged[MLX_WEIGHTS])
    # The entry names the training set on disk now, which holds none of the purged records.
    split = (data / "train.jsonl").read_bytes() + (data / "valid.jsonl").read_bytes()
    assert released.train_sha256 == run["train_sha256"] == sha(split) != first_split
    used = {content_hash(json.loads(line)) for line in split.splitlines()}
    assert len(used) == 18 and not used & {h for _, _, h in purged}
    assert not set(now_staged["training-content-hashes.txt"].decode().split()) & {h for _, _, h in purged}
    # Two runs, each in its own clean directory.
    assert len(list((data.parent / "adapter").iterdir())) == 2


def _entries(files: dict[str, bytes]):
    from kiki_bot.core import ledger

    return ledger.parse(files["compliance/removals.jsonl"], "the review branch")


def test_publish_refuses_staged_weights_other_than_the_recorded_ones(env, gh, hub, cli, gh_client, hf_api):
    from huggingface_hub import CommitOperationAdd

    assert handle(cli, env, "push", push_event(TAG)).code == 0
    [pr] = gh.pulls(GH_REPO)
    staged = hub.repo("test-lab/tiny-lora")
    [hub_pr] = staged.discussions.values()
    pr_rev = f"refs/pr/{hub_pr.num}"
    good = staged.files(pr_rev)[MLX_WEIGHTS]
    hf_api.create_commit("test-lab/tiny-lora", [CommitOperationAdd(MLX_WEIGHTS, good[:-1] + b"!")],
                         commit_message="someone else's weights", revision=pr_rev)
    gh_client.get_repo(GH_REPO).get_pull(pr.number).merge(merge_method="squash")
    _sync_main(gh, env)
    res = handle(cli, env, "pull_request", merged_event(pr.number, "kiki/release/tiny-lora/0.1.0"))
    assert res.code == 1 and "weights staged on the Hub are not the ones recorded" in res.err
    assert f"{MLX_WEIGHTS} sha256" in res.err and "card.json: adapter_sha256" in res.err
    assert staged.tags == {} and staged.discussions[hub_pr.num].status == "open" and gh.releases(GH_REPO) == []
    # With the recorded weights staged again, but PEFT's form of them swapped, publish still refuses.
    hf_api.create_commit("test-lab/tiny-lora", [CommitOperationAdd(MLX_WEIGHTS, good)],
                         commit_message="the recorded weights", revision=pr_rev)
    peft = staged.files(pr_rev)["adapter_model.safetensors"]
    hf_api.create_commit("test-lab/tiny-lora", [CommitOperationAdd("adapter_model.safetensors", peft + b" ")],
                         commit_message="someone else's PEFT weights", revision=pr_rev)
    res = cli("publish", TAG, "-C", env)
    assert res.code == 1 and "PEFT weights staged on the Hub are not the ones recorded" in res.err
    assert "adapter_model.safetensors sha256" in res.err and staged.tags == {}
    # Both as recorded: the same publish goes through.
    hf_api.create_commit("test-lab/tiny-lora", [CommitOperationAdd("adapter_model.safetensors", peft)],
                         commit_message="the recorded PEFT weights", revision=pr_rev)
    assert cli("publish", TAG, "-C", env).code == 0
    assert "v0.1.0" in staged.tags and [r.tag_name for r in gh.releases(GH_REPO)] == [TAG]


def test_a_re_tag_of_a_merged_but_unpublished_version_points_to_publish(env, gh, hub, cli, gh_client):
    """The review PR merged, publish has not run yet, and the tag is pushed again (or its run re-run): the default
    branch already holds what the review PR would propose, so there is nothing to review. Not GitHub's 422 for an
    empty PR: the run says so and what to do, and the version publishes as it was reviewed."""
    assert handle(cli, env, "push", push_event(TAG)).code == 0
    [pr] = gh.pulls(GH_REPO)
    gh_client.get_repo(GH_REPO).get_pull(pr.number).merge(merge_method="squash")
    for name, data in gh.files(GH_REPO, "main").items():
        (env / name).parent.mkdir(parents=True, exist_ok=True)
        (env / name).write_bytes(data)
    main = gh.files(GH_REPO, "main")
    res = handle(cli, env, "push", push_event(TAG))
    assert res.code == 0, res.err
    assert f"{TAG}: nothing to review, main already holds its card; publish it" in res.err
    assert len(gh.pulls(GH_REPO)) == 1 and gh.files(GH_REPO, "main") == main
    assert handle(cli, env, "pull_request", merged_event(pr.number, "kiki/release/tiny-lora/0.1.0")).code == 0
    assert "v0.1.0" in hub.repo("test-lab/tiny-lora").tags
