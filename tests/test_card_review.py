"""Issue 15 points 1-3, 9 and 10, an independent review: inputs that must change an answer of the card, or be
refused, and do. The cards are read as GitHub shows them (cmark-gfm, tests/rendering.py)."""

from __future__ import annotations

import json

from factory import adapter, make_project, record, source
from rendering import visible
from test_card_truth import EVAL, README, RENDER, section

from kiki_bot import render


# ---------------------------------------------------------------- point 10: a typed score is never "measured"
def test_scores_typed_in_with_run_facts_are_never_called_measured(tmp_path, cli):
    """`card render --run` facts are typed by a person: with `iterations` in them, the scores were still not
    measured by a release kiki-bot ran, so they say where they came from."""
    repo = make_project(tmp_path / "repo", adapters={"tiny-lora": adapter(["acme-fw"], eval=EVAL)})
    facts = tmp_path / "run.json"
    for typed in ({"iterations": 10, "trained_tokens": 640, "eval_score": 99.0, "eval_base": 10.0},
                  {"eval_base": 10.0}):
        facts.write_text(json.dumps(typed))
        res = cli(*RENDER, repo, "--run", facts)
        assert res.code == 2 and "run.json: key `eval_source`" in res.err, res.err
        assert not (repo / "cards").exists()
    facts.write_text(json.dumps({"iterations": 10, "trained_tokens": 640, "eval_score": 99.0, "eval_base": 10.0,
                                 "eval_source": "measured by our lab on 2026-05-01"}))
    assert cli(*RENDER, repo, "--run", facts).code == 0
    evaluation = visible(section(repo.joinpath(*README).read_text(), "## Appendix C", "## Appendix D"))
    assert "| 10.00 | 99.00 |" in section(repo.joinpath(*README).read_text(), "## Appendix C", "## Appendix D")
    assert "measured by this release's training run" not in evaluation and "same run" not in evaluation
    assert ("This adapter: typed in, not measured by a run kiki-bot recorded: measured by our lab on 2026-05-01. "
            "Base model: typed in, not measured by a run kiki-bot recorded: measured by our lab on 2026-05-01. "
            "Benchmark caveats: Python problems only.") in evaluation


# ---------------------------------------------------------------- the licence column is the records'
def test_appendix_a_names_the_licences_the_records_carry(tmp_path, cli):
    """A source declared MIT whose records say Apache-2.0 for some: the card names both, with their counts."""
    recs = [record("acme-fw", i, f"int f{i}(void) {{ return {i}; }}", license="Apache-2.0" if i < 5 else "MIT")
            for i in range(20)]
    repo = make_project(tmp_path / "repo", records={"acme-fw": recs})
    assert cli(*RENDER, repo).code == 0
    table = visible(section(repo.joinpath(*README).read_text(), "## Appendix A", "## Appendix B"))
    assert "Example source (acme-fw) 2.3 MIT (15 records), Apache-2.0 (5 records) 20 " in table, table
    one = make_project(tmp_path / "one")
    assert cli(*RENDER, one).code == 0
    table = visible(section(one.joinpath(*README).read_text(), "## Appendix A", "## Appendix B"))
    assert "Example source (acme-fw) 2.3 MIT 20 " in table, table


def test_a_score_in_card_json_without_a_run_or_a_source_is_refused(tmp_path, cli):
    repo = make_project(tmp_path / "repo", adapters={"tiny-lora": adapter(["acme-fw"], eval=EVAL)})
    assert cli(*RENDER, repo).code == 0
    path = repo / "cards" / "tiny-lora" / "card.json"
    doc = json.loads(path.read_text())
    doc["run"]["eval_base"] = 12.0  # typed into card.json by hand: no run, no source
    path.write_text(json.dumps(doc))
    for command in (("card", "render", "-C"), ("card", "check", "-C")):
        res = cli(*command, repo)
        assert res.code == 2 and "card.json: key `run.eval_source`: the score 12 has no recorded training run" in res.err


# ---------------------------------------------------------------- point 2: a source with no record left was not used
def test_a_source_with_no_record_left_adds_no_modality_language_type_or_dataset(tmp_path, cli):
    """Every record of a French image dataset removed: 1.3 shows no image row, no French, no content type of it;
    the count of sources and the Hub metadata's datasets leave it out (Appendix A still lists it, at 0)."""
    srcs = {"acme-fw": source(), "gone": source("2.1", name="Gone set", url="https://huggingface.co/datasets/x/gone",
                                                 languages=["fr"], content_types=["photos of boards"],
                                                 modality="image")}
    records = {"acme-fw": [record("acme-fw", i, f"int f{i}(void);") for i in range(20)], "gone": []}
    repo = make_project(tmp_path / "repo", sources=srcs, records=records)
    assert cli(*RENDER, repo).code == 0
    readme = repo.joinpath(*README).read_text()
    general = visible(section(readme, "### 1.3", "## 2."))
    assert "Image" not in general and "photos of boards" not in general and "French" not in general, general
    assert "Description of the linguistic characteristics of the overall training data: English (en)." in general
    assert "20 records from 1 source;" in general, general
    assert "datasets" not in render.metadata(readme), render.metadata(readme)
    assert "Gone set (`gone`) | 2.1 | MIT | 0 |" in section(readme, "## Appendix A", "## Appendix B")


# ---------------------------------------------------------------- point 1: 3.1 states only the checks recorded
def test_records_from_a_host_no_check_covered_are_named_in_3_1(tmp_path, cli):
    """Evidence for github.com only, half the records from gitlab.com: 3.1 does not let "no reservation found"
    stand for them; once checked, the sentence goes."""
    recs = [record("acme-fw", i, f"int f{i}(void);") for i in range(20)]
    for i in range(10):
        recs[i]["_provenance"]["origin"] = f"https://gitlab.com/acme/fw/-/blob/main/f{i}.c"
    repo = make_project(tmp_path / "repo", records={"acme-fw": recs})
    (repo / "compliance" / "optouts").mkdir(parents=True)
    evidence = repo / "compliance" / "optouts" / "acme-fw.jsonl"

    def checked(*hosts: str) -> None:
        evidence.write_text("".join(json.dumps(
            {"checked_at": "2025-10-01T00:00:00Z", "host": h, "signal": "tdmrep-header", "url": f"https://{h}/",
             "status": 200, "sha256": None, "verdict": "allowed", "detail": "no tdm-reservation header"}) + "\n"
            for h in hosts))

    checked("github.com")
    assert cli(*RENDER, repo).code == 0
    opt_outs = visible(section(repo.joinpath(*README).read_text(), "### 3.1", "### 3.2"))
    assert ("acme-fw (compliance/optouts/acme-fw.jsonl): checked on 2025-10-01 over 1 host (github.com); latest "
            "check: no reservation found; no check is recorded for its records from gitlab.com, so nothing is "
            "stated for them.") in opt_outs, opt_outs
    checked("github.com", "gitlab.com")
    assert cli(*RENDER, repo).code == 0
    opt_outs = visible(section(repo.joinpath(*README).read_text(), "### 3.1", "### 3.2"))
    assert "over 2 hosts (github.com, gitlab.com); latest check: no reservation found." in opt_outs, opt_outs
    assert "no check is recorded for its records" not in opt_outs


def test_2_2_2_answered_yes_never_says_not_applicable(tmp_path, cli):
    """A private dataset from a third party, publicly known (a URL) or not: the box that does not describe it
    says why it is empty, not that the question does not apply."""
    broker = {k: v for k, v in source("2.2.2", name="Broker data").items() if k != "url"}
    for private, empty in ((broker, "If publicly known, list private datasets obtained from other third parties: "
                                    "None is publicly known."),
                           (source("2.2.2", name="Broker data"), "General description of non-publicly known private "
                                                                  "datasets obtained from third parties: None: every "
                                                                  "one is listed above.")):
        repo = make_project(tmp_path / empty[:9].strip(), sources={"acme-fw": source(), "broker": private})
        assert cli(*RENDER, repo).code == 0
        private_section = visible(section(repo.joinpath(*README).read_text(), "#### 2.2.2", "### 2.3"))
        assert "☒ Yes" in private_section and "Not applicable" not in private_section, private_section
        assert empty in private_section and "Broker data" in private_section, private_section


# ---------------------------------------------------------------- point 9: stale against every earlier version
def test_typed_text_stating_a_figure_of_any_earlier_version_is_flagged(tmp_path, cli):
    """20 records at v0.1.0, 18 at v0.1.1, 16 at v0.1.2: a limitation still saying 20 is stale at v0.1.2 too,
    though v0.1.1 (the version just before) never had 20."""
    from factory import edit_toml, mark_published, write_jsonl

    from kiki_bot.repo import manifests

    repo = make_project(tmp_path / "repo", adapters={"tiny-lora": adapter(["acme-fw"], limitations="Tiny.")})
    assert cli(*RENDER, repo).code == 0
    mark_published(repo, "tiny-lora")
    for n, version in ((18, "0.1.1"), (16, "0.1.2")):
        write_jsonl(repo / "data" / "acme-fw" / "part-000.jsonl",
                    [record("acme-fw", i, f"int f{i}(void) {{ return {i}; }}") for i in range(n)])
        manifests.refresh(repo / "data" / "acme-fw")
        assert cli("card", "render", "--version", version, "--date", "2026-06-01", "-C", repo).code == 0
        if version == "0.1.1":
            mark_published(repo, "tiny-lora", "2026-06-01T12:00:00Z")
    edit_toml(repo / "adapters" / "tiny-lora.toml", 'limitations = "Tiny."', 'limitations = "About 20 snippets."')
    assert cli("card", "render", "-C", repo).code == 0
    res = cli("card", "check", "--json", "-C", repo)
    assert res.code == 1
    assert res.json()["tiny-lora"]["stale"] == [
        "adapters/tiny-lora.toml: key `limitations`: states '20', the records of acme-fw of v0.1.0; the data "
        "has changed since: leave figures to the sections computed from it"]


def test_a_figure_grouped_with_spaces_is_read_as_one_figure(tmp_path, cli):
    """"2 070" (the template's own way to write 1 000) states 2,070; "20 100-line" still states 20."""
    from factory import edit_toml, mark_published, write_jsonl

    from kiki_bot.repo import manifests

    def texts(n: int) -> list[dict]:
        return [record("acme-fw", i, f"/* f{i} */ int f{i}(void) {{ return {i}; }}".ljust(400)) for i in range(n)]

    repo = make_project(tmp_path / "repo", records={"acme-fw": texts(20)})
    assert cli(*RENDER, repo).code == 0
    tokens = json.loads((repo / "cards" / "tiny-lora" / "card.json").read_text())["sources"][0]["tokens"]
    spaced = f"{tokens:,}".replace(",", " ")
    assert tokens >= 1000 and " " in spaced
    mark_published(repo, "tiny-lora")
    write_jsonl(repo / "data" / "acme-fw" / "part-000.jsonl", texts(18))
    manifests.refresh(repo / "data" / "acme-fw")
    assert cli("card", "render", "--version", "0.1.1", "--date", "2026-06-01", "-C", repo).code == 0
    for typed, stated, what in ((f"About {spaced} tokens.", spaced, "tokens of acme-fw"),
                                ("About 20 100-line snippets.", "20", "records of acme-fw")):
        edit_toml(repo / "adapters" / "tiny-lora.toml", 'limitations = "Tiny."', f'limitations = "{typed}"')
        res = cli("card", "check", "--json", "-C", repo)
        assert res.json()["tiny-lora"]["stale"] == [
            f"adapters/tiny-lora.toml: key `limitations`: states {stated!r}, the {what} of v0.1.0; the data has "
            "changed since: leave figures to the sections computed from it"], typed
        edit_toml(repo / "adapters" / "tiny-lora.toml", f'limitations = "{typed}"', 'limitations = "Tiny."')


# ---------------------------------------------------------------- 1.2: what the declaration says, not a search
def test_1_2_says_the_provider_names_no_base_model_summary_not_that_none_was_found(tmp_path, cli):
    """Nothing searched for a summary of the base model's training content: the card says none is named (no
    `base_model.summary_url`), and links it once declared."""
    repo = make_project(tmp_path / "repo")
    assert cli(*RENDER, repo).code == 0
    dependencies = visible(section(repo.joinpath(*README).read_text(), "**Model dependencies:**", "**Date of"))
    assert "was found" not in dependencies, dependencies
    assert ("test-lab/tiny-base (the provider names no public summary of the base model's training content)"
            in dependencies), dependencies
    doc = adapter(["acme-fw"])
    doc["base_model"]["summary_url"] = "https://test-lab.eu/tiny-base-pst"
    declared = make_project(tmp_path / "declared", adapters={"tiny-lora": doc})
    assert cli(*RENDER, declared).code == 0
    dependencies = visible(section(declared.joinpath(*README).read_text(), "**Model dependencies:**", "**Date of"))
    assert "(its own summary: https://test-lab.eu/tiny-base-pst)" in dependencies, dependencies


# ---------------------------------------------------------------- point 3: a Creative Commons restriction is a notice
def test_a_creative_commons_noncommercial_notice_is_refused_under_a_permissive_licence(project, cli):
    from factory import write_jsonl

    from kiki_bot.repo import manifests

    for notice in ("/* Licensed under CC BY-NC 4.0 */", "<!-- Creative Commons Attribution-NonCommercial-ShareAlike -->",
                   "# This work is licensed under CC BY-ND 4.0"):
        records = [record("acme-fw", i, f"int f{i}(void) {{ return {i}; }}") for i in range(20)]
        records[7] = record("acme-fw", 7, f"{notice}\nint f7(void);")
        write_jsonl(project / "data" / "acme-fw" / "part-000.jsonl", records)
        manifests.refresh(project / "data" / "acme-fw")
        res = cli(*RENDER, project)
        assert res.code == 2 and "part-000.jsonl:8: the content carries a notice of a Creative Commons" in res.err, notice
        assert "which its declared licence MIT does not cover" in res.err


# ---------------------------------------------------------------- run facts typed in are never "measured"
def test_run_facts_typed_with_run_are_typed_in_not_a_recorded_run(tmp_path, cli):
    """Iterations, tokens and wall time typed with `card render --run` are no run kiki-bot recorded: card.json
    says so, Appendix B and the compute basis say "typed in", never mlx-lm's own count."""
    repo = make_project(tmp_path / "repo")
    facts = tmp_path / "run.json"
    facts.write_text(json.dumps({"iterations": 10, "trained_tokens": 640, "wall_time_s": 12.0, "origin": "release"}))
    res = cli(*RENDER, repo, "--run", facts)
    assert res.code == 2 and "run.json: key `origin`" in res.err and not (repo / "cards").exists(), res.err
    facts.write_text(json.dumps({"iterations": 10, "trained_tokens": 640, "wall_time_s": 12.0}))
    assert cli(*RENDER, repo, "--run", facts).code == 0
    card = json.loads(repo.joinpath("cards", "tiny-lora", "card.json").read_text())
    assert card["run"]["origin"] == "typed in"
    appendix = visible(section(repo.joinpath(*README).read_text(), "## Appendix B", "## Appendix C"))
    assert "mlx-lm trained_tokens" not in appendix and "Training run:" not in appendix, appendix
    assert ("Training run, typed in with card render --run (not recorded by kiki-bot): 640 tokens processed in 10 "
            "iterations, 12 s wall time.") in appendix, appendix
    assert ("D = 640 (tokens processed in a training run typed in with card render --run, not recorded by "
            "kiki-bot)") in appendix, appendix


# ---------------------------------------------------------------- 2.1 answered No says nothing contradictory
def test_2_1_answered_no_lists_no_dataset_as_not_applicable(tmp_path, cli):
    repo = make_project(tmp_path / "repo")
    assert cli(*RENDER, repo).code == 0
    public = visible(section(repo.joinpath(*README).read_text(), "### 2.1", "### 2.2"))
    assert "☒ No" in public and "exceeds" not in public and "None" not in public, public
    assert "List of large publicly available datasets: Not applicable: no publicly available dataset was used." \
        in public, public
    assert "not listed above: Not applicable." in public, public
    both = make_project(tmp_path / "both", sources={"acme-fw": source(), "pub": source("2.1", name="Pub")})
    assert cli(*RENDER, both).code == 0
    public = visible(section(both.joinpath(*README).read_text(), "### 2.1", "### 2.2"))
    assert "☒ Yes" in public and "Not applicable" not in public, public


# ---------------------------------------------------------------- 2.4 says what backs its answers
def test_2_4_says_which_declarations_back_its_answers(tmp_path, cli):
    repo = make_project(tmp_path / "repo", sources={"acme-fw": source(), "pub": source("2.1", name="Pub")})
    assert cli(*RENDER, repo).code == 0
    user = visible(section(repo.joinpath(*README).read_text(), "### 2.4", "### 2.5"))
    assert ("No to both: none of the 2 sources used is declared as user data (category 2.4); their categories "
            "are 2.1 (1 source), 2.3 (1 source).") in user, user
    chats = make_project(tmp_path / "chats", sources={"acme-fw": source(),
                                                      "chats": source("2.4", name="Chats", user_data="model")})
    assert cli(*RENDER, chats).code == 0
    user = visible(section(chats.joinpath(*README).read_text(), "### 2.4", "### 2.5"))
    assert ("Of the 2 sources used, 1 is declared as user data (category 2.4): Chats (chats), interactions with "
            "the AI model.") in user, user
