"""Scenario suite (issue 12): hypothesis interleaves everything that happens to a model repository — triage of
two or three concurrent removal requests, decisions by users of every role, redelivered events, purge and
review PRs merged in any order, re-tags of one version, releases, publishes and deadline runs — over the GitHub
and Hub emulators, driven by the real PyGithub and huggingface_hub, with mlx-lm really training. After every step
it checks DESIGN.md section 7 against ground truth the bot cannot influence:

1. a `released` entry for R and V, or a card of V counting R's removal, only exists when the weights of V (staged
   or published on the Hub) were trained on a set holding none of R's purged triples, and the entry names that
   set by its `train_sha256`; what a set held is read from the train/valid files of the run that wrote the
   weights, right after it wrote them;
2. no record outside what the approved requests' selectors match is removed, and each removal is in a `purged`
   entry;
3. one decision per request; one bot comment per marker kind per issue; one ledger entry per step;
4. `ledger verify` passes on the default branch, whose ledger only grows; a redelivered event that worked before
   works again (a step already done is a no-op).

Each workflow run starts from a fresh checkout, as on a runner: of the default branch for issue, comment, merge
and cron events, of the tag for a release; training runs live in a shared KIKI_RUNS_DIR, so a run may be reused
when its identity (training-set and base-weights hashes) is the same. `bench/scenarios.py` runs the same machine
for thousands of interleavings and counts violations instead of stopping at the first.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import re
import shutil
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import hypothesis.strategies as st
import pytest
from emulator_fixtures import GITHUB, HUB, github_client
from factory import KIKI, adapter, make_project, record, source
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from test_release_flow import fixture, merged_event, mlx_weights, push_event
from test_removal_flow import GH_REPO, OPENED, body, comment_event, issue_event

from kiki_bot.core import ledger
from kiki_bot.repo import ledgerfile
from kiki_bot.core.errors import KikiError

ADAPTER, SOURCE, HUB_REPO = "tiny-lora", "acme-fw", "test-lab/tiny-lora"
LEDGER, CARD = "compliance/removals.jsonl", f"cards/{ADAPTER}/card.json"
REQUESTER = "octo-dev"
ROLES = {"nobody": "none", "reader": "read", "triager": "triage", "writer": "write", "maint": "maintain",
         "owner": "admin"}
MAINTAINERS, OTHERS = ["writer", "maint", "owner"], ["nobody", "reader", "triager"]
OWNERS = ["octo-dev"] * 4 + ["alice"] * 4 + ["acme"] * 22
START = dt.datetime.fromisoformat(OPENED)
Triple = tuple[str, int, str]


def content_hash(payload: dict) -> str:
    """DESIGN.md section 2: SHA-256 of the canonical JSON of the record without `_provenance`."""
    doc = {k: v for k, v in payload.items() if k != "_provenance"}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                          .encode()).hexdigest()


def scenario_records() -> list[dict]:
    return [record(SOURCE, i, f"int f{i}(void) {{ return {i}; }}", repo=f"{owner}/fw",
                   origin=f"https://github.com/{owner}/fw/blob/main/src/f{i}.c", path=f"src/f{i}.c")
            for i, owner in enumerate(OWNERS)]


def triple(rec: dict) -> Triple:
    return (SOURCE, rec["_provenance"]["record_idx"], content_hash(rec))


def selector_pool(recs: list[dict]) -> list[tuple[str, frozenset[Triple]]]:
    """Identifiers built from the project's own records, each with what DESIGN.md section 3 says it matches —
    worked out here from how the records were made, not by the bot's matcher."""
    by_owner: dict[str, set[Triple]] = {}
    for rec in recs:
        by_owner.setdefault(rec["_provenance"]["repo"].split("/")[0], set()).add(triple(rec))
    pool = []  # narrowest first: shrinking goes towards index 0
    for rec in recs[::3]:
        p = rec["_provenance"]
        pool.append((f"https://github.com/{p['repo']}/blob/v1/{p['path']}", frozenset({triple(rec)})))
    for rec in recs[1::4]:
        pool.append((f"record:{SOURCE}#{rec['_provenance']['record_idx']}", frozenset({triple(rec)})))
    for rec in recs[2::5]:
        pool.append((f"sha256:{content_hash(rec)}", frozenset({triple(rec)})))
    pool += [(f"{owner}/fw", frozenset(t)) for owner, t in sorted(by_owner.items(), key=lambda o: len(o[1]))]
    pool += [(f"https://github.com/{owner}", frozenset(t))
             for owner, t in sorted(by_owner.items(), key=lambda o: len(o[1]))]
    return pool


def data_triples(files: dict[str, bytes]) -> set[Triple]:
    """The (source, record_idx, content_hash) of every record in a snapshot's data files."""
    out = set()
    for path, data in files.items():
        if path.startswith(f"data/{SOURCE}/") and path.endswith(".jsonl"):
            out |= {triple(json.loads(line)) for line in data.splitlines() if line.strip()}
    return out


def ledger_head(card: dict) -> int | None:
    """The ledger seq a card.json was rendered against (DESIGN.md section 7.4), wherever the card keeps it."""
    for where in (card, card.get("header") or {}, card.get("run") or {}):
        if isinstance(where.get("ledger_seq"), int):
            return where["ledger_seq"]
    return None


def training_hashes(data: bytes) -> set[str]:
    return {content_hash(json.loads(line)) for line in data.splitlines() if line.strip()}


@dataclass(frozen=True)
class TrainingSet:
    """What a set of weights was trained on, read from its run the first time the weights appeared."""

    sha256: str  # of train.jsonl followed by valid.jsonl, as DESIGN.md section 7 defines `train_sha256`
    hashes: frozenset[str]


@dataclass
class Delivery:
    what: str
    name: str
    payload: dict
    ref: str | None  # the tag a release runs on; None: the default branch
    code: int


@dataclass
class Stats:
    """What the interleavings exercised, for the bench and to keep the suite honest about its coverage."""

    interleavings: int = 0
    steps: int = 0
    rules: Counter = field(default_factory=Counter)  # rule -> steps
    seconds: Counter = field(default_factory=Counter)  # rule -> seconds spent in it (checks apart)
    outcomes: Counter = field(default_factory=Counter)  # rule:exit code -> steps
    reached: Counter = field(default_factory=Counter)  # milestone -> interleavings that reached it
    violations: Counter = field(default_factory=Counter)  # kind -> interleavings that showed it
    first: dict[str, str] = field(default_factory=dict)  # kind -> its first occurrence, with the steps before it

    @staticmethod
    def kind(problem: str) -> str:
        return re.sub(r"[0-9a-f]{64}|\d+", "N", re.sub(r" \(.*?\)", "", problem.split("\n", 1)[0]))[:200]


class World:
    """One model repository, its GitHub and Hub state, the runner's checkout, and the ground truth."""

    # weights SHA-256 -> every training set a run produced them from (validation records do not change weights);
    # runs are shared across examples, so this is too
    truth: ClassVar[dict[str, set[TrainingSet]]] = {}
    seen_weights: ClassVar[dict[Path, tuple[int, int]]] = {}

    def __init__(self, base: Path, runs: Path, requests: list[list[int]]) -> None:
        GITHUB.reset()
        HUB.reset()
        self.root = Path(tempfile.mkdtemp(prefix="kiki-scenario-"))
        self.runs, self.clock = runs, START
        self.records = scenario_records()
        self.initial = {triple(r) for r in self.records}
        pool = selector_pool(self.records)
        self.requests = [[pool[i][0] for i in req] for req in requests]
        self.matches = [frozenset().union(*(pool[i][1] for i in req)) for req in requests]
        kiki = json.loads(json.dumps(KIKI))
        kiki["policy"].update(auto_approve_owner=True)
        ad = adapter([SOURCE])
        ad["base_model"].update(local_path=str(base), parameters=150000.0)
        # Tiny, but every training record is in a batch (iters x batch_size >= records): weights tell data apart.
        ad["training"].update(iters=12, batch_size=2, save_every=12, steps_per_report=12, steps_per_eval=12,
                              max_seq_length=64, valid_fraction=0.4, learning_rate=1e-3)
        self.checkout = make_project(self.root / "checkout", kiki=kiki, sources={SOURCE: source()},
                                     records={SOURCE: self.records}, adapters={ADAPTER: ad})
        files = {str(p.relative_to(self.checkout)): p.read_bytes() for p in self.checkout.rglob("*") if p.is_file()}
        files[".github/workflows/kiki-release.yml"] = b"on: workflow_dispatch\n"
        GITHUB.create_repo(GH_REPO, files=files)
        for login, role in ROLES.items():
            GITHUB.set_permission(GH_REPO, login, role)
        self.issues = [GITHUB.open_issue(GH_REPO, "Removal request", body(*lines), user=REQUESTER,
                                         labels=["removal-request"]) for lines in self.requests]
        self.request_of = {f"R-{n}": k for k, n in enumerate(self.issues)}
        self.github = github_client().get_repo(GH_REPO)
        self.delivered: list[Delivery] = []
        self.main_ledger, self.main_head = b"", ""
        self.log: list[str] = []
        self.problems: list[str] = []  # found during a step (a crash, a redelivery that failed)
        self.reached: set[str] = set()

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------ the runner
    def sync(self, ref: str | None = None) -> None:
        """`actions/checkout` of a ref (default branch when None): tracked files exactly as there; .kiki/ kept."""
        want = GITHUB.files(GH_REPO, ref)
        for path in [p for p in self.checkout.rglob("*") if p.is_file()]:
            rel = str(path.relative_to(self.checkout))
            if not rel.startswith(".kiki/") and rel not in want:
                path.unlink()
        for rel, data in want.items():
            path = self.checkout / rel
            if not path.is_file() or path.read_bytes() != data:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)

    def cli(self, *args: str) -> tuple[int, str]:
        """Run `kiki-bot` in-process through its real entry point; returns the exit code and stderr."""
        from kiki_bot.cli import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in args])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except Exception:  # noqa: BLE001 - a traceback is itself a violation, reported with the others
                self.problems.append(f"`kiki-bot {' '.join(map(str, args[:2]))}` crashed:\n{traceback.format_exc()}")
                code = -1
        return code, err.getvalue()

    def deliver(self, what: str, name: str, payload: dict, ref: str | None = None) -> int:
        """One workflow run for an event, on a fresh checkout of `ref` (a tag), else of the default branch."""
        self.sync(ref)
        path = self.root / "event.json"
        path.write_text(json.dumps(payload))
        code, err = self.cli("handle", "--event-name", name, "--event-path", path, "-C", self.checkout)
        self.note(what, code, err)
        self.delivered.append(Delivery(what, name, payload, ref, code))
        self.learn_training_sets()
        return code

    def note(self, what: str, code: object, err: str = "") -> None:
        """The step as the failure report shows it, with the bot's one-line answer when it refused."""
        said = [line for line in err.splitlines() if line.startswith(("error:", "failed:"))]
        self.log.append(f"{what} -> {code}" + (f" ({said[0][:240]})" if said else ""))

    # ------------------------------------------------------------ what people and GitHub do
    def triage(self, k: int, action: str) -> int:
        n = self.issues[k]
        return self.deliver(f"triage #{n} ({action}: {', '.join(self.requests[k])})", "issues",
                            issue_event(n, body(*self.requests[k]), user=REQUESTER, action=action))

    def decide(self, k: int, login: str, verb: str) -> int:
        n, text = self.issues[k], "/kiki approve" if verb == "approve" else "/kiki reject not our data"
        cid = GITHUB.add_comment(GH_REPO, n, text, user=login)
        event = comment_event(n, text, login, comment_id=cid, issue_user=REQUESTER)
        event["comment"]["created_at"] = self.clock.isoformat()
        return self.deliver(f"#{n} {login} ({ROLES.get(login, 'requester')}): {text}", "issue_comment", event)

    def redeliver(self, i: int) -> int:
        old = self.delivered[i]
        code = self.deliver(f"again: {old.what.removeprefix('again: ')}", old.name, old.payload, old.ref)
        if old.code == 0 and old.name in ("issues", "issue_comment") and code != 0:
            self.problems.append(f"a redelivered {old.name} event exited {code} where it first exited 0 (a step "
                                 "already done must be a no-op)")
        return code

    def open_pulls(self) -> list:
        return [p for p in GITHUB.pulls(GH_REPO) if p.state == "open"]

    def merge(self, i: int, method: str):
        """A maintainer merges a PR (GitHub's three-way merge; a conflict is refused), then the checkout follows;
        returns the PR, or None when GitHub refused."""
        from github import GithubException

        pr = self.open_pulls()[i]
        try:
            self.github.get_pull(pr.number).merge(merge_method=method)
        except GithubException as exc:
            self.note(f"{method} PR #{pr.number} ({pr.pull.head})", f"refused {exc.status}")
            return None
        self.note(f"{method} PR #{pr.number} ({pr.pull.head})", "merged")
        self.sync()
        return pr

    def tag(self, version: str) -> str:
        """A maintainer pushes (or force-moves) the release tag to the default branch's head."""
        tag = f"{ADAPTER}/v{version}"
        repo = GITHUB.repo(GH_REPO)
        repo.tags[tag] = repo.branches[repo.default_branch]
        return tag

    def release(self, version: str) -> int:
        tag = self.tag(version)
        return self.deliver(f"push tag {tag} at the default branch's head", "push", push_event(tag), tag)

    def version(self, which: str) -> str:
        """`next`: the patch after every version tagged so far (the deadline run's tags included); `again`: the
        newest tagged version (a re-tag); `older`: one below it (what must be refused)."""
        tagged = sorted(tuple(map(int, t.split("/v")[1].split("."))) for t in GITHUB.repo(GH_REPO).tags)
        if not tagged:
            return "0.1.0"
        major, minor, patch = tagged[-1]
        patch += {"next": 1, "again": 0, "older": -1}[which]
        return f"{major}.{minor}.{max(patch, 0)}"

    def queued_runs(self) -> list:
        return [d for d in GITHUB.dispatches(GH_REPO) if d.event == "workflow_dispatch" and d.status == "queued"]

    def run_dispatched(self, i: int) -> int:
        """The release workflow run the deadline run dispatched, on its tag."""
        run = self.queued_runs()[i]
        run.status = "in_progress"
        event = fixture("workflow_dispatch.payload.json")
        event.update(inputs=run.payload, ref=f"refs/tags/{run.payload['tag']}")
        event["repository"].update(full_name=GH_REPO, default_branch="main")
        code = self.deliver(f"dispatched release run of {run.payload['tag']}", "workflow_dispatch", event,
                            run.payload["tag"])
        run.status, run.conclusion = "completed", "success" if code == 0 else "failure"
        return code

    def purge_prs(self) -> list:
        return [p for p in GITHUB.pulls(GH_REPO) if p.pull.head.startswith("kiki/removal/")]

    def merged_reviews(self) -> list:
        return [p for p in GITHUB.pulls(GH_REPO) if p.pull.merged_at and p.pull.head.startswith("kiki/release/")]

    def publish(self, pr) -> int:
        """The run of a merged review PR's `closed` event."""
        return self.deliver(f"publish: PR #{pr.number} ({pr.pull.head}) merged event", "pull_request",
                            merged_event(pr.number, pr.pull.head))

    def deadline_run(self, days: int) -> int:
        self.clock += dt.timedelta(days=days)
        self.sync()
        code, err = self.cli("schedule", "run", "--now", self.clock.isoformat(), "-C", self.checkout)
        self.note(f"deadline run at {self.clock:%Y-%m-%d %H:%M}", code, err)
        return code

    # ------------------------------------------------------------ ground truth
    def learn_training_sets(self) -> None:
        """Weights written during the last step were trained on the train/valid files of their run as they are
        now (a step assembles the set, then trains). Weights a step did not write are not associated with the
        data beside them now: a reused run keeps its weights, whatever its data directory holds since."""
        for weights in self.runs.rglob("adapters.safetensors"):
            st_ = weights.stat()
            if self.seen_weights.get(weights) == (st_.st_mtime_ns, st_.st_size):
                continue
            self.seen_weights[weights] = (st_.st_mtime_ns, st_.st_size)
            # the run's data/ is beside its adapter directory, or above it
            data = next((p / "data" for p in weights.parents if (p / "data" / "train.jsonl").is_file()), None)
            if data is not None:
                train, valid = (data / "train.jsonl").read_bytes(), (data / "valid.jsonl").read_bytes()
                self.truth.setdefault(hashlib.sha256(weights.read_bytes()).hexdigest(), set()).add(TrainingSet(
                    hashlib.sha256(train + valid).hexdigest(), frozenset(training_hashes(train) | training_hashes(valid))))

    def weights(self, version: str) -> bytes | None:
        """The adapter of `version` users get: published at the Hub tag, else staged in its Hub PR."""
        repo = HUB.repos.get(("model", HUB_REPO))
        if repo is None:
            return None
        if f"v{version}" in repo.tags:
            return mlx_weights(repo.files(f"v{version}"))
        staged = [d for d in repo.discussions.values() if d.is_pull_request and d.status == "open"
                  and d.title == f"{ADAPTER} v{version}"]
        return mlx_weights(repo.files(f"refs/pr/{staged[-1].num}")) if staged else None

    # ------------------------------------------------------------ DESIGN.md section 7
    def snapshots(self) -> dict[str, dict[str, bytes]]:
        """The default branch and the head of every open PR: what the ledger and the cards say anywhere."""
        out = {"main": GITHUB.files(GH_REPO)}
        for pr in self.open_pulls():
            out[f"PR #{pr.number} ({pr.pull.head})"] = GITHUB.files(GH_REPO, pr.pull.head)
        return out

    def entries(self, where: str, data: bytes) -> tuple[list[ledger.Entry], list[str]]:
        path = self.root / "ledger-check.jsonl"
        path.write_bytes(data)
        try:
            ledgerfile.verify(path)
            return ledgerfile.read(path), []
        except KikiError as exc:
            return [], [f"{where}: ledger does not verify: {exc}"]

    def milestones(self) -> None:
        """How far this interleaving got: the suite is only as good as the states it reaches."""
        for pr in GITHUB.pulls(GH_REPO):
            kind = "purge PR" if pr.pull.head.startswith("kiki/removal/") else pr.pull.head.split("/")[1] + " PR"
            self.reached |= {kind} | ({f"{kind} merged"} if pr.pull.merged_at else set())
        hub = HUB.repos.get(("model", HUB_REPO))
        if hub and hub.tags:
            self.reached.add("published")

    def check(self) -> list[str]:
        problems, self.problems = self.problems, []
        decisions: dict[str, set[str]] = {}
        for where, files in self.snapshots().items():
            entries, bad = self.entries(where, files.get(LEDGER, b""))
            problems += bad
            problems += self.check_claims(where, files, entries)
            problems += self.check_removals(where, files, entries)
            problems += self.check_once(where, entries)
            for e in entries:
                if e.event in ("approved", "rejected"):
                    decisions.setdefault(e.request.id, set()).add(e.event)
        problems += [f"{rid}: both approved and rejected ({', '.join(sorted(d))} across the default branch and "
                     "open PRs)" for rid, d in sorted(decisions.items()) if len(d) > 1]
        problems += self.check_comments()
        problems += self.check_main_ledger()
        self.milestones()
        return problems

    def check_claims(self, where: str, files: dict[str, bytes], entries: list[ledger.Entry]) -> list[str]:
        """Invariant 1: every removal claimed for a version is true of the weights users get for it."""
        purged = {e.request.id: {tuple(t) for t in e.records or ()} for e in entries if e.event == "purged"}
        claims = [(e.request.id, e.version, e) for e in entries if e.event == "released" and e.adapter == ADAPTER]
        card = json.loads(files[CARD]) if CARD in files else {}
        if (seen := ledger_head(card)) is not None:  # the card counts every removal purged in the ledger it saw
            claims += [(e.request.id, card["header"]["version"], None) for e in entries[:seen]
                       if e.event == "purged" and ADAPTER in (e.adapters or ())]
        problems = []
        if claims:
            self.reached.add(f"removal claimed {'on main' if where == 'main' else 'in a PR'}")
        for rid, version, entry in claims:
            what = f"{where}: {rid} claimed honoured by {ADAPTER} v{version}"
            if rid not in purged:
                problems.append(f"{what} without a `purged` entry")
                continue
            weights = self.weights(version)
            if weights is None:
                problems.append(f"{what} but no adapter of v{version} is staged or published")
                continue
            trained = self.truth.get(hashlib.sha256(weights).hexdigest())
            if not trained:
                problems.append(f"{what} but its weights come from no training run seen")
                continue
            hashes = {h for _, _, h in purged[rid]}
            clean = {ts.sha256 for ts in trained if not hashes & ts.hashes}
            if not clean:
                kept = sorted(t for t in purged[rid] if any(t[2] in ts.hashes for ts in trained))
                problems.append(f"{what} but its weights were trained on {len(kept)} of the purged records "
                                f"({', '.join(f'{s}#{i}' for s, i, _ in kept)})")
            elif entry is not None and (named := getattr(entry, "train_sha256", None)) not in clean:
                problems.append(f"{what}: `released` names train_sha256={named}, not a set these weights were "
                                f"trained on without them ({', '.join(sorted(clean))})")
        return problems

    def check_removals(self, where: str, files: dict[str, bytes], entries: list[ledger.Entry]) -> list[str]:
        """Invariant 2: what is gone was purged on record, and only what an approval matched was purged."""
        problems = []
        purged: set[Triple] = set()
        decided = {(e.request.id, e.event) for e in entries if e.event in ("approved", "rejected")}
        for e in (e for e in entries if e.event == "purged"):
            triples = {tuple(t) for t in e.records or ()}
            purged |= triples
            k = self.request_of.get(e.request.id)
            allowed = self.matches[k] if k is not None else frozenset()
            if (e.request.id, "approved") not in decided or (e.request.id, "rejected") in decided:
                problems.append(f"{where}: {e.request.id} purged without standing approval")
            if extra := sorted(triples - allowed):
                problems.append(f"{where}: {e.request.id} purged {len(extra)} records its selectors do not match "
                                f"({', '.join(f'{s}#{i}' for s, i, _ in extra)})")
        gone = self.initial - data_triples(files)
        if unrecorded := sorted(gone - purged):
            problems.append(f"{where}: {len(unrecorded)} records removed with no `purged` entry "
                            f"({', '.join(f'{s}#{i}' for s, i, _ in unrecorded)})")
        return problems

    @staticmethod
    def check_once(where: str, entries: list[ledger.Entry]) -> list[str]:
        """Invariant 3: each step of a request is recorded once."""
        def step(e: ledger.Entry) -> tuple:
            if e.event == "released":
                return (e.request.id, e.event, e.adapter, e.version)
            if e.event == "deadline_missed":
                return (e.request.id, e.event, e.adapter)
            return (e.request.id, e.event)

        return [f"{where}: {' '.join(map(str, s))} recorded {n} times"
                for s, n in sorted(Counter(map(step, entries)).items()) if n > 1]

    def check_comments(self) -> list[str]:
        """Invariant 3: one bot comment per marker kind on each issue and PR."""
        problems = []
        for number, issue in sorted(GITHUB.repo(GH_REPO).issues.items()):
            kinds = Counter(c.body.split("\n", 1)[0] for c in issue.comments
                            if c.user == GITHUB.bot_login and c.body.startswith("<!-- kiki-bot:"))
            problems += [f"#{number}: {n} bot comments {kind}" for kind, n in sorted(kinds.items()) if n > 1]
        return problems

    def check_main_ledger(self) -> list[str]:
        """Invariant 4: `ledger verify` passes on the default branch, and its ledger only grows. Only merges move
        the default branch, so the command runs when its head moved."""
        problems = []
        repo = GITHUB.repo(GH_REPO)
        if self.main_head != (head := repo.branches[repo.default_branch]):
            self.main_head = head
            self.sync()
            code, err = self.cli("ledger", "verify", "-C", self.checkout)
            if code != 0:
                problems.append(f"main: `ledger verify` exits {code}: {err.strip()[:300]}")
        now = GITHUB.files(GH_REPO).get(LEDGER, b"")
        if not now.startswith(self.main_ledger):
            problems.append(f"main: the ledger shrank or was rewritten ({len(self.main_ledger)} -> {len(now)} bytes)")
        self.main_ledger = now
        return problems


class Scenarios(RuleBasedStateMachine):
    """The interleavings. `base` and `runs` are set by whoever runs the machine (the test or the bench)."""

    base: Path
    runs: Path
    stats = Stats()
    strict = True  # raise on the first violation (the test); the bench counts them instead
    only: str | None = None  # with strict: raise only on violations matching this regex (to shrink one of them)

    def __init__(self) -> None:
        super().__init__()
        self.world: World | None = None
        self.triaged: set[int] = set()
        self.kinds: set[str] = set()
        self.stats.interleavings += 1

    @initialize(requests=st.lists(st.lists(st.integers(0, len(selector_pool(scenario_records())) - 1),
                                           min_size=1, max_size=2, unique=True), min_size=2, max_size=3),
                published=st.booleans())
    def open_requests(self, requests: list[list[int]], published: bool) -> None:
        """Two or three requests are opened (not yet triaged), on a repository whose v0.1.0 may be out already."""
        self.world = World(self.base, self.runs, requests)
        if published:
            self.world.release("0.1.0")
            self.world.publish(self.world.merge(0, "squash"))
        self.started = time.perf_counter()

    def step(self, rule: str, outcome: object) -> None:
        self.stats.seconds[rule] += time.perf_counter() - self.started
        self.stats.steps += 1
        self.stats.rules[rule] += 1
        self.stats.outcomes[f"{rule}:{outcome}"] += 1

    # One rule drawing a weighted action, rather than a rule per action: hypothesis's swarm testing would
    # switch off half the rules in each example, and the deep paths (triage, approve, merge, release, merge,
    # publish) need most of them in one example. An action is listed once per unit of weight; the draw leans
    # towards the first possible one, so that is a cheap one.
    ACTIONS: ClassVar[list[str]] = [
        "merge", "merge", "merge", "triage", "triage", "approve", "approve", "release", "release", "release",
        "reject", "decide without permission", "redeliver", "redeliver", "publish", "dispatched release",
        "deadline run"]

    def possible(self, action: str) -> bool:
        w = self.world
        return {"triage": len(self.triaged) < len(w.issues), "approve": bool(self.triaged), "reject": bool(self.triaged),
                "decide without permission": bool(self.triaged), "redeliver": bool(w.delivered),
                "merge": bool(w.open_pulls()), "publish": bool(w.merged_reviews()),
                "dispatched release": bool(w.queued_runs()), "deadline run": bool(w.purge_prs())}.get(action, True)

    @rule(data=st.data())
    def act(self, data: st.DataObject) -> None:
        possible = [a for a in self.ACTIONS if self.possible(a)]
        # an index over a wide range, not sampled_from: that leans heavily on the first elements
        action = possible[data.draw(st.integers(0, 2**16 - 1), label="action") % len(possible)]
        w, draw = self.world, data.draw
        if action == "triage":  # of a request not triaged yet (triage again is a redelivery)
            k = draw(st.sampled_from(sorted(set(range(len(w.issues))) - self.triaged)), label="request")
            self.triaged.add(k)
            outcome = w.triage(k, draw(st.sampled_from(["opened", "labeled"]), label="event"))
        elif action in ("approve", "reject"):  # by a user with write, maintain or admin
            k = draw(st.sampled_from(sorted(self.triaged)), label="request")
            outcome = w.decide(k, draw(st.sampled_from(MAINTAINERS), label="by"), action)
        elif action == "decide without permission":  # the requester (self-approval), read, triage, no access
            k = draw(st.sampled_from(sorted(self.triaged)), label="request")
            login = draw(st.sampled_from([REQUESTER, *OTHERS]), label="by")
            outcome = w.decide(k, login, draw(st.sampled_from(["approve", "reject"]), label="verb"))
        elif action == "redeliver":
            outcome = w.redeliver(draw(st.integers(0, len(w.delivered) - 1), label="event"))
        elif action == "merge":  # any open PR, in any order; a review PR's publish run may follow at once
            pr = w.merge(draw(st.integers(0, len(w.open_pulls()) - 1), label="PR"),
                         draw(st.sampled_from(["merge", "squash"]), label="method"))
            outcome = pr is not None
            if outcome and pr.pull.head.startswith("kiki/release/") and draw(st.booleans(), label="publish now"):
                self.step(action, outcome)
                action, outcome = "publish", w.publish(pr)
        elif action == "release":  # a tag pushed, or force-moved: a re-tag of the same version
            outcome = w.release(w.version(draw(st.sampled_from(["next", "again", "older"]), label="version")))
        elif action == "publish":  # a merged review PR's publish run, late or again
            outcome = w.publish(draw(st.sampled_from(w.merged_reviews()), label="PR"))
        elif action == "dispatched release":
            outcome = w.run_dispatched(draw(st.integers(0, len(w.queued_runs()) - 1), label="run"))
        else:  # the cron, some days later; it only has work once something was purged
            outcome = w.deadline_run(draw(st.integers(0, 12), label="days later"))
        self.step(action, outcome)

    def violation(self, problem: str) -> None:
        report = problem + "\n\nsteps:\n  " + "\n  ".join(self.world.log)
        if (kind := self.stats.kind(problem)) not in self.kinds:
            self.kinds.add(kind)
            self.stats.violations[kind] += 1
            self.stats.first.setdefault(kind, report)
        if self.strict and (self.only is None or re.search(self.only, problem)):
            raise AssertionError(report)

    @invariant()
    def section_7(self) -> None:
        if self.world is None:
            return
        start = time.perf_counter()
        for problem in self.world.check():
            self.violation(problem)
        self.started = time.perf_counter()
        self.stats.seconds["(checks)"] += self.started - start

    def teardown(self) -> None:
        if self.world is not None:
            self.stats.reached.update(self.world.reached)
            self.world.close()


def base_model(where: Path) -> Path:
    from kiki_bot.demo.tinymodel import make_tiny_base

    return make_tiny_base(where, [json.dumps(r, sort_keys=True) for r in scenario_records()], seed=0)


CI = settings(max_examples=200, stateful_step_count=12, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny base model and the runs directory every interleaving shares (a run is reused by identity)."""
    return base_model(tmp_path_factory.mktemp("base")), tmp_path_factory.mktemp("runs")


@pytest.fixture
def runner(gh, hub, monkeypatch, shared) -> tuple[Path, Path]:
    """The Actions runner's environment, against the emulators."""
    monkeypatch.setenv("KIKI_GITHUB_THROTTLE", "0")
    monkeypatch.setenv("GITHUB_REPOSITORY", GH_REPO)
    monkeypatch.setenv("KIKI_RUNS_DIR", str(shared[1]))
    return shared


def test_section_7_holds_under_every_interleaving(runner):
    from hypothesis.stateful import run_state_machine_as_test

    Scenarios.base, Scenarios.runs = runner
    Scenarios.stats = Stats()
    run_state_machine_as_test(Scenarios, settings=CI)
    stats = Scenarios.stats
    print(json.dumps({"interleavings": stats.interleavings, "steps": stats.steps, "reached": stats.reached}))
    assert stats.interleavings >= 200


@pytest.fixture
def world(runner) -> Iterator[World]:
    world = World(*runner, [[0], [1]])
    yield world
    world.close()


def test_a_rerun_of_a_published_release_is_refused(world):
    """The release run of a tag, re-run after its version was published, checks out the tag's commit, from
    before the card was merged: it must be refused (it crashed staging an empty Hub commit)."""
    assert world.release("0.1.0") == 0
    assert world.publish(world.merge(0, "merge")) == 0
    assert world.redeliver(0) == 2 and "is already published" in world.log[-1]
    assert world.check() == []


def test_a_release_run_after_a_purge_merged_keeps_the_ledger(world):
    """A release run for a tag made before another purge merged (a late or repeated run) built its review PR on
    the new head with the tag's ledger: merging it dropped that purge's entries while its records stayed gone."""
    for k in (0, 1):
        assert world.triage(k, "opened") == 0 and world.decide(k, "writer", "approve") == 0
        if k == 0:
            assert world.merge(0, "merge")
    assert world.release("0.1.0") == 0 and world.check() == []
    assert world.merge(0, "merge").pull.head == f"kiki/removal/R-{world.issues[1]}"
    assert world.redeliver(len(world.delivered) - 1) == 2
    assert "has entries that tiny-lora/v0.1.0 lacks" in world.log[-1]
    assert world.check() == []
    assert world.merge(0, "merge") is None  # the first run's review PR conflicts now: GitHub refuses it
    assert world.check() == []
