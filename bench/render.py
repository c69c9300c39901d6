"""Bench: `kiki-bot card render` on a synthetic project; prints JSON (records, seconds, peak RSS).

Usage: python bench/render.py [--records 100000]. The project is generated once under .kiki/bench/.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth

ROOT = Path(__file__).resolve().parent.parent


def run(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process."""
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    project = ROOT / ".kiki" / "bench" / f"render-{args.records}"
    if not (project / "kiki.toml").is_file():
        synth.make(project, args.records)
    kiki = [sys.executable, "-m", "kiki_bot", "card", "render", "-C", str(project), "--version", "0.1.0",
            "--date", "2026-05-06"]
    first, rss = run(kiki)
    second, rss2 = run(kiki)
    check, rss3 = run([sys.executable, "-m", "kiki_bot", "card", "check", "-C", str(project)])
    print(json.dumps({"records": args.records, "render_s": round(first, 2), "rerender_s": round(second, 2),
                      "check_s": round(check, 2), "peak_rss_mb": round(max(rss, rss2, rss3), 1)}, indent=2))


if __name__ == "__main__":
    main()
