"""Bench: an upstream opt-out list (BigCode's format) streamed over HTTP from a local server and matched against a
project's GitHub identities, for 10,000 and 100,000 lines; prints JSON per size: peak RSS of the process (MB),
its growth during the scan, and tracemalloc's peak (KB) during the scan. Flat memory: the figures barely move
with ten times the lines.

Usage: python bench/upstream_lists.py [--sizes 10000 100000]. Each size runs in a fresh child process.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc


def _line(i: int) -> bytes:
    return json.dumps({"issue": i, "author": f"user-{i}", "optout_repos": [f"owner-{i}/repo-{i}", f"owner-{i}/x"],
                       "optout_owners": [f"owner-{i}"] if i % 3 == 0 else []}).encode() + b"\n"


def child(lines: int) -> dict:
    from kiki_bot.core import upstream
    from kiki_bot.demo.emulators import serve
    from kiki_bot.shells.upstream import url_lines

    def app(environ, start_response):  # a list served line by line, as a web server streams a file
        start_response("200 OK", [("Content-Type", "application/jsonl")])
        return (_line(i) for i in range(lines))

    server = serve(app)
    ids = upstream.Identities(frozenset({"owner-3", "acme"}), frozenset({"owner-7/repo-7", "acme/fw"}))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    start = time.perf_counter()
    scan = upstream.scan_optouts(url_lines(f"{server.url}/optouts.jsonl"), ids)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    server.stop()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert scan.lines == lines and scan.matched == {"owner-3", "owner-7/repo-7"}, scan.matched
    return {"lines": lines, "seconds": round(seconds, 2), "peak_rss_mb": round(after, 1),
            "rss_growth_mb": round(after - before, 1), "tracemalloc_peak_kb": round(peak / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    results = [json.loads(subprocess.run([sys.executable, __file__, "--child", str(n)], check=True,
                                         capture_output=True, text=True).stdout) for n in args.sizes]
    print(json.dumps({"bench": "upstream opt-out list, streamed", "results": results}, indent=2))


if __name__ == "__main__":
    main()
