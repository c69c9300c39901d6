"""`kiki-bot demo`: the whole story on a copy of the bundled example, offline.

It starts the local GitHub and Hub emulators, builds a tiny random llama-style base model (cached
between runs), and plays what a maintainer lives through: tag → training → review PR → merge →
publish on the Hub. The demo adapter names the tiny base it really trains on; it is never passed
off as Devstral.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tomllib
from pathlib import Path

REPO = "kiki-demo/embedded-models"
ADAPTER = "tiny-cpp-lora"
MAINTAINER = "alice"
EXAMPLE = "devstral-cpp-lora"


def _say(text: str) -> None:
    from kiki_bot.cli import say

    say(text)


def example_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "examples" / EXAMPLE, here.parent / "examples" / EXAMPLE):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the bundled example is missing (examples/devstral-cpp-lora)")


def parameter_count(model_dir: Path) -> int:
    """Sum of tensor sizes from the safetensors header, without loading the weights."""
    with open(model_dir / "model.safetensors", "rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(size))
    total = 0
    for name, meta in header.items():
        if name != "__metadata__":
            n = 1
            for dim in meta["shape"]:
                n *= dim
            total += n
    return total


def prepare(workdir: Path, base: Path) -> Path:
    """A copy of the example whose adapter trains the tiny base instead of Devstral, with no card yet."""
    import tomli_w

    project = workdir / "model-repo"
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(example_dir(), project, ignore=shutil.ignore_patterns("cards", ".kiki"))
    src = project / "adapters" / f"{EXAMPLE}.toml"
    doc = tomllib.loads(src.read_text())
    src.unlink()
    doc.update(
        description="Demo LoRA adapter for embedded C/C++ trained on a tiny random llama-style model built "
                    "locally by kiki-bot; it shows the release and removal workflow, not a useful model.",
        hub_repo=f"kiki-demo/{ADAPTER}",
        base_model={"id": "kiki-demo/tiny-llama-1k", "license": "Apache-2.0", "local_path": str(base),
                    "parameters": float(parameter_count(base))},
        lora={**doc["lora"], "num_layers": 2},
        training={"iters": 40, "batch_size": 4, "learning_rate": 2e-3, "max_seq_length": 256, "seed": 42,
                  "save_every": 20, "steps_per_report": 10, "steps_per_eval": 20, "valid_fraction": 0.02},
        eval={"benchmark": "held-out validation split", "metric": "loss (nats/token, lower is better)",
              "command": "python -m kiki_bot.evaluate --base {base} --adapter {adapter} --data {data}"},
    )
    (project / "adapters" / f"{ADAPTER}.toml").write_text(tomli_w.dumps(doc))
    return project


def tracked_files(project: Path) -> dict[str, bytes]:
    return {str(p.relative_to(project)): p.read_bytes() for p in sorted(project.rglob("*"))
            if p.is_file() and ".kiki" not in p.relative_to(project).parts}


def sync(gh, project: Path) -> None:
    """What `git pull` does for the maintainer: the default branch's files into the working tree."""
    for name, data in gh.files(REPO, "main").items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def tag_event(tag: str, sender: str = MAINTAINER) -> dict:
    return {"ref": f"refs/tags/{tag}", "created": True, "deleted": False, "base_ref": None,
            "repository": {"full_name": REPO, "default_branch": "main"},
            "sender": {"login": sender, "type": "User"}}


def merged_event(pr: int, branch: str, sender: str = MAINTAINER) -> dict:
    return {"action": "closed", "number": pr,
            "pull_request": {"number": pr, "merged": True, "head": {"ref": branch}, "base": {"ref": "main"}},
            "repository": {"full_name": REPO, "default_branch": "main"},
            "sender": {"login": sender, "type": "User"}}


def handle(project: Path, name: str, payload: dict) -> None:
    from kiki_bot.cli import main

    event = project.parent / f"event-{name}.json"
    event.write_text(json.dumps(payload))
    try:
        main(["handle", "--event-name", name, "--event-path", str(event), "-C", str(project)])
    except SystemExit as exc:
        if exc.code:
            raise


def run(workdir: Path, cache: Path) -> None:
    from kiki_bot.emulators import GitHubEmulator, HubEmulator, serve

    gh, hub = GitHubEmulator(), HubEmulator()
    with serve(gh) as gh_server, serve(hub) as hub_server:
        os.environ.update(
            HF_ENDPOINT=hub_server.url, HF_HOME=str(workdir / "hf-home"), HF_TOKEN="hf_demo_token",
            HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1", GITHUB_API_URL=gh_server.url,
            GITHUB_TOKEN="ghs_demo_token", GITHUB_REPOSITORY=REPO, KIKI_GITHUB_THROTTLE="0",
            KIKI_RUNS_DIR=str(workdir / "runs"),
            NO_PROXY=",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"])))
        _story(workdir, cache, gh, hub, hub_server.url)


def _story(workdir: Path, cache: Path, gh, hub, hub_url: str) -> None:
    from kiki_bot.figures import record_text
    from kiki_bot.records import iter_source
    from kiki_bot.tinymodel import make_tiny_base

    example = example_dir()
    texts = [record_text(r.payload) for sid in sorted(p.name for p in (example / "data").iterdir())
             for r in iter_source(example / "data", sid)]
    _say("1/5  building the tiny base model (cached after the first run)")
    base = make_tiny_base(cache / "tiny-base", texts, seed=0)
    project = prepare(workdir, base)
    gh.create_repo(REPO, files=tracked_files(project))
    gh.set_permission(REPO, MAINTAINER, "maintain")

    tag = f"{ADAPTER}/v0.1.0"
    _say(f"2/5  {MAINTAINER} pushes the tag {tag}: kiki-bot trains, renders the card, opens the review PR")
    handle(project, "push", tag_event(tag))
    pr = gh.pulls(REPO)[-1]
    _say(f"     review PR #{pr.number}: {pr.title}")

    _say(f"3/5  {MAINTAINER} merges the review PR; kiki-bot publishes")
    from github import Auth, Github

    gh.tokens["ghs_alice"] = MAINTAINER
    maintainer = Github(base_url=os.environ["GITHUB_API_URL"], auth=Auth.Token("ghs_alice"), lazy=True,
                        seconds_between_requests=None, seconds_between_writes=None, retry=None)
    maintainer.get_repo(REPO).get_pull(pr.number).merge(merge_method="squash")
    sync(gh, project)
    handle(project, "pull_request", merged_event(pr.number, f"kiki/release/{ADAPTER}/0.1.0"))

    _say("4/5  checking the published adapter: download it and generate with mlx-lm on the tiny base")
    from huggingface_hub import snapshot_download

    from kiki_bot.training import generate_sample

    local = Path(snapshot_download(f"kiki-demo/{ADAPTER}", revision="v0.1.0"))
    sample = generate_sample(base, local, "Write a FreeRTOS task that blinks an LED.", max_tokens=12)
    _say(f"     generated: {sample[:60]!r}")

    hub_repo = hub.repo(f"kiki-demo/{ADAPTER}")
    _say("5/5  where things are:")
    _say(f"     model repository   {project}")
    _say(f"     card               {project / 'cards' / ADAPTER / 'README.md'}")
    _say(f"     changelog          {project / 'cards' / ADAPTER / 'CHANGELOG.md'}")
    _say(f"     adapter            {local / 'adapters.safetensors'}")
    _say(f"     Hub repo           {hub_url}/kiki-demo/{ADAPTER} (tags: {', '.join(sorted(hub_repo.tags))}; "
         f"files: {', '.join(sorted(hub_repo.files('main')))})")
