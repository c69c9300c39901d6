"""`kiki-bot demo`: the whole story on a copy of the bundled example, offline.

It starts the local GitHub and Hub emulators, builds a tiny random llama-style base model (cached
between runs), and plays what a maintainer lives through: tag → training → review PR → merge →
publish on the Hub. The demo adapter names the tiny base it really trains on; it is never passed
off as Devstral.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import struct
import tomllib
from collections.abc import Callable
from pathlib import Path

from kiki_bot.console import say

Kiki = Callable[[list[str]], None]  # the CLI's entry point, handed in by `kiki-bot demo`: the demo types commands
REPO = "kiki-demo/embedded-models"
ADAPTER = "tiny-cpp-lora"
MAINTAINER = "alice"
EXAMPLE = "devstral-cpp-lora"


def missing_extra() -> str | None:
    """The first module of the demo extra that is not installed: the emulators (werkzeug, yaml), the demo's
    writer (tomli_w), training and PEFT."""
    import importlib.util

    try:
        import tomli_w  # noqa: F401
        import werkzeug  # noqa: F401
        import yaml  # noqa: F401
    except ImportError as exc:
        return exc.name
    return next((m for m in ("mlx_lm", "torch", "transformers", "peft") if not importlib.util.find_spec(m)), None)


def example_dir() -> Path:
    here = Path(__file__).resolve().parents[1]  # the kiki_bot package
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
    kiki = tomllib.loads((project / "kiki.toml").read_text())  # the demo's contacts are its own repository's
    kiki["provider"].update(contact=f"https://github.com/{REPO}/issues",
                            copyright_policy_url=f"https://github.com/{REPO}/blob/main/COPYRIGHT_POLICY.md")
    (project / "kiki.toml").write_text(tomli_w.dumps(kiki))
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


def handle(kiki: Kiki, project: Path, name: str, payload: dict) -> None:
    event = project.parent / f"event-{name}.json"
    event.write_text(json.dumps(payload))
    try:
        kiki(["handle", "--event-name", name, "--event-path", str(event), "-C", str(project)])
    except SystemExit as exc:
        if exc.code:
            raise


def run(workdir: Path, cache: Path, kiki: Kiki) -> None:
    from kiki_bot.demo.emulators import GitHubEmulator, HubEmulator, serve

    gh, hub = GitHubEmulator(), HubEmulator()
    with serve(gh) as gh_server, serve(hub) as hub_server:
        os.environ.update(
            HF_ENDPOINT=hub_server.url, HF_HOME=str(workdir / "hf-home"), HF_TOKEN="hf_demo_token",
            HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
            GITHUB_API_URL=gh_server.url,
            GITHUB_TOKEN="ghs_demo_token", GITHUB_REPOSITORY=REPO, KIKI_GITHUB_THROTTLE="0",
            KIKI_RUNS_DIR=str(workdir / "runs"), KIKI_OPTOUTS_OFFLINE="1", TRANSFORMERS_VERBOSITY="error",
            NO_PROXY=",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"])))
        _story(kiki, workdir, cache, gh, hub, hub_server.url)


def _story(kiki: Kiki, workdir: Path, cache: Path, gh, hub, hub_url: str) -> None:
    from kiki_bot.demo.tinymodel import make_tiny_base
    from kiki_bot.repo.records import record_text
    from kiki_bot.repo.records import iter_source

    example = example_dir()
    texts = [record_text(r.payload) for sid in sorted(p.name for p in (example / "data").iterdir())
             for r in iter_source(example / "data", sid)]
    say("1/9  building the tiny base model (cached after the first run)")
    base = make_tiny_base(cache / "tiny-base", texts, seed=0)
    project = prepare(workdir, base)
    files = tracked_files(project)
    from kiki_bot.repo.skeleton import caller_workflows

    pin = ("0" * 40, "no workflow runs in the demo's emulated repository")
    for path, text in caller_workflows(pin).items():  # what `init` writes: the deadline run dispatches kiki-release.yml
        files.setdefault(path, text.encode())
    gh.create_repo(REPO, files=files)
    gh.set_permission(REPO, MAINTAINER, "maintain")
    gh.tokens["ghs_alice"] = MAINTAINER
    maintainer = _client("ghs_alice").get_repo(REPO)

    _release(kiki, project, gh, maintainer, "0.1.0", "2/9", "3/9",
             lambda tag: handle(kiki, project, "push", tag_event(tag)))

    say("4/9  a rightsholder asks that one ESP-IDF example folder leave the training data")
    request = (
        "### Content to remove\n\nhttps://github.com/espressif/esp-idf/tree/v5.3/examples/peripherals/gpio\n\n"
        "### Your relationship to the content\n\nI am the author or rightsholder\n\n### Reason\n\n"
        "Text and data mining opt-out (DSM Directive Art. 4(3))\n\n### Additional details\n\n_No response_\n\n"
        "### Confirmation\n\n- [X] I confirm that the information in this request is accurate\n")
    number = gh.open_issue(REPO, "Removal request: ESP-IDF GPIO examples", request, user="esp-rights",
                           labels=["removal-request"])
    issue = gh.issue(REPO, number)
    handle(kiki, project, "issues", issue_event(number, issue, "opened"))
    triage = gh.comments(REPO, number)[-1].body
    say(f"     triage answered at once: {_line(triage, 'Records matched per source')}")

    say(f"5/9  {MAINTAINER} approves; kiki-bot purges the records and opens the purge PR")
    handle(kiki, project, "issue_comment", comment_event(number, issue, "/kiki approve", MAINTAINER))
    purge_pr = gh.pulls(REPO)[-1]
    maintainer.get_pull(purge_pr.number).merge(merge_method="squash")
    sync(gh, project)
    say(f"     purge PR #{purge_pr.number} merged; labels: {', '.join(sorted(gh.issue(REPO, number).labels))}")

    say("6/9  the 6-hourly deadline run, 27 days later: the latest safe start has come, it starts the retrain")
    opened = gh.issue(REPO, number).created_at
    kiki(["schedule", "run", "--now", (opened + dt.timedelta(days=27)).isoformat(), "-C", str(project)])
    [dispatch] = [d for d in gh.dispatches(REPO) if d.event == "workflow_dispatch"]
    _release(kiki, project, gh, maintainer, "0.1.1", "7/9", "8/9",
             lambda tag: handle(kiki, project, "workflow_dispatch", dispatch_event(dispatch.payload["tag"])))
    say(f"     removal issue #{number}: {gh.issue(REPO, number).state}; "
         f"{_line(gh.comments(REPO, number)[-1].body, 'Version')}")

    say("9/9  checking the published adapter and where things are")
    from huggingface_hub import snapshot_download

    from kiki_bot.shells import samples

    local = Path(snapshot_download(f"kiki-demo/{ADAPTER}", revision="v0.1.1"))
    prompt = "Write a FreeRTOS task that blinks an LED."
    sample = samples.mlx(base, local / "mlx", prompt, max_tokens=12)
    peft_sample = samples.peft(base, local, prompt, max_tokens=12)
    hub_repo = hub.repo(f"kiki-demo/{ADAPTER}")
    say(f"     the published v0.1.1 adapter loads on the tiny base and generates: {sample[:40]!r} (mlx-lm, mlx/)")
    same = "the same text" if peft_sample == sample else "other text (greedy decoding can part at a near tie)"
    say(f"     and in transformers + PEFT (the repository's root), which generates {same}: {peft_sample[:40]!r}")
    say(f"     model repository   {project}")
    say(f"     card               {project / 'cards' / ADAPTER / 'README.md'}")
    say(f"     changelog          {project / 'cards' / ADAPTER / 'CHANGELOG.md'}")
    say(f"     removal ledger     {project / 'compliance' / 'removals.jsonl'}")
    say(f"     adapter            {local / 'adapter_model.safetensors'} (PEFT), {local / 'mlx'} (mlx-lm)")
    say(f"     Hub repo           {hub_url}/kiki-demo/{ADAPTER} (tags: {', '.join(sorted(hub_repo.tags))})")


def _client(token: str):
    from github import Auth, Github

    return Github(base_url=os.environ["GITHUB_API_URL"], auth=Auth.Token(token), lazy=True,
                  seconds_between_requests=None, seconds_between_writes=None, retry=None)


def _release(kiki: Kiki, project: Path, gh, maintainer, version: str, step: str, step2: str, trigger) -> None:
    """Tag (or dispatch) → training → review PR; the maintainer merges; the merge event publishes."""
    tag = f"{ADAPTER}/v{version}"
    say(f"{step}  release {tag}: kiki-bot trains, renders the card and opens the review PR")
    trigger(tag)
    pr = gh.pulls(REPO)[-1]
    say(f"     review PR #{pr.number}: {pr.title}")
    say(f"{step2}  {MAINTAINER} merges the review PR; kiki-bot publishes {tag} on the Hub")
    maintainer.get_pull(pr.number).merge(merge_method="squash")
    sync(gh, project)
    handle(kiki, project, "pull_request", merged_event(pr.number, f"kiki/release/{ADAPTER}/{version}"))


def _line(text: str, start: str) -> str:
    """The first line of a bot comment that starts with `start`, as plain text for the terminal."""
    return next((plain for line in text.splitlines() if (plain := _plain(line)).startswith(start)), "")


def _plain(markdown: str) -> str:
    """A line of the bot's own Markdown as the text it renders to: no bold markers, escapes or entities."""
    import html
    import re

    text = re.sub(r"\\(.)", r"\1", markdown.replace("**", ""))
    return html.unescape(text).replace("\u200b", "").strip()


def issue_event(number: int, issue, action: str) -> dict:
    return {"action": action, "issue": {"number": number, "title": issue.title, "body": issue.body,
                                        "created_at": issue.created_at.isoformat(), "user": {"login": issue.user},
                                        "labels": [{"name": name} for name in issue.labels]},
            "repository": {"full_name": REPO, "default_branch": "main"},
            "sender": {"login": issue.user, "type": "User"}}


def comment_event(number: int, issue, body: str, user: str) -> dict:
    event = issue_event(number, issue, "created")
    event["comment"] = {"id": 9000 + number, "body": body, "user": {"login": user},
                        "created_at": dt.datetime.now(dt.UTC).isoformat()}
    event["sender"] = {"login": user, "type": "User"}
    return event


def dispatch_event(tag: str) -> dict:
    return {"inputs": {"tag": tag}, "ref": f"refs/tags/{tag}", "workflow": ".github/workflows/kiki-release.yml",
            "repository": {"full_name": REPO, "default_branch": "main"},
            "sender": {"login": "kiki-bot-scheduler", "type": "User"}}
