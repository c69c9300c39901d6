"""Issue 15, two answers that rested on assumptions: the adapter's own licence (declared, never the base
model's by default) and the declared collection period (the records' access dates must fall within it)."""

from __future__ import annotations

import json

from factory import adapter, make_project, record, source, write_jsonl
from test_card_truth import README, RENDER

from kiki_bot import render


# ---------------------------------------------------------------- the adapter's licence is declared
def test_the_hub_licence_is_the_adapters_declared_one_not_the_base_models(tmp_path, cli):
    """An MIT adapter of an Apache-2.0 base: the Hub's `license:` says MIT; a custom licence is `other`
    with its name, as the Hub asks."""
    repo = make_project(tmp_path / "repo", adapters={"tiny-lora": adapter(["acme-fw"], license="MIT")})
    assert cli(*RENDER, repo).code == 0
    meta = render.metadata(repo.joinpath(*README).read_text())
    assert meta["license"] == "mit" and "license_name" not in meta, meta
    custom = make_project(tmp_path / "custom",
                          adapters={"tiny-lora": adapter(["acme-fw"], license="LicenseRef-test-lab-weights")})
    assert cli(*RENDER, custom).code == 0
    meta = render.metadata(custom.joinpath(*README).read_text())
    assert (meta["license"], meta["license_name"]) == ("other", "test-lab-weights"), meta


def test_an_adapter_without_a_declared_licence_is_refused_naming_file_and_key(tmp_path, cli):
    doc = adapter(["acme-fw"])
    del doc["license"]
    repo = make_project(tmp_path / "repo", adapters={"tiny-lora": doc})
    for command in (RENDER, ("card", "check", "-C")):
        res = cli(*command, repo)
        assert res.code == 2, res.err
        assert "adapters/tiny-lora.toml: key `license`" in res.err and "Traceback" not in res.err, res.err
    assert not (repo / "cards").exists()


# ---------------------------------------------------------------- the declared collection period holds
def test_card_check_flags_records_collected_outside_their_sources_declared_period(tmp_path, cli):
    """The source declares 2025-09-01 to 2025-10-31 and the card's descriptions say so: three records
    accessed in December are a problem naming the source, their count and the first one's file:line."""
    recs = [record("acme-fw", i, f"int f{i}(void) {{ return {i}; }}") for i in range(6)]
    for i in (2, 4, 5):
        recs[i]["_provenance"]["access_date"] = "2025-12-01"
    repo = make_project(tmp_path / "repo", records={"acme-fw": recs})
    assert cli(*RENDER, repo).code == 0
    res = cli("card", "check", "-C", repo, "--json")
    assert res.code == 1, res.out + res.err
    found = [p for entry in json.loads(res.out).values() for p in entry["periods"]]
    assert len(found) == 1, found
    assert "source acme-fw: 3 records accessed outside its declared period 2025-09-01 to 2025-10-31" in found[0]
    assert "data/acme-fw/part-000.jsonl:3" in found[0] and "2025-12-01" in found[0], found[0]


def test_records_within_the_declared_period_raise_nothing(tmp_path, cli):
    recs = [record("acme-fw", i, "x", access_date=day) for i, day in enumerate(("2025-09-01", "2025-10-31"))]
    repo = make_project(tmp_path / "repo", records={"acme-fw": recs})
    assert cli(*RENDER, repo).code == 0
    res = cli("card", "check", "-C", repo, "--json")
    assert res.code == 0 and all(not e["periods"] for e in json.loads(res.out).values()), res.out + res.err
