"""The bundled example reproduces the published v0.4.3 facts and its committed card has no drift."""

from __future__ import annotations

import json
import shutil

from conftest import EXAMPLE


def test_example_card_checks_clean_and_rerenders_identically(tmp_path, cli):
    repo = tmp_path / "example"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns(".kiki"))
    assert cli("card", "check", "-C", repo).code == 0
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".kiki" not in p.parts}
    assert cli("card", "render", "-C", repo).code == 0
    after = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".kiki" not in p.parts}
    assert after == before


def test_example_reproduces_the_published_facts():
    card = json.loads((EXAMPLE / "cards" / "devstral-cpp-lora" / "card.json").read_text())
    rows = {r["id"]: r["records"] for r in card["sources"]}
    assert rows["commitpackft-cpp"] == 1500 and sum(rows.values()) - 1500 == 1350
    assert card["section1"]["latest_collection"] == "10/2025"
    assert card["section1"]["placement_date"] == "2026-05-06"
    assert card["hub"]["base_model"] == "mistralai/Devstral-Small-2-24B-Instruct-2512"
    assert card["hub"]["license"] == "apache-2.0"
    assert card["training"]["rank"] == "16" and card["training"]["scale"] == "2"
    assert {k: v for k, v in card["evaluation"].items() if k != "source"} == {
        "benchmark": "HumanEval", "metric": "pass@1", "base": 87.2, "adapter": 85.98, "delta": -1.22}
    assert card["section22"]["licensed_used"] is False and card["section24_26"]["synthetic"] is False
    assert card["section24_26"]["other"] is True  # 611 explanations written by the provider's people
    assert [d["name"] for d in card["section21"]["large"]] == ["CommitPackFT (C/C++ subset)"]
    assert card["section23"]["period"] == "From 09/2025 to 10/2025"
    assert card["published_at"] == "2026-05-06T00:00:00Z"  # v0.4.3 was published on the Hub
