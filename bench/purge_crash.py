"""Crash safety of `kiki_bot.repo.purge.purge`: SIGKILL a purge at many points, check the files, then recover.

Each trial copies a prepared project (3 sources, 7 data files; the request removes records by key and by
content hash from 4 of them, and must keep an identical copy, in another source, of a record removed by key)
and runs the purge of request R-7 in a child process (`python bench/purge_crash.py --child ...`), killed:
- at an operation (`ops`): the child wraps the calls that open, write, copy, fsync, rename or delete files
  and SIGKILLs itself just before the n-th one (KIKI_PURGE_CRASH_AT=n); every operation is a kill point;
- at a random instant (`timed`): the parent sends SIGKILL a random delay after the child starts purging.
After the kill: every data file is byte-identical to its old or its new version, the ledger verifies, and
no file is new unless the ledger entry is there (write-ahead). Then the purge runs again in this process
and must finish: every file equals the uncrashed result, the remaining records are exactly the expected
ones, every manifest matches, no temp file is left, and the ledger holds the one entry with its records.
`scale` times one uncrashed purge of a few records from a large file against `cp` of the same data.

Run: .venv/bin/python bench/purge_crash.py [--timed 100] [--scale 200000] [--seed 1]
     (prints one JSON document; exit 1 on any violation; about two minutes)
"""

from __future__ import annotations

import argparse
import builtins
import collections
import datetime as dt
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # run from a checkout without installing
from factory import make_project, record, source, write_jsonl

from kiki_bot.core import ledger
from kiki_bot.core.canonical import content_hash
from kiki_bot.core.errors import KikiError
from kiki_bot.repo import ledgerfile, manifests, purge
from kiki_bot.repo.project import Project
from kiki_bot.repo.records import data_files, iter_source

REQUEST, ISSUE, ACTOR, AT = "R-7", 7, "kiki-bot[bot]", dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
HOOKED_OS = ("open", "write", "pwrite", "copy_file_range", "fsync", "fchmod", "replace", "rename", "unlink")


# ---------------------------------------------------------------- the child: one purge, maybe killed
def _count_ops(crash_at: int | None) -> list[int]:
    """Count file operations from here on and SIGKILL this process just before the `crash_at`-th."""
    count = [0]

    def hook(real: Any) -> Any:
        def op(*args: Any, **kwargs: Any) -> Any:
            count[0] += 1
            if count[0] == crash_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        return op

    for name in HOOKED_OS:
        setattr(os, name, hook(getattr(os, name)))
    builtins.open = io.open = hook(io.open)  # type: ignore[assignment]  # pathlib calls io.open
    return count


def child(root: Path, request: dict[str, list]) -> None:
    crash_at = os.environ.get("KIKI_PURGE_CRASH_AT")
    project = Project(root)
    keys = {(s, i) for s, i in request["keys"]}
    hashes = set(request["hashes"])
    print("ready", flush=True)
    ops = _count_ops(int(crash_at) if crash_at else None)
    start = time.perf_counter()
    purge.purge(project, REQUEST, ISSUE, keys, hashes, ["tiny-lora"], ACTOR, AT)
    seconds = time.perf_counter() - start
    print(json.dumps({"ops": ops[0], "seconds": seconds, "peak_rss_mb": _peak_rss_mb()}), flush=True)


def _peak_rss_mb() -> float | None:
    """This process's peak RSS (VmHWM; ru_maxrss would report the parent's, as it survives exec)."""
    status = Path("/proc/self/status")
    lines = status.read_text().splitlines() if status.exists() else []
    return next((round(int(line.split()[1]) / 1024, 1) for line in lines if line.startswith("VmHWM:")), None)


def run_child(
    root: Path, request: dict, crash_at: int | None = None, delay: float | None = None
) -> dict | None:
    """The child's report when it finished, None when it was killed."""
    env = {**os.environ, "KIKI_PURGE_CRASH_AT": str(crash_at or "")}
    argv = [sys.executable, __file__, "--child", str(root), json.dumps(request)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    if proc.stdout.readline() == "ready\n" and delay is not None:
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    if proc.returncode == -signal.SIGKILL:
        return None
    if proc.returncode != 0:
        raise RuntimeError(f"purge child failed with exit code {proc.returncode}")
    return json.loads(out.splitlines()[-1])


# ---------------------------------------------------------------- the project and what the purge must do
def build(root: Path) -> dict[str, list]:
    """Write the project; returns the request (keys and hashes, as JSON lists)."""
    parts = {"acme-fw": [1500, 100, 50], "blogs": [200, 30], "docs": [60, 20]}  # records per file
    recs = {
        sid: [record(sid, i, f"// {sid}\nint f{i}(void) {{ return {i * 7}; }}") for i in range(sum(n))]
        for sid, n in parts.items()
    }
    twins = [(("docs", 5), ("acme-fw", 750)), (("blogs", 210), ("blogs", 10))]  # same payload, other record
    for (sid, i), (of, j) in twins:
        recs[sid][i] = {**recs[of][j], "_provenance": recs[sid][i]["_provenance"]}
    make_project(root, {"acme-fw": source(), "blogs": source("2.1"), "docs": source("2.1")}, records={})
    for sid, sizes in parts.items():
        lo = 0
        for n, size in enumerate(sizes):
            write_jsonl(root / "data" / sid / f"part-{n:03}.jsonl", recs[sid][lo : lo + size])
            lo += size
        manifests.refresh(root / "data" / sid)
    # by key: first, second, middle (its twin in docs stays), last line of a file, and one in another file;
    # by hash: blogs#10, whose twin blogs#210 lies in another file
    keys = [["acme-fw", 0], ["acme-fw", 1], ["acme-fw", 750], ["acme-fw", 1499], ["acme-fw", 1505]]
    return {"keys": keys, "hashes": [content_hash(recs["blogs"][10])]}


def _digests(root: Path) -> dict[str, str]:
    digests = {}
    for path in sorted((root / "data").glob("*/*.jsonl")):
        with open(path, "rb") as fh:
            digests[str(path.relative_to(root))] = hashlib.file_digest(fh, "sha256").hexdigest()
    return digests


def _ledger_problems(root: Path) -> list[str]:
    try:
        ledgerfile.verify(root / "compliance" / "removals.jsonl")
    except KikiError as exc:
        return [f"ledger: {exc}"]
    return []


def _keys(project: Project) -> set[tuple[str, int]]:
    return {rec.key for sid in project.sources for rec in iter_source(project.data_dir, sid)}


class Expected:
    """The old files, the uncrashed result, and the records that must remain, computed independently."""

    def __init__(self, template: Path, request: dict, reference: Path) -> None:
        project = Project(template)
        keys, hashes = {tuple(k) for k in request["keys"]}, set(request["hashes"])
        recs = [r for sid in project.sources for r in iter_source(project.data_dir, sid)]
        self.removed = [(*r.key, r.content_hash) for r in recs if r.key in keys or r.content_hash in hashes]
        self.remaining = {r.key for r in recs} - {(s, i) for s, i, _ in self.removed}
        self.old = _digests(template)
        self.new = _digests(reference)


def check_killed(root: Path, want: Expected) -> list[str]:
    """What must hold at any instant: whole files, a valid ledger, and the ledger before the data."""
    problems = []
    now = _digests(root)
    for name, digest in now.items():
        if digest not in (want.old[name], want.new[name]):
            problems.append(f"{name}: neither the old nor the new version")
    if bad := _ledger_problems(root):
        return problems + bad
    entry = ledger.find(ledgerfile.read(root / "compliance" / "removals.jsonl"), "purged", REQUEST)
    if entry is None and now != want.old:
        problems.append("data changed before the ledger entry was written")
    if entry is not None and sorted(entry.records or []) != sorted(want.removed):
        problems.append("ledger entry lists other records than requested")
    return problems


def check_done(root: Path, want: Expected) -> list[str]:
    """What must hold once a purge run returned."""
    project = Project(root)
    problems = [
        f"{name}: differs from the uncrashed result"
        for name, d in _digests(root).items()
        if d != want.new[name]
    ]
    got = _keys(project)
    problems += [f"record {k} lost" for k in sorted(want.remaining - got)]
    problems += [f"record {k} still there" for k in sorted(got - want.remaining)]
    problems += [p for sid in project.sources for p in manifests.mismatches(project.data_dir / sid)]
    problems += [f"{p}: temp file left" for p in (root / "data").glob("*/.*")]
    if bad := _ledger_problems(root):
        return problems + bad
    purged = [e for e in ledgerfile.read(project.ledger_path) if e.event == "purged"]
    if [(e.request.id, sorted(e.records or [])) for e in purged] != [(REQUEST, sorted(want.removed))]:
        problems.append(f"ledger: expected one purged entry for {REQUEST}, found {len(purged)}")
    return problems


def state(root: Path, want: Expected) -> str:
    """Where the kill left the purge."""
    if ledger.find(ledgerfile.read(root / "compliance" / "removals.jsonl"), "purged", REQUEST) is None:
        return "before_ledger_entry"
    new = sum(d == want.new[n] and d != want.old[n] for n, d in _digests(root).items())
    changed = sum(want.old[n] != want.new[n] for n in want.old)
    if new < changed:
        return f"ledger_entry_and_{new}_of_{changed}_files"
    clean = not any((root / "data").glob("*/.*")) and not any(
        manifests.mismatches(d) for d in (root / "data").iterdir()
    )
    return "complete" if clean else "files_done_manifest_or_temp_pending"


def trial(template: Path, work: Path, request: dict, want: Expected, **kill: Any) -> tuple[str, list[str]]:
    """Copy the project, kill a purge of it, check, re-run the purge in-process, check again."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(template, work)
    finished = run_child(work, request, **kill)
    problems = check_killed(work, want)
    outcome = "not_killed" if finished else "violation" if problems else state(work, want)
    keys, hashes = {(s, i) for s, i in request["keys"]}, set(request["hashes"])
    try:
        triples = purge.purge(Project(work), REQUEST, ISSUE, keys, hashes, ["tiny-lora"], ACTOR, AT)
        if sorted(triples) != sorted(want.removed):
            problems.append("re-run returned other triples")
        problems += check_done(work, want)
    except KikiError as exc:
        problems.append(f"re-run failed: {exc}")
    return outcome, [f"{kill}: {p}" for p in problems]


def run(workdir: Path, op_points: int | None = None, timed: int = 100, seed: int = 1) -> dict[str, Any]:
    """Kill at `op_points` operations spread evenly over the purge (None: at every one) and at `timed`
    random instants; returns the JSON report."""
    rng = random.Random(seed)
    template, reference, work = workdir / "template", workdir / "reference", workdir / "work"
    request = build(template)
    shutil.copytree(template, reference)
    ref = run_child(reference, request)
    assert ref is not None
    want = Expected(template, request, reference)
    problems = check_done(reference, want)
    n = ref["ops"]
    points = (
        range(1, n + 1)
        if op_points is None
        else sorted({1 + i * (n - 1) // max(op_points - 1, 1) for i in range(op_points)})
    )
    kills: dict[str, list[dict]] = {
        "ops": [{"crash_at": p} for p in points],
        "timed": [{"delay": rng.uniform(0, ref["seconds"] * 1.2)} for _ in range(timed)],
    }
    report: dict[str, Any] = {
        "reference": {"ops": n, "purge_seconds": round(ref["seconds"], 3), "peak_rss_mb": ref["peak_rss_mb"]},
        "kill_points": {},
    }
    for mode, batch in kills.items():
        outcomes: collections.Counter[str] = collections.Counter()
        for kill in batch:
            outcome, found = trial(template, work, request, want, **kill)
            outcomes[outcome] += 1
            problems += found
        report["kill_points"][mode] = {"tried": len(batch), "outcomes": dict(sorted(outcomes.items()))}
    report["data"] = {
        "files": len(want.old),
        "records": len(want.remaining) + len(want.removed),
        "bytes": sum(p.stat().st_size for p in (template / "data").glob("*/*.jsonl")),
        "removed": len(want.removed),
        "files_rewritten": sum(want.old[k] != want.new[k] for k in want.old),
    }
    report["kills_total"] = sum(v["tried"] for v in report["kill_points"].values())
    report["violations"] = len(problems)
    report["problems"] = problems[:20]
    return report


def scale(workdir: Path, records: int) -> dict[str, Any]:
    """One purge of 3 records (first, middle, last) from a file of `records` records, against `cp`. A plan
    made first in this process builds the provenance index (timed on its own); the purge then uses it."""
    root = workdir / "scale"
    text = "int f(void) { return 0; }\n" * 8
    make_project(root, records={"acme-fw": [record("acme-fw", i, f"// {i}\n{text}") for i in range(records)]})
    size = sum(p.stat().st_size for p in data_files(root / "data" / "acme-fw"))
    seconds = {}
    request = {"keys": [["acme-fw", 0], ["acme-fw", records // 2], ["acme-fw", records - 1]], "hashes": []}
    start = time.perf_counter()
    purge.plan(Project(root), {(s, i) for s, i in request["keys"]})
    seconds["plan"] = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run(["cp", "-r", str(root / "data"), str(workdir / "cp-copy")], check=True)
    seconds["cp"] = time.perf_counter() - start
    ref = run_child(root, request)
    assert ref is not None
    return {
        "records": records,
        "bytes": size,
        "purge_seconds": round(ref["seconds"], 3),
        "index_build_and_first_plan_seconds": round(seconds["plan"], 3),
        "cp_seconds": round(seconds["cp"], 3),
        "peak_rss_mb": ref["peak_rss_mb"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("ROOT", "REQUEST_JSON"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--timed", type=int, default=100, help="random-instant kills (besides one per operation)"
    )
    parser.add_argument("--scale", type=int, default=200_000, help="records in the timing run (0: skip)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), json.loads(args.child[1]))
        return 0
    with tempfile.TemporaryDirectory(prefix="purge-crash-") as tmp:
        report = run(Path(tmp), timed=args.timed, seed=args.seed)
        if args.scale:
            report["scale"] = scale(Path(tmp), args.scale)
    print(json.dumps(report, indent=2))
    return 1 if report["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
