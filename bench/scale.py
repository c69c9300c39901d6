"""Bench: kiki-bot on 1 M and 10 M provenance records, against the naive way; prints one JSON document.

Per size (a synthetic project from bench/synth.py, generated once and cached under .kiki/bench/scale-N):
- the provenance index: cold build, incremental refresh with nothing changed and with one file changed;
- `removal match` latency (p50/p99, in process, index refreshed and verified on every call) over ~50
  single-selector requests of every kind, next to a naive full scan of the JSONL (json.loads per line and
  the DESIGN.md table check through `matching.Matcher`) for a few of the same requests, with the speed-up;
- purging 0.1 % of the records (spread over every data file) next to `cp` of the same files, and to `cp`
  then `sync`, alternately over a few rounds, each timed step from the same state (medians reported);
- `kiki-bot card render` and `card check`, and `kiki-bot handle` for a removal-request issue (cold start,
  against the GitHub emulator run by this process).
Every command runs in a fresh child process; its peak RSS comes from wait4(2). Mutating steps work on a
scratch copy (data files hard-linked, so a purge, which writes new files, leaves the cached project alone).

Usage: .venv/bin/python bench/scale.py [--sizes 1000000 10000000] [--queries 54] [--naive 3]
       [--purge-rounds 3] [--only index match card triage changes purge]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import synth

from kiki_bot import removal
from kiki_bot.core.canonical import content_hash
from kiki_bot.core.matching import Matcher
from kiki_bot.core.selectors import Sha256Selector, hf_dataset_of, origin_url, parse_selector
from kiki_bot.index import schema, store
from kiki_bot.repo import manifests
from kiki_bot.repo.project import Project
from kiki_bot.repo.records import data_files

PY = sys.executable
GH_REPO = "bench-lab/models"
TARGETS = {
    "match_p50_ms": 50,
    "match_speedup": 100,
    "purge_vs_cp": 2.0,
    "peak_rss_mb": 300,
    "triage_s": 2.0,
    "card_render_s": 60,
}


# ---------------------------------------------------------------- children and their peak RSS
def child(argv: list[str], env: dict[str, str] | None = None) -> dict:
    """Run one fresh process; wall seconds, peak RSS (MB: the largest of it and the processes it waited
    for), stdout. RSS comes from /usr/bin/time (wait4 of a small launcher): a child forked from this
    process would carry this process's high-water mark across exec."""
    with tempfile.NamedTemporaryFile("r") as rss, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", rss.name, *argv],
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            cwd=ROOT,
            check=False,
        )
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{argv[:6]} failed ({proc.returncode}): {err.read().decode()[-2000:]}")
        peak = int(rss.read().split()[-1]) / 1024
    return {"wall_s": round(wall, 3), "peak_rss_mb": round(peak, 1), "out": proc.stdout.decode()}


def kiki(*args: str, env: dict[str, str] | None = None) -> dict:
    return child([PY, "-m", "kiki_bot", *args], env)


def child_refresh(root: Path) -> dict:
    """Child: open (refresh, verify) the index of every source; seconds inside the process."""
    project = Project(root)
    start = time.perf_counter()
    with store.opened(project, sorted(project.sources)) as ix:
        assert ix is not None
        served = sum(f.served for fs in ix.files.values() for f in fs)
        total = sum(len(fs) for fs in ix.files.values())
    return {"seconds": round(time.perf_counter() - start, 3), "files_served": served, "files": total}


def child_plan(root: Path, keys_file: Path) -> dict:
    """Child: plan the purge of the given keys (the index look-up and byte ranges; it changes nothing)."""
    from kiki_bot.repo import purge

    keys = {(s, i) for s, i in json.loads(keys_file.read_text())}
    start = time.perf_counter()
    todo = purge.plan(Project(root), keys)
    return {"seconds": round(time.perf_counter() - start, 3), "files": len(todo.cuts)}


def child_purge(root: Path, keys_file: Path) -> dict:
    """Child: purge the given keys as one approved request (plan, ledger entry, rewrite, manifests)."""
    from kiki_bot.repo import purge

    project = Project(root)
    keys = {(s, i) for s, i in json.loads(keys_file.read_text())}
    start = time.perf_counter()
    triples = purge.purge(
        project, "R-1", 1, keys, set(), sorted(project.adapters), "bench", dt.datetime.now(dt.UTC)
    )
    return {"seconds": round(time.perf_counter() - start, 3), "records": len(triples)}


# ---------------------------------------------------------------- the project and its requests
def project_for(size: int) -> tuple[Path, float | None]:
    root = ROOT / ".kiki" / "bench" / f"scale-{size}"
    if (root / "adapters" / "bench-lora.toml").is_file():
        return root, None
    shutil.rmtree(root, ignore_errors=True)
    start = time.perf_counter()
    synth.make(root, size)
    return root, round(time.perf_counter() - start, 1)


def _sample_records(root: Path, rng: random.Random, per_source: int) -> dict[str, list[dict]]:
    """A few records of each source, read at random byte offsets (a whole line after each)."""
    out: dict[str, list[dict]] = {}
    for sid in synth.SOURCES:
        files = data_files(root / "data" / sid)
        found = out[sid] = []
        while len(found) < per_source:
            path = rng.choice(files)
            with open(path, "rb") as fh:
                fh.seek(rng.randrange(max(path.stat().st_size - 4096, 1)))
                fh.readline()
                found.append(json.loads(fh.readline()))
    return out


def requests(root: Path, n: int, seed: int) -> list[tuple[str, str]]:
    """~n single-identifier requests, (kind, line), every selector kind, hitting real records."""
    rng = random.Random(seed)
    per = max(n // 9, 1)
    recs = _sample_records(root, rng, per * 2)
    gh, web, hub = (
        recs["gh-code"],
        [r for r in recs["web-docs"] if "origin" in r["_provenance"]],
        recs["hub-rows"],
    )
    out: list[tuple[str, str]] = []
    for k in range(per):
        g, w, h = gh[k]["_provenance"], web[k % len(web)]["_provenance"], hub[k]["_provenance"]
        owner, repo = g["repo"].split("/")
        folder = g["path"].rsplit("/", 1)[0]
        host = w["origin"].split("/")[2]
        out += [
            ("account", owner if k % 2 else f"https://github.com/{owner}"),
            ("repository", f"{owner}/{repo}" if k % 2 else f"https://github.com/{owner}/{repo}.git"),
            (
                "path",
                f"https://github.com/{owner}/{repo}/tree/main/{folder}"
                if k % 2
                else f"https://github.com/{owner}/{repo}/blob/v1/{g['path']}",
            ),
            ("url", w["origin"] if k % 2 else h["origin"]),
            ("url_prefix", f"https://{host}/guide/"),
            ("domain", f"domain:{host.split('.', 1)[1]}" if k % 2 else f"domain:{host}"),
            (
                "hf_dataset",
                "hf:datasets/acme-ai/embedded-instruct" if k == 0 else f"hf:datasets/acme-ai/other-{k}",
            ),
            ("record", f"record:{rng.choice(list(synth.SOURCES))}#{rng.randrange(1000)}"),
            ("sha256", f"sha256:{g['sha256']}" if k % 2 else f"sha256:{content_hash(hub[k])}"),
        ]
    return out


class _Prov:
    """What `Matcher.judge` reads of a record's provenance."""

    __slots__ = ("origin", "path", "record_idx", "repo", "sha256", "source")

    def __init__(self, p: dict) -> None:
        self.source, self.record_idx = p["source"], p["record_idx"]
        self.origin, self.repo, self.path, self.sha256 = (
            p.get("origin"),
            p.get("repo"),
            p.get("path"),
            p.get("sha256"),
        )


def naive(project: Project, selectors: list) -> list[tuple[str, int, int]]:
    """The naive way: read every line, json.loads it, check the DESIGN.md table (Matcher)."""
    matcher = Matcher(selectors)
    datasets = {
        sid: hf_dataset_of(origin_url(str(s.url) if s.url else None)) for sid, s in project.sources.items()
    }
    hashes = any(isinstance(s, Sha256Selector) for s in selectors)
    found = []
    for sid in sorted(project.sources):
        for path in data_files(project.data_dir / sid):
            with open(path, "rb") as fh:
                for raw in fh:
                    if not raw.strip():
                        continue
                    obj = json.loads(raw)
                    prov = _Prov(obj["_provenance"])
                    i, _ = matcher.judge(prov, content_hash(obj) if hashes else "", datasets.get(sid))  # type: ignore[arg-type]
                    if i is not None:
                        found.append((sid, prov.record_idx, i))
    return found


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


# ---------------------------------------------------------------- the steps
def bench_match(root: Path, n_queries: int, n_naive: int, seed: int) -> dict:
    project = Project(root)
    reqs = requests(root, n_queries, seed)
    removal.match(project, [parse_selector("warm-up")])
    times, by_kind, results = [], {}, []
    for kind, line in reqs:
        sels = [parse_selector(line)]
        start = time.perf_counter()
        got = removal.match(project, sels)
        elapsed = (time.perf_counter() - start) * 1000
        times.append(elapsed)
        by_kind.setdefault(kind, []).append(elapsed)
        results.append(got.result.matches)
    rng = random.Random(seed + 1)
    picks = rng.sample([i for i, (kind, _) in enumerate(reqs) if kind != "hf_dataset"], n_naive)
    naive_s, same = [], True
    for i in picks:
        start = time.perf_counter()
        want = naive(project, [parse_selector(reqs[i][1])])
        naive_s.append(time.perf_counter() - start)
        same &= want == results[i]
    p50 = statistics.median(times)
    per_query = statistics.mean(naive_s)
    return {
        "queries": len(reqs),
        "p50_ms": round(p50, 2),
        "p99_ms": round(_pct(times, 0.99), 2),
        "max_ms": round(max(times), 2),
        "p50_ms_by_kind": {k: round(statistics.median(v), 2) for k, v in by_kind.items()},
        "matched_records_by_kind": {
            k: sum(len(results[i]) for i, (kk, _) in enumerate(reqs) if kk == k) for k in by_kind
        },
        "naive": {
            "scans": len(picks),
            "kinds": [reqs[i][0] for i in picks],
            "per_query_s": round(per_query, 2),
            "same_matches_as_index": same,
        },
        "speedup_vs_naive_at_p50": round(per_query * 1000 / p50),
        "speedup_vs_naive_at_p99": round(per_query * 1000 / _pct(times, 0.99)),
    }


def bench_match_cli(root: Path, tmp: Path) -> dict:
    body = tmp / "body.md"
    body.write_text(
        _body(["owner3", "https://docs0.site2.com/guide/", "domain:site7.com", "record:gh-code#17"])
    )
    res = kiki("removal", "match", "--body", str(body), "--json", "-C", str(root))
    return {
        "wall_s": res["wall_s"],
        "peak_rss_mb": res["peak_rss_mb"],
        "matches": len(json.loads(res["out"])["matches"]),
    }


def _body(lines: list[str]) -> str:
    return (
        "### Content to remove\n\n" + "\n".join(lines) + "\n\n### Your relationship to the content\n\n"
        "I am the author or rightsholder\n\n### Reason\n\nCopyright\n\n### Additional details\n\n_No response_\n\n"
        "### Confirmation\n\n- [X] I confirm that the information in this request is accurate\n"
    )


def bench_triage(root: Path, tmp: Path) -> dict:
    """`kiki-bot handle` for an opened removal-request issue: parse, match, comment, label."""
    from kiki_bot.demo.emulators import GitHubEmulator, serve

    gh = GitHubEmulator()
    server = serve(gh)
    try:
        gh.create_repo(GH_REPO, files={"kiki.toml": (root / "kiki.toml").read_bytes()})
        number = gh.open_issue(GH_REPO, "Removal request", "", user="octo-dev", labels=["removal-request"])
        event = json.loads(
            (ROOT / "tests" / "fixtures" / "github-events" / "issues.opened.payload.json").read_text()
        )
        event["issue"].update(
            number=number,
            body=_body(["owner3", "https://docs0.site2.com/guide/", "domain:site7.com"]),
            created_at="2026-03-01T10:00:00Z",
            labels=[{"name": "removal-request"}],
        )
        event["issue"]["user"]["login"] = "octo-dev"
        event["repository"].update(full_name=GH_REPO, default_branch="main")
        path = tmp / "issues.json"
        path.write_text(json.dumps(event))
        env = {
            **os.environ,
            "GITHUB_API_URL": server.url,
            "GITHUB_TOKEN": "ghs_bench",
            "KIKI_GITHUB_THROTTLE": "0",
            "GITHUB_REPOSITORY": GH_REPO,
            "NO_PROXY": "127.0.0.1,localhost",
        }
        res = kiki("handle", "--event-name", "issues", "--event-path", str(path), "-C", str(root), env=env)
        comments = [c for c in gh.comments(GH_REPO, number) if c.user != "octo-dev"]
        assert comments and "awaiting-approval" in gh.issue(GH_REPO, number).labels, "triage did not answer"
        return {"wall_s": res["wall_s"], "peak_rss_mb": res["peak_rss_mb"]}
    finally:
        server.stop()


_TOUCH = """import mmap, sys
m, block = mmap.mmap(-1, int(sys.argv[1])), b"\\1" * (1 << 21)
for i in range(0, len(m), len(block)):
    m[i : i + len(block)] = block[: len(m) - i]
"""


def _settle(paths: list[Path]) -> None:
    """The same start for every timed copy: nothing dirty, `paths` in the page cache, and free memory the
    host has backed. This VM (Firecracker, free page reporting) hands memory the guest frees back to the
    host, and the next gigabytes written then cost several times more (the same `cp`: 2 s or 10 s), so a
    child first touches twice the bytes the step will write and frees them just before the step."""
    subprocess.run(["sync"], check=True)
    touch = 2 * sum(p.stat().st_size for p in paths)
    with contextlib.suppress(OSError, StopIteration):  # never more than half of what is available
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        available = next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:"))
        touch = min(touch, available // 2)
    subprocess.run([PY, "-c", _TOUCH, str(touch)], check=True)
    for path in paths:
        with open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass


def scratch_copy(root: Path, dest: Path) -> Path:
    """The project with its data files hard-linked (a purge writes new files, so the cache is untouched),
    everything else copied, and the index copied and adopted (it is bound to its own inode)."""
    shutil.rmtree(dest, ignore_errors=True)
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] == ".kiki" or path.is_dir():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".jsonl" and rel.parts[0] == "data":
            os.link(path, dest / rel)
        else:
            shutil.copy2(path, dest / rel)
    (dest / ".kiki").mkdir()
    shutil.copy(schema.index_path(root), schema.index_path(dest))
    store.adopt(dest)
    return dest


def bench_index(root: Path) -> dict:
    refresh = [PY, __file__, "--child", "refresh", str(root)]
    schema.index_path(root).unlink(missing_ok=True)
    cold = child(refresh)
    time.sleep(2.5)  # files verified within 2 s of a change are hashed again once (refresh.RACY_NS)
    warm = child(refresh)
    nochange = child(refresh)
    return {
        "cold_build_s": json.loads(cold["out"])["seconds"],
        "cold_build_peak_rss_mb": cold["peak_rss_mb"],
        "refresh_no_change_s": json.loads(nochange["out"])["seconds"],
        "refresh_no_change_wall_s": nochange["wall_s"],
        "refresh_peak_rss_mb": max(warm["peak_rss_mb"], nochange["peak_rss_mb"]),
        "index_mb": round(schema.index_path(root).stat().st_size / 2**20),
        "data_mb": round(sum(p.stat().st_size for p in (root / "data").glob("*/*.jsonl")) / 2**20),
        "data_files": len(list((root / "data").glob("*/*.jsonl"))),
    }


def bench_changes(root: Path, tmp: Path) -> dict:
    """On a scratch copy: the index refreshed after one file changed, twice."""
    out: dict = {}
    scratch = scratch_copy(root, tmp / "scratch")
    refresh = [PY, __file__, "--child", "refresh", str(scratch)]
    child(refresh)  # hard links changed the ctimes: the files are hashed (verified) once
    # one file changed, twice: a record appended to the last gh-code file, then one record in the middle of
    # the first web-docs file edited (another length); each time its manifest updated
    for what, path in (
        ("appended", data_files(scratch / "data" / "gh-code")[-1]),
        ("edited", data_files(scratch / "data" / "web-docs")[0]),
    ):
        lines = path.read_bytes().splitlines(keepends=True)
        path.unlink()  # a new inode: the cached project's link keeps its bytes
        if what == "appended":
            line = json.loads(lines[0])
            line["_provenance"]["record_idx"] = 10**9
            lines.append((json.dumps(line, separators=(",", ":")) + "\n").encode())
        else:
            middle = len(lines) // 2
            lines[middle] = lines[middle].replace(b'"text":"', b'"text":"edited: ', 1)
        path.write_bytes(b"".join(lines))
        manifests.refresh(path.parent)
        changed = child(refresh)
        out[f"refresh_one_file_{what}_s"] = json.loads(changed["out"])["seconds"]
        out[f"refresh_one_file_{what}_peak_rss_mb"] = changed["peak_rss_mb"]
    shutil.rmtree(scratch)
    return out


def bench_purge(root: Path, size: int, tmp: Path, seed: int, rounds: int) -> dict:
    """Purge 0.1 % of the records (spread over every data file) on a fresh scratch copy, `rounds` times,
    each next to `cp` of the same files (and `cp` then `sync`: the purge fsyncs what it writes, cp does
    not), every timed step from the same settled state; medians and every sample."""
    rng = random.Random(seed)
    counts = {sid: round(size * share) for sid, (_, _, _, share) in synth.SOURCES.items()}
    keys: set[tuple[str, int]] = set()
    while len(keys) < size // 1000:
        sid = rng.choices(list(counts), weights=list(counts.values()))[0]
        keys.add((sid, rng.randrange(counts[sid])))
    keys_file = tmp / "keys.json"
    keys_file.write_text(json.dumps(sorted(keys)))
    files = {
        sid: data_files(root / "data" / sid) for sid in counts
    }  # the bytes each scratch copy starts from
    everything = [p for fs in files.values() for p in fs]
    samples: dict[str, list[float]] = {"purge_s": [], "purge_wall_s": [], "cp_s": [], "cp_then_sync_s": []}

    def cp() -> None:
        cp_dir = tmp / "cp"
        for sid in counts:
            (cp_dir / sid).mkdir(parents=True)
        _settle(everything)
        start = time.perf_counter()
        for sid in counts:  # the same files the purge rewrote (0.1 % of the records touches every file)
            subprocess.run(["cp", *map(str, files[sid]), str(cp_dir / sid)], check=True)
        samples["cp_s"].append(time.perf_counter() - start)
        subprocess.run(["sync"], check=True)
        samples["cp_then_sync_s"].append(time.perf_counter() - start)
        shutil.rmtree(cp_dir)

    for _ in range(rounds):  # cp, purge, cp, purge, ..., cp
        cp()
        scratch = scratch_copy(root, tmp / "scratch")
        refresh = [PY, __file__, "--child", "refresh", str(scratch)]
        child(refresh)  # hard links changed the ctimes: the files are hashed (verified) once
        time.sleep(2.5)  # files verified within 2 s of a change are hashed again once (refresh.RACY_NS)
        child(refresh)
        planned = json.loads(child([PY, __file__, "--child", "plan", str(scratch), str(keys_file)])["out"])
        _settle(everything)
        purged = child([PY, __file__, "--child", "purge", str(scratch), str(keys_file)])
        report = json.loads(purged["out"])
        samples["purge_s"].append(report["seconds"])
        samples["purge_wall_s"].append(purged["wall_s"])
        after = child(refresh)
        shutil.rmtree(scratch)
    cp()
    med = {k: statistics.median(v) for k, v in samples.items()}
    return {
        "records": report["records"],
        "files": planned["files"],
        "data_mb": round(sum(p.stat().st_size for p in everything) / 2**20),
        "rounds": rounds,
        "purge_s": round(med["purge_s"], 3),
        "of_which_plan_s": planned["seconds"],
        "purge_wall_s": round(med["purge_wall_s"], 3),
        "peak_rss_mb": purged["peak_rss_mb"],
        "cp_s": round(med["cp_s"], 3),
        "cp_then_sync_s": round(med["cp_then_sync_s"], 3),
        "ratio_to_cp": round(med["purge_s"] / med["cp_s"], 2),
        "ratio_to_cp_then_sync": round(med["purge_s"] / med["cp_then_sync_s"], 2),
        "wall_ratio_to_cp": round(med["purge_wall_s"] / med["cp_s"], 2),
        "samples": {k: [round(x, 3) for x in v] for k, v in samples.items()},
        "index_refresh_after_s": json.loads(after["out"])["seconds"],
        "index_refresh_after_peak_rss_mb": after["peak_rss_mb"],
    }


STEPS = ("index", "match", "card", "triage", "changes", "purge")


def bench_size(size: int, args: argparse.Namespace) -> dict:
    root, generated = project_for(size)
    doc: dict = {"records": size, "generate_s": generated}
    steps = args.only or STEPS
    with tempfile.TemporaryDirectory(dir=ROOT / ".kiki" / "bench") as t:
        tmp = Path(t)
        if "index" in steps:
            doc["index"] = bench_index(root)
        if "match" in steps:
            doc["match"] = bench_match(root, args.queries, args.naive, args.seed)
            doc["match_cli"] = bench_match_cli(root, tmp)
        if "card" in steps:
            render = kiki("card", "render", "-C", str(root), "--version", "0.1.0", "--date", "2026-05-06")
            check = kiki("card", "check", "-C", str(root))
            doc["card_render"] = {"wall_s": render["wall_s"], "peak_rss_mb": render["peak_rss_mb"]}
            doc["card_check"] = {"wall_s": check["wall_s"], "peak_rss_mb": check["peak_rss_mb"]}
        if "triage" in steps:
            doc["triage_handle"] = bench_triage(root, tmp)
        if "changes" in steps:
            doc.setdefault("index", {}).update(bench_changes(root, tmp))
        if "purge" in steps:
            doc["purge"] = bench_purge(root, size, tmp, args.seed, args.purge_rounds)
    doc["peak_rss_mb_any_command"] = max(v for k, v in _flat(doc) if k.endswith("peak_rss_mb"))
    checks = {
        "match_p50_le_50ms": ("match", lambda: doc["match"]["p50_ms"] <= TARGETS["match_p50_ms"]),
        "match_ge_100x_naive": (
            "match",
            lambda: doc["match"]["speedup_vs_naive_at_p50"] >= TARGETS["match_speedup"],
        ),
        "purge_le_2x_cp": ("purge", lambda: doc["purge"]["ratio_to_cp"] <= TARGETS["purge_vs_cp"]),
        "purge_le_2x_cp_then_sync": (
            "purge",
            lambda: doc["purge"]["ratio_to_cp_then_sync"] <= TARGETS["purge_vs_cp"],
        ),
        "triage_cold_start_le_2s": ("triage", lambda: doc["triage_handle"]["wall_s"] <= TARGETS["triage_s"]),
        "card_render_le_60s": ("card", lambda: doc["card_render"]["wall_s"] <= TARGETS["card_render_s"]),
    }
    doc["targets"] = {name: ok() for name, (step, ok) in checks.items() if step in steps}
    doc["targets"]["peak_rss_le_300mb"] = doc["peak_rss_mb_any_command"] <= TARGETS["peak_rss_mb"]
    return doc


def _flat(d: dict, prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flat(v, f"{prefix}{k}.")
        elif isinstance(v, int | float):
            yield f"{prefix}{k}", v


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--queries", type=int, default=54)
    parser.add_argument("--naive", type=int, default=3, help="naive full scans timed per size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", choices=STEPS, help="run only these steps (default: all)")
    parser.add_argument("--purge-rounds", type=int, default=3, help="purges (and cp runs) timed per size")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        what, *rest = args.child
        run = {"refresh": child_refresh, "plan": child_plan, "purge": child_purge}[what]
        doc = run(*map(Path, rest))
        print(json.dumps(doc))
        return
    (ROOT / ".kiki" / "bench").mkdir(parents=True, exist_ok=True)
    report = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}, "sizes": []}
    for size in args.sizes:
        report["sizes"].append(bench_size(size, args))
        print(json.dumps(report["sizes"][-1]), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
