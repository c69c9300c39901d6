"""Bench: the demo's wall time, each release's phase times, and `kiki-bot handle` cold start.

Prints JSON. "everything but the training loop" = a release's phases other than `training` (data
assembly, evaluation, card, Hub upload), plus publishing. Usage: python bench/release.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "github-events" / "issues.opened.payload.json"


def timed(cmd: list[str], **kw) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.perf_counter() - start


def main() -> None:
    kiki = [sys.executable, "-m", "kiki_bot"]
    work = Path(tempfile.mkdtemp(prefix="kiki-bench-"))
    demo_s = timed([*kiki, "demo", "--workdir", str(work)])
    releases = {}
    for run in sorted((work / "runs" / "tiny-cpp-lora").iterdir()):
        phases = json.loads((run / "timings.json").read_text())
        releases[run.name] = {"phases_s": phases, "training_s": phases.get("training"),
                              "everything_but_training_s": round(sum(v for k, v in phases.items()
                                                                     if k != "training"), 2)}
    event = FIXTURE if FIXTURE.is_file() else None
    cold = []
    if event:
        env = {**os.environ, "GITHUB_EVENT_NAME": "issues", "GITHUB_EVENT_PATH": str(event)}
        cold = [timed([str(ROOT / ".venv" / "bin" / "kiki-bot"), "handle", "-C", str(ROOT / "examples" /
                                                                                    "devstral-cpp-lora")], env=env)
                for _ in range(5)]
    print(json.dumps({"demo_s": round(demo_s, 1), "releases": releases,
                      "handle_ignored_event_s": {"runs": [round(c, 3) for c in cold],
                                                 "median": round(statistics.median(cold), 3) if cold else None}},
                     indent=2))


if __name__ == "__main__":
    main()
