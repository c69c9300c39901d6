"""One eligibility rule: the training set, the card's figures (streamed or through the index) and the index
say the same of every record — left out as purged or reappeared, refused for its licence or a reservation
of rights — in the same words."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from factory import adapter, make_project, record, source, write_jsonl

from kiki_bot.core.eligibility import Rule, Verdict
from kiki_bot.core.errors import BadInput
from kiki_bot.repo import figures, ledgerfile, manifests, purge, trainset
from kiki_bot.repo.project import Project

AT = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
RESERVED_FROM = dt.date(2025, 10, 1)


class Reserved:
    """Opt-out evidence as the opt-out checks give it: `blog.example.org` reserved its rights from
    RESERVED_FROM on; nothing else is reserved."""

    def hosts(self, source: str) -> frozenset[str]:
        return frozenset({"blog.example.org"})

    def reserved(self, source: str, host: str, day: dt.date) -> str | None:
        if day < RESERVED_FROM:
            return None
        return f"{host} reserved its rights (robots.txt disallows test-crawler, checked 2025-10-01)"


def _project(tmp_path: Path, extra: list[dict]) -> Project:
    recs = [record("acme-fw", i, f"int f{i}(void) {{ return {i}; }}") for i in range(20)] + extra
    training = {"iters": 10, "batch_size": 2, "learning_rate": 1e-4, "seed": 0, "valid_fraction": 0.3}
    root = make_project(tmp_path / "repo", {"acme-fw": source()}, {"acme-fw": []},
                        adapters={"tiny-lora": adapter(["acme-fw"], training=training)})
    write_jsonl(root / "data" / "acme-fw" / "part-000.jsonl", recs[:12])
    write_jsonl(root / "data" / "acme-fw" / "part-001.jsonl", recs[12:])
    manifests.refresh(root / "data" / "acme-fw")
    return Project(root)


def _both_ways(project: Project, rule: Rule, streaming) -> figures.DataFigures:
    adapter = project.adapter("tiny-lora")
    got = figures.compute(project, adapter, rule)
    with streaming():
        want = figures.compute(project, adapter, rule)
    assert got == want
    return got


def _assembled(project: Project, rule: Rule, tmp_path: Path) -> trainset.TrainingSet | BadInput:
    try:
        return trainset.assemble(project, project.adapter("tiny-lora"), tmp_path / "ts", rule)
    except BadInput as exc:
        return exc


def test_a_removed_record_back_in_the_data_is_left_out_and_named_alike(tmp_path: Path, streaming) -> None:
    twin = record("acme-fw", 4, "int f4(void) { return 4; }", origin="https://mirror.example/f4.c",
                  repo=None, path=None)
    twin["_provenance"]["record_idx"] = 30  # a later scrape brings the content back under a new key
    project = _project(tmp_path, [twin])
    purge.purge(project, "R-1", 1, {("acme-fw", 4)}, set(), ["tiny-lora"], "m", AT)
    rule = trainset.rule(project, ledgerfile.read(project.ledger_path))
    content = _hash_of(project, 30)
    assert rule.removal("acme-fw", 30, content) is Verdict.REAPPEARED
    ts = _assembled(project, rule, tmp_path)
    figs = _both_ways(project, rule, streaming)
    want = [f"{project.data_dir / 'acme-fw' / 'part-001.jsonl'}:9 (record acme-fw#30 has the content "
            f"{content[:12]}… of a removed record)"]
    assert ts.reappeared == figs.reappeared == want
    assert ts.sources["acme-fw"].excluded_reappeared == 1 and ts.sources["acme-fw"].used == 19
    assert figs.sources["acme-fw"].records == 19


def _hash_of(project: Project, idx: int) -> str:
    from kiki_bot.repo.records import iter_source

    return next(r.content_hash for r in iter_source(project.data_dir, "acme-fw") if r.provenance.record_idx == idx)


@pytest.mark.parametrize("why", ["licence", "notice", "reserved"])
def test_a_refused_record_stops_the_build_and_the_card_in_the_same_words(tmp_path: Path, streaming, why) -> None:
    blog = dict(origin="https://blog.example.org/posts/fw.html", repo=None, path=None)
    extra = [
        record("acme-fw", 40, "int early;", **blog, access_date="2025-09-30"),  # before the reservation
        record("acme-fw", 41, "int other;", origin="https://other.example.org/x", repo=None, path=None),
        record("acme-fw", 42, "int late;", **blog, access_date="2025-10-02"),
        record("acme-fw", 43, "int gpl;", license="GPL-3.0-only"),
        record("acme-fw", 44, "// SPDX-License-Identifier: GPL-2.0-only\nint gpl;"),  # declared MIT
    ]
    project = _project(tmp_path, {"licence": extra[:4], "notice": [*extra[:3], extra[4]], "reserved": extra[:3]}[why])
    rule = Rule.of([], project.config.policy.allowed_licenses, Reserved() if why == "reserved" else None)
    err = _assembled(project, rule, tmp_path)
    figs = _both_ways(project, rule, streaming)
    assert isinstance(err, BadInput)
    line = 11 if why == "reserved" else 12
    assert str(err).startswith(f"{project.data_dir / 'acme-fw' / 'part-001.jsonl'}:{line}: ")
    assert (figs.reserved, figs.refused) == (([str(err)], []) if why == "reserved" else ([], [str(err)]))
    if why == "reserved":
        assert "blog.example.org" in str(err) and "robots.txt disallows test-crawler" in str(err)
    elif why == "notice":
        assert ("the content carries an `SPDX-License-Identifier: GPL-2.0-only` line, which its declared licence "
                "MIT does not cover") in str(err)
    else:
        assert "'GPL-3.0-only' is not satisfiable by the allow-list" in str(err)


def test_the_rule_asks_in_order_and_the_index_agrees_with_each_verdict(tmp_path: Path, streaming) -> None:
    """A record purged and outside the licence policy is purged; a reserved record outside the policy is
    refused for its licence: the index asks its rows in the same order as the rule asks a record."""
    blog = dict(origin="https://blog.example.org/a", repo=None, path=None, access_date="2025-11-01")
    project = _project(tmp_path, [
        record("acme-fw", 50, "int a;", license="GPL-3.0-only", **blog),
        record("acme-fw", 51, "int b;", license="GPL-3.0-only"),
    ])
    purge.purge(project, "R-1", 1, {("acme-fw", 3)}, set(), ["tiny-lora"], "m", AT)
    write_jsonl(project.data_dir / "acme-fw" / "part-002.jsonl",
                [record("acme-fw", 3, "int back;", license="GPL-3.0-only")])
    manifests.refresh(project.data_dir / "acme-fw")
    rule = Rule.of(ledgerfile.read(project.ledger_path), project.config.policy.allowed_licenses, Reserved())
    assert rule.verdict("acme-fw", 3, "0" * 64, "GPL-3.0-only", None, dt.date(2025, 1, 1)) is Verdict.PURGED
    assert rule.verdict("acme-fw", 50, "0" * 64, "GPL-3.0-only", blog["origin"], dt.date(2025, 11, 1)) \
        is Verdict.LICENCE
    assert rule.verdict("acme-fw", 52, "0" * 64, "MIT", blog["origin"], dt.date(2025, 11, 1)) is Verdict.RESERVED
    figs = _both_ways(project, rule, streaming)
    assert [r.split(": ", 1)[0].rsplit("/", 1)[-1] for r in figs.refused] == ["part-001.jsonl:9", "part-001.jsonl:10"]
    assert all("not satisfiable by the allow-list" in r for r in figs.refused)
    assert figs.reappeared == [f"{project.data_dir / 'acme-fw' / 'part-002.jsonl'}:1 (record acme-fw#3 was "
                               "purged (removal ledger))"]
