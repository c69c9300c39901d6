"""Bench: the scenario suite's state machine (tests/test_scenarios.py) over many interleavings.

Counts violations of DESIGN.md section 7 instead of stopping at the first, and prints JSON: interleavings run,
steps, violations (interleavings showing each kind, with its first occurrence), seconds, and how often each rule
ran and with which exit code. Usage: python bench/scenarios.py [--examples 5000] [--steps 16] [--only REGEX]
(--only stops at the first violation matching REGEX and shrinks it to a minimal example).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import emulator_fixtures  # first: starts the Hub emulator before huggingface_hub loads


def main() -> None:
    import os

    from hypothesis import HealthCheck, Phase, settings
    from hypothesis.stateful import run_state_machine_as_test

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=5000, help="interleavings to run")
    parser.add_argument("--steps", type=int, default=None, help="most steps per interleaving (default: the CI's)")
    parser.add_argument("--only", default=None, help="stop at the first violation matching this regex, shrunk")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kiki-bench-scenarios-"))
    os.environ.update(GITHUB_API_URL=emulator_fixtures.GITHUB_SERVER.url, GITHUB_TOKEN=emulator_fixtures.GITHUB_TOKEN,
                      KIKI_GITHUB_THROTTLE="0", KIKI_RUNS_DIR=str(work / "runs"))
    import test_scenarios as ts

    os.environ["GITHUB_REPOSITORY"] = ts.GH_REPO
    machine = ts.Scenarios
    machine.base, machine.runs = ts.base_model(work / "base"), work / "runs"
    machine.strict, machine.only = args.only is not None, args.only
    phases = [Phase.generate, Phase.shrink] if args.only else [Phase.generate]
    started = time.perf_counter()
    failure = None
    try:
        run_state_machine_as_test(machine, settings=settings(
            ts.CI, max_examples=args.examples, phases=phases,
            stateful_step_count=args.steps or ts.CI.stateful_step_count, suppress_health_check=list(HealthCheck)))
    except AssertionError as exc:
        failure = str(exc)
    stats = machine.stats
    print(json.dumps({"interleavings": stats.interleavings, "steps": stats.steps,
                      "violations": sum(stats.violations.values()),
                      "violations_by_kind": dict(stats.violations.most_common()),
                      "first_occurrence": stats.first, "minimal_example": failure,
                      "seconds": round(time.perf_counter() - started, 1),
                      "reached": dict(stats.reached.most_common()),
                      "rules": dict(stats.rules.most_common()),
                      "seconds_by_rule": {k: round(v, 1) for k, v in stats.seconds.most_common()}, "outcomes": dict(sorted(stats.outcomes.items()))},
                     indent=2))


if __name__ == "__main__":
    main()
