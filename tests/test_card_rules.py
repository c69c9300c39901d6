"""Every rule of pst-template.md, each with a test that fails if the rule breaks."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from factory import KIKI, make_project, mark_published, record, source

from kiki_bot.core import pst_rules
from kiki_bot.core.cardbuilder import domain_cut, large_datasets, size_bin
from kiki_bot.repo import cards
from kiki_bot.repo.project import Modality, Project, Source

DAY = dt.date(2026, 5, 6)


def readme_of(root, version="0.1.0", day=DAY) -> str:
    proj = Project(root)
    adapter = next(iter(proj.adapters.values()))
    rendered = cards.render_adapter(proj, adapter, version, day)
    cards.write(proj, adapter, rendered)
    return rendered.files["README.md"]


def value_of(readme: str, label: str) -> str:
    line = next(line for line in readme.splitlines() if line.startswith(f"**{label}**"))
    return line.split("**", 2)[2].strip()


def test_rendered_card_passes_every_rule(project):
    readme = readme_of(project)
    assert pst_rules.check_body(readme) == []


def test_labels_verbatim_and_in_order(project):
    readme = readme_of(project)
    positions = []
    start = 0
    for label, _ in pst_rules.LABELS:
        idx = readme.index(label, start)
        positions.append(idx)
        start = idx + len(label)
    assert positions == sorted(positions)
    swapped = readme.replace("**Purposes of the crawler(s):**", "**Purpose of the crawler:**")
    assert any("Purposes of the crawler(s):" in p for p in pst_rules.check_body(swapped))


def test_reordered_labels_fail(project):
    readme = readme_of(project)
    a, b = "### 2.4 User data", "### 2.5 Synthetic data"
    broken = readme.replace(a, "@@").replace(b, a).replace("@@", b)
    assert pst_rules.check_body(broken)


@pytest.mark.parametrize("label,boxed", pst_rules.LABELS)
def test_yes_no_exactly_where_the_template_has_one(project, label, boxed):
    readme = readme_of(project)
    if not label.endswith(("?", ":")):
        return
    value = value_of(readme, label)
    has_box = value.startswith(pst_rules.YES_NO)
    assert has_box == boxed, label
    if boxed:
        assert value.count("☒") == 1


def test_yes_no_removed_or_added_is_caught(project):
    readme = readme_of(project)
    q = "Were crawlers used by the provider or on behalf of?"
    assert pst_rules.check_body(readme.replace(f"**{q}** ☒ Yes ☐ No", f"**{q}**"))
    extra = readme.replace("**General description of measures taken:** ", "**General description of measures taken:** ☒ Yes ☐ No ")
    assert any("does not have" in p for p in pst_rules.check_body(extra))


def test_section_221_has_no_list_and_32_has_no_yes_no(project):
    readme = readme_of(project)
    s221 = readme[readme.index("#### 2.2.1"):readme.index("#### 2.2.2")]
    assert "list" not in s221.lower().replace("specify", "")
    assert "Additional comments" not in s221
    s32 = readme[readme.index("### 3.2"):readme.index("### 3.3")]
    assert "☒" not in s32 and "☐" not in s32


def test_date_formats(project):
    readme = readme_of(project)
    assert value_of(readme, "Last update:") == "06/05/26 (6 May 2026)"
    assert value_of(readme, "Latest date of data acquisition/collection for model training:").startswith("10/2025.")
    assert re.fullmatch(r"From \d\d/\d{4} to \d\d/\d{4}", value_of(readme, "Period of data collection:"))
    bad = readme.replace("**Last update:** 06/05/26 (6 May 2026)", "**Last update:** 2026-05-06")
    assert any("DD/MM/YY" in p for p in pst_rules.check_body(bad))


def test_crawl_period_and_latest_date_come_from_record_access_dates(tmp_path):
    recs = [record("acme-fw", i, f"x{i}", access_date=d) for i, d in
            enumerate(["2025-03-31", "2025-07-01", "2025-11-02"])]
    root = make_project(tmp_path / "r", records={"acme-fw": recs})
    readme = readme_of(root)
    assert value_of(readme, "Period of data collection:") == "From 03/2025 to 11/2025"
    assert value_of(readme, "Latest date of data acquisition/collection for model training:").startswith("11/2025")


@pytest.mark.parametrize("count,sme,expected", [
    (1, False, 1), (10, False, 1), (11, False, 2), (95, False, 10), (1000, False, 100),
    (1, True, 1), (20, True, 1), (21, True, 2), (19999, True, 1000), (20001, True, 1000), (40000, True, 1000),
    (0, True, 0),
])
def test_domain_cut_rounds_up_and_caps_for_smes(count, sme, expected):
    n, rule = domain_cut(count, sme)
    assert n == expected
    assert count == 0 or "rounded up" in rule


def test_domains_ranked_by_content_size_and_cut(tmp_path):
    hosts = [f"site{i}.org" for i in range(25)]
    recs = [record("acme-fw", i, "x" * (10 + i), origin=f"https://{h}/p", repo=None, path=None)
            for i, h in enumerate(hosts)]
    kiki = {**KIKI, "provider": {**KIKI["provider"], "sme": False}}
    root = make_project(tmp_path / "r", records={"acme-fw": recs}, kiki=kiki)
    readme = readme_of(root)
    rows = re.findall(r"^\| (\d+) \| ([\w.]+) \|", readme, re.MULTILINE)
    assert [d for _, d in rows] == ["site24.org", "site23.org", "site22.org"]  # ceil(2.5)


def test_registrable_domain_groups_subdomains(tmp_path):
    recs = [record("acme-fw", i, "x", origin=f"https://{h}/p", repo=None, path=None)
            for i, h in enumerate(["a.example.co.uk", "b.example.co.uk", "docs.github.com"])]
    root = make_project(tmp_path / "r", records={"acme-fw": recs})
    readme = readme_of(root)
    assert "| 1 | example.co.uk |" in readme


def _src(sid: str) -> Source:
    return Source.model_validate({**source("2.1"), "id": sid, "name": sid})


def test_large_dataset_is_more_than_three_percent_of_public_data_in_its_modality():
    big, edge, small = _src("big"), _src("edge"), _src("small")
    got = large_datasets([(big, 9700), (edge, 300), (small, 0)])
    assert [d.name for d in got] == ["big"]  # exactly 3 % is not more than 3 %
    got = large_datasets([(big, 9699), (edge, 301)])
    assert [d.name for d in got] == ["big", "edge"]


def test_large_dataset_share_is_per_modality():
    text = _src("text")
    image = Source.model_validate({**source("2.1"), "id": "img", "name": "img", "modality": "image"})
    got = large_datasets([(text, 10), (image, 1)])
    assert {d.name for d in got} == {"text", "img"}


@pytest.mark.parametrize("modality,amount,expected", [
    (Modality.TEXT, 999_999_999, "Less than 1 billion tokens"),
    (Modality.TEXT, 1_000_000_000, "1 billion to 10 trillion tokens"),
    (Modality.TEXT, 10**13, "More than 10 trillion tokens"),
    (Modality.IMAGE, 10**6, "1 million to 1 billion images"),
    (Modality.AUDIO, 9_999, "Less than 10 000 hours"),
])
def test_size_bins_are_lower_inclusive(modality, amount, expected):
    assert size_bin(modality, amount) == expected


def test_representative_needed_outside_the_eu(tmp_path, cli):
    kiki = {**KIKI, "provider": {**KIKI["provider"], "established_in_eu": False, "country": "US"}}
    root = make_project(tmp_path / "r", kiki=kiki)
    res = cli("card", "render", "-C", root, "--version", "0.1.0", "--date", "2026-05-06")
    assert res.code == 2 and "authorised_representative" in res.err
    kiki["provider"]["authorised_representative"] = "EU Rep GmbH, Berlin, rep@eu-rep.example"
    root = make_project(tmp_path / "r2", kiki=kiki)
    readme = readme_of(root)
    assert value_of(readme, "Authorised representative name and contact details:").startswith("EU Rep GmbH")


def test_in_eu_representative_not_applicable(project):
    readme = readme_of(project)
    assert value_of(readme, "Authorised representative name and contact details:").startswith("Not applicable")


def test_versions_link_every_previous_version_and_changelog_grows(project, cli):
    readme_of(project, "0.1.0", DAY)
    mark_published(project, "tiny-lora")
    path = project / "data" / "acme-fw" / "part-000.jsonl"
    path.write_text(path.read_text() + '{"text": "int g(void);", "_provenance": {"source": "acme-fw", '
                    '"license": "MIT", "record_idx": 99, "access_date": "2025-10-03"}}\n')
    assert cli("data", "manifest", "-C", project).code == 0
    readme_of(project, "0.2.0", dt.date(2026, 6, 1))
    mark_published(project, "tiny-lora", "2026-06-02T08:00:00Z")
    readme = readme_of(project, "0.3.0", dt.date(2026, 7, 1))
    version = value_of(readme, "Version of the Summary:")
    assert version.startswith("0.3.0")
    assert "[v0.1.0 of 2026-05-06](https://huggingface.co/test-lab/tiny-lora/blob/v0.1.0/README.md)" in version
    assert "[v0.2.0 of 2026-06-01](https://huggingface.co/test-lab/tiny-lora/blob/v0.2.0/README.md)" in version
    changelog = (project / "cards" / "tiny-lora" / "CHANGELOG.md").read_text()
    assert changelog.index("## [0.3.0]") < changelog.index("## [0.2.0]") < changelog.index("## [0.1.0]")
    v2 = changelog[changelog.index("## [0.2.0]"):changelog.index("## [0.1.0]")]
    assert "Source acme-fw: 1 records added (20 → 21)." in v2
    assert "the current version is always at" in readme


def test_hub_metadata_for_an_mlx_adapter(project):
    from huggingface_hub import ModelCard

    meta = ModelCard(readme_of(project)).data.to_dict()
    assert meta["base_model"] == "test-lab/tiny-base"
    assert meta["base_model_relation"] == "adapter"
    assert meta["library_name"] == "mlx"
    assert meta["license"] == "apache-2.0"
    assert "datasets" not in meta  # only Hub dataset ids are allowed there; this project has none
    assert pst_rules.check_metadata(meta) == []
    assert pst_rules.check_metadata({**meta, "license": "Apache 2"})
    assert pst_rules.check_metadata({**meta, "library_name": "peft"}) == []  # the PEFT form at the root (issue 17)
    assert pst_rules.check_metadata({**meta, "library_name": "transformers"})


def test_usage_snippet_loads_base_with_adapter_path(project):
    readme = readme_of(project)
    assert 'snapshot_download("test-lab/tiny-lora")' in readme
    assert 'load("test-lab/tiny-base", adapter_path=adapter_dir)' in readme
    assert "scale` = alpha / rank = 8 / 4 = 2" in readme and "lora_alpha=8" in readme
