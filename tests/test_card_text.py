"""What the example's card says and how its Markdown reads (issue 15, points 7 and 8), rendered as GitHub does
(tests/rendering.py, cmarkgfm): the rightsholder's route, one changelog entry a line, addresses that copy as
written, code spans for identifiers, the template's dates with the day spelled out, and the reworded sentences."""

from __future__ import annotations

import json
import re

from conftest import EXAMPLE
from factory import make_project, mark_published
from rendering import page, squash, to_html, visible

CARD = EXAMPLE / "cards" / "devstral-cpp-lora"
README = (CARD / "README.md").read_text()
BODY = README.split("\n---\n", 1)[1]
CARD_JSON = json.loads((CARD / "card.json").read_text())


def section(start: str, end: str) -> str:
    return BODY[BODY.index(start):BODY.index(end)]


def hrefs(markdown: str) -> list[str]:
    return [dict(attrs)["href"] for tag, attrs in page(markdown).elements if tag == "a"]


def codes(markdown: str) -> list[str]:
    return re.findall(r"<code>(.*?)</code>", to_html(markdown))


def test_the_rightsholders_route_is_on_the_card():
    s31 = section("### 3.1", "### 3.2")
    assert "https://github.com/Ailiance-fr/devstral-cpp-lora/issues/new?template=removal-request.yml" in hrefs(s31)
    assert "mailto:privacy@lelectronrare.fr" in hrefs(s31)
    shown = codes(s31)
    for kind in ("owner/repo", "domain:example.com", "hf:datasets/&lt;org&gt;/&lt;name&gt;",
                 "record:&lt;source&gt;#&lt;index&gt;", "sha256:&lt;hex&gt;", "/blob/", "/tree/"):
        assert kind in shown, kind
    text = visible(s31)
    assert "Triage answers on the issue at once with how many records each identifier matches" in text
    assert '"am I included?"' in text
    assert "Records without an origin URL (20 of CommitPackFT (C/C++ subset)): their source did not say" in text


def test_each_changelog_entry_is_on_its_own_line(tmp_path, cli):
    root = make_project(tmp_path / "repo")
    for version, day in (("0.1.0", "2026-05-06"), ("0.2.0", "2026-06-01"), ("0.3.0", "2026-07-01")):
        assert cli("card", "render", "-C", root, "--version", version, "--date", day).code == 0
        mark_published(root, "tiny-lora", f"{day}T12:00:00Z")
    for body, versions in (((root / "cards/tiny-lora/README.md").read_text(), ["0.3.0", "0.2.0", "0.1.0"]),
                           (BODY, [e["version"] for e in CARD_JSON["changelog"]])):
        appendix = body[body.index("## Appendix G"):]
        heads = [line for line in appendix.splitlines() if line.startswith("- **")]
        assert [h.split("**")[1] for h in heads] == versions
        assert to_html(appendix).count("<li><strong>") == len(versions)  # one list item per version, no run-on


def test_addresses_and_identifiers_copy_as_written():
    assert "&#8203;" not in README and "\u200b" not in README
    assert not re.search(r"&(quot|gt|#\d+);", BODY.split("## Appendix D")[0]), "entities where text or code serves"
    for escaped in ("base\\_model", "self\\_attn", "\\`", "COPYRIGHT\\_POLICY"):
        assert escaped not in README, escaped
    shown = codes(BODY)
    for ident in ("kiki-scraper/0.4 (+https://github.com/Ailiance-fr/devstral-cpp-lora)", "base_model",
                  "self_attn.q_proj", "target_modules", "pass@1", "c", "c++"):
        assert ident in shown, ident
    assert "https://github.com/Ailiance-fr/devstral-cpp-lora/blob/main/COPYRIGHT_POLICY.md" in hrefs(BODY)


def test_dates_in_the_templates_format_with_the_day_spelled_out_and_iso_elsewhere():
    assert "**Last update:** 01/12/26 (1 December 2026)" in BODY
    assert "**Latest date of data acquisition/collection for model training:** 10/2025." in BODY
    assert "**Period of data collection:** From 09/2025 to 10/2025" in BODY
    assert "[v0.4.3 of 2026-05-06](" in BODY and "- **0.4.3** (2026-05-06)" in BODY
    placement = next(line for line in BODY.splitlines() if line.startswith("**Date of placement"))
    assert re.findall(r"v(\d\.\d\.\d): (\d{4}-\d\d-\d\d)", placement) == [
        ("0.4.4", "2026-12-01"), ("0.4.3", "2026-05-06"), ("0.4.2", "2026-03-30"), ("0.4.1", "2026-02-16"),
        ("0.4.0", "2026-01-12")]


def test_the_description_each_selection_and_the_crawled_repositories_are_rendered():
    text = squash(visible(BODY))
    assert "LoRA adapter for Devstral Small 2 (24B) specialised in C and C++ for embedded systems" in text
    for row in CARD_JSON["sources"]:
        assert squash(visible(row["selection"])) in text, row["id"]
    s23 = section("### 2.3", "### 2.4")
    for repo, records in (("espressif/esp-idf", 600), ("STMicroelectronics/STM32CubeF4", 450),
                          ("arduino/Arduino", 300)):
        assert f"[{repo}](https://github.com/{repo}) ({records} records used)" in s23


def test_the_reworded_sentences():
    text = squash(visible(BODY))
    assert "This summary follows the European Commission's Template for the Public Summary" in text
    assert "follows the European Commission, Template" not in text
    assert ("1 domain was crawled. As an SME the provider lists the top 5 % of them, or at most 1 000: 1 listed "
            "here") in text and "of the 1 domains" not in text
    assert ("100 % of the publicly available datasets' text used to train this adapter" in text
            and "100.0 %" not in text)
    assert ("The base model's training compute is not published, so the Commission guidelines' fallback threshold "
            "applies: one third of 10^23 FLOP, that is 3.33e+22 FLOP. This modification's estimate is below it") in text
    assert "retrained out" not in text and "not yet applicable" not in text
    assert "no removal has reached a published release yet" in text


def test_the_card_cites_no_evidence_dated_after_its_own_date():
    """A summary dated before the opt-out checks it reports would claim what was not known on its date."""
    checked = re.findall(r"checked on (\d{4}-\d\d-\d\d)", section("### 3.1", "### 3.2"))
    assert checked and max(checked) <= CARD_JSON["header"]["last_update"], (checked, CARD_JSON["header"])


def test_each_labelled_answer_of_3_1_is_a_paragraph_of_its_own():
    """The template's fields are read one by one: no field runs on into the sentence before it."""
    paragraphs = re.findall(r"<p>(.*?)</p>", to_html(section("### 3.1", "### 3.2")), re.S)
    assert any(p.startswith("<strong>Additional comments (optional):</strong>") for p in paragraphs), paragraphs
