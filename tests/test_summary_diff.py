"""`carddiff.summarise`: what the PST says differently, exactly the fields that changed, in section order."""

from __future__ import annotations

import datetime as dt

import pytest
from factory import adapter, make_project, record, source, write_jsonl

from kiki_bot.core.cardmodel import Card
from kiki_bot.core.carddiff import NONE, Change, facts, summarise
from kiki_bot.repo import cards, manifests
from kiki_bot.repo.project import Project

DAY = dt.date(2026, 5, 6)


def card_of(root) -> Card:
    project = Project(root)
    return cards.render_adapter(project, project.adapter("tiny-lora"), "0.1.0", DAY, entries=[]).card


@pytest.fixture
def base(tmp_path) -> Card:
    return card_of(make_project(tmp_path / "base"))


def test_the_same_card_says_nothing_different(base):
    assert summarise(base, base) == []


def test_a_data_change_lists_exactly_the_fields_that_changed(tmp_path, base):
    root = make_project(tmp_path / "pr")
    extra = [
        record(
            "acme-fw",
            20 + i,
            f"int g{i}(void) {{ return {i}; }}",
            license="Apache-2.0",
            access_date="2025-11-15",
            origin=f"https://gitlab.com/acme/fw/-/blob/main/g{i}.c",
        )
        for i in range(5)
    ]
    write_jsonl(root / "data" / "acme-fw" / "part-001.jsonl", extra)
    manifests.refresh(root / "data" / "acme-fw")

    assert summarise(base, card_of(root)) == [
        Change("1.3 Size", "Latest collection", "10/2025", "11/2025"),
        Change("2.3 Crawled data", "Crawl period", "From 10/2025 to 10/2025", "From 10/2025 to 11/2025"),
        Change("2.3 Crawled data", "Domains crawled", "1", "2 (+1)"),
        Change("A. Sources", "acme-fw records", "20", "25 (+5)"),
        Change("A. Sources", "acme-fw tokens", "210", "260 (+50)"),
        Change("A. Sources", "Licences", NONE, "added: Apache-2.0"),
    ]


def test_sources_added_and_removed_keep_the_section_order(tmp_path):
    def two_sources(root, ids):
        return card_of(
            make_project(root, sources={s: source(name=s) for s in ids}, adapters={"tiny-lora": adapter(ids)})
        )

    changes = summarise(
        two_sources(tmp_path / "a", ["acme-fw", "old-src"]),
        two_sources(tmp_path / "b", ["acme-fw", "new-src"]),
    )
    assert [(c.section, c.field, c.before, c.now) for c in changes] == [
        ("A. Sources", "Sources", "removed: old-src", "added: new-src"),
        ("A. Sources", "new-src records", NONE, "20"),
        ("A. Sources", "new-src tokens", NONE, "210"),
        ("A. Sources", "old-src records", "20", NONE),
        ("A. Sources", "old-src tokens", "210", NONE),
    ]


def test_provider_placement_training_removals_and_domains(base):
    s1, s3 = base.section1, base.section3
    new = base.model_copy(
        update={
            "section1": s1.model_copy(
                update={"provider_contact": "privacy@test-lab.eu", "placement_date": dt.date(2026, 6, 1)}
            ),
            "section3": s3.model_copy(
                update={"removals": s3.removals.model_copy(update={"received": 2, "records_removed": 3})}
            ),
            "section23": base.section23.model_copy(update={"domains": [*base.section23.domains[::-1]]}),
            "training": {**base.training, "rank": "8"},
        }
    )
    assert [(c.section, c.field, c.before, c.now) for c in summarise(base, new)] == [
        ("1.1 Provider", "Contact", "https://github.com/test-lab/models/issues", "privacy@test-lab.eu"),
        ("1.2 Model", "Placement date", "2026-05-06", "2026-06-01"),
        ("3.1 Removals", "Requests received", "0", "2 (+2)"),
        ("3.1 Removals", "Records removed", "0", "3 (+3)"),
        ("B. Training", "rank", "4", "8"),
    ]


def test_a_reordered_list_shows_both_orders(base):
    domains = base.section23.domains
    two = [domains[0], domains[0].model_copy(update={"domain": "gitlab.com"})]
    old = base.model_copy(update={"section23": base.section23.model_copy(update={"domains": two})})
    new = base.model_copy(update={"section23": base.section23.model_copy(update={"domains": two[::-1]})})
    assert summarise(old, new) == [
        Change("2.3 Crawled data", "Top domains", "github.com, gitlab.com", "gitlab.com, github.com")
    ]


def test_a_new_adapter_lists_every_fact_as_new(base):
    changes = summarise(None, base)
    assert {c.before for c in changes} == {NONE}
    shown = {(c.section, c.field) for c in changes}
    assert shown == {key for key, value in facts(base).items() if value != []}  # empty lists say nothing
    assert Change("A. Sources", "acme-fw records", NONE, "20") in changes
    assert [c.section for c in changes] == sorted(
        (c.section for c in changes),
        key=[
            "Header",
            "1.1 Provider",
            "1.2 Model",
            "1.3 Size",
            "2.3 Crawled data",
            "3.1 Removals",
            "A. Sources",
            "B. Training",
        ].index,
    )
