"""`card render` refuses bad input with exit 2 and writes nothing; `card check` catches drift with exit 1."""

from __future__ import annotations

import json

import pytest
from factory import adapter, edit_toml, make_project, record, snapshot, source, write_jsonl

RENDER = ("card", "render", "--version", "0.1.0", "--date", "2026-05-06", "-C")


def rendered(project, cli):
    assert cli(*RENDER, project).code == 0
    return project


BAD_INPUTS = {
    "unknown key": (lambda r: edit_toml(r / "sources" / "acme-fw.toml", 'name = "Example source"',
                                        'name = "Example source"\nlicence = "MIT"'),
                    ["sources/acme-fw.toml", "`licence`", "unknown key"]),
    "wrong type": (lambda r: edit_toml(r / "adapters" / "tiny-lora.toml", "rank = 4", 'rank = "four"'),
                   ["adapters/tiny-lora.toml", "`lora.rank`", "integer"]),
    "missing field": (lambda r: edit_toml(r / "kiki.toml", 'country = "FR"\n', ""),
                      ["kiki.toml:1", "`provider.country`", "required key is missing"]),
    "unknown PST category": (lambda r: edit_toml(r / "sources" / "acme-fw.toml", 'category = "2.3"',
                                                 'category = "2.7"'),
                             ["sources/acme-fw.toml", "`category`", "2.2.1"]),
    "missing provenance": (lambda r: write_jsonl(r / "data" / "acme-fw" / "part-000.jsonl",
                                                 [record("acme-fw", 0, "x"), {"text": "no provenance"}]),
                           ["part-000.jsonl:2", "_provenance"]),
    "provenance field": (lambda r: write_jsonl(r / "data" / "acme-fw" / "part-000.jsonl",
                                               [record("acme-fw", 0, "x", access_date="yesterday")]),
                         ["part-000.jsonl:1", "_provenance.access_date"]),
    "malformed JSONL line": (lambda r: (r / "data" / "acme-fw" / "part-000.jsonl").write_text(
                                 json.dumps(record("acme-fw", 0, "x")) + "\n{not json\n"),
                             ["part-000.jsonl:2", "not valid JSON"]),
    "licence outside policy": (lambda r: write_jsonl(r / "data" / "acme-fw" / "part-000.jsonl",
                                                     [record("acme-fw", 0, "x", license="GPL-3.0-only")]),
                               ["part-000.jsonl:1", "GPL-3.0-only", "allow-list"]),
    "unknown SPDX id": (lambda r: write_jsonl(r / "data" / "acme-fw" / "part-000.jsonl",
                                              [record("acme-fw", 0, "x", license="Mit-ish")]),
                        ["part-000.jsonl:1", "_provenance.license", "Mit-ish"]),
    "manifest mismatch": (lambda r: (r / "data" / "acme-fw" / "part-000.jsonl").write_text(
                              (r / "data" / "acme-fw" / "part-000.jsonl").read_text().replace("return 3;", "return 4;")),
                          ["part-000.jsonl", "MANIFEST.json"]),
    "unknown source in adapter": (lambda r: edit_toml(r / "adapters" / "tiny-lora.toml", '"acme-fw"',
                                                      '"nope"'),
                                  ["adapters/tiny-lora.toml:6", "`sources[0]`", "unknown source `nope`"]),
    "invalid TOML": (lambda r: (r / "kiki.toml").write_text("[provider\n"), ["kiki.toml", "not valid TOML"]),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_exits_2_names_the_place_and_writes_nothing(project, cli, case):
    rendered(project, cli)
    breaks, words = BAD_INPUTS[case]
    breaks(project)
    before = snapshot(project)
    res = cli(*RENDER, project)
    assert res.code == 2, res.err
    for word in words:
        assert word in res.err, (word, res.err)
    assert snapshot(project) == before


def test_render_twice_changes_no_byte(project, cli):
    rendered(project, cli)
    before = snapshot(project)
    assert cli("card", "render", "-C", project).code == 0
    assert snapshot(project) == before
    assert cli("card", "check", "-C", project).code == 0


def test_editing_one_record_is_drift_with_the_field(project, cli):
    rendered(project, cli)
    path = project / "data" / "acme-fw" / "part-000.jsonl"
    path.write_text(path.read_text().replace("return 3; }", "return 3; /* a longer body now */ }"))
    assert cli("data", "manifest", "-C", project).code == 0
    res = cli("card", "check", "--json", "-C", project)
    assert res.code == 1
    drift = res.json()["tiny-lora"]["drift"]
    assert any(line.startswith("card.json sources.acme-fw.bytes: 790 → ") for line in drift), drift
    assert any(line.startswith("card.json sources.acme-fw.tokens: ") for line in drift)


def test_hand_edited_card_fails_with_its_diff(project, cli):
    rendered(project, cli)
    readme = project / "cards" / "tiny-lora" / "README.md"
    readme.write_text(readme.read_text().replace("☐ Yes ☒ No", "☒ Yes ☐ No", 1))
    res = cli("card", "check", "-C", project)
    assert res.code == 1
    assert "README.md: differs from what the data says" in res.err
    assert "+**Have you used publicly available datasets to train the model?** ☐ Yes ☒ No" in res.err


def test_hand_edited_card_json_is_field_level(project, cli):
    rendered(project, cli)
    path = project / "cards" / "tiny-lora" / "card.json"
    doc = json.loads(path.read_text())
    doc["section23"]["crawlers"] = ["another-bot/2.0"]
    path.write_text(json.dumps(doc))
    res = cli("card", "check", "--json", "-C", project)
    assert res.code == 1
    assert 'card.json section23.crawlers: ["another-bot/2.0"] → ["test-crawler/1.0"]' in res.json()["tiny-lora"]["drift"]


def test_check_reports_licence_and_manifest_problems_with_exit_1(project, cli):
    rendered(project, cli)
    (project / "data" / "acme-fw" / "extra.jsonl").write_text(json.dumps(record("acme-fw", 50, "y")) + "\n")
    res = cli("card", "check", "--json", "-C", project)
    assert res.code == 1
    assert any("extra.jsonl: not listed in MANIFEST.json" in p for p in res.json()["tiny-lora"]["manifests"])


def test_check_without_a_card_says_how_to_make_one(project, cli):
    res = cli("card", "check", "-C", project)
    assert res.code == 1 and "kiki-bot card render tiny-lora" in res.err


def test_not_a_project(tmp_path, cli):
    res = cli("card", "check", "-C", tmp_path)
    assert res.code == 2 and "kiki.toml missing" in res.err


def test_exact_token_counts_with_a_local_tokenizer(tmp_path, cli):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    tok.train_from_iterator(["int f(void) { return 1; }"] * 10, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>"]))
    base = tmp_path / "base"
    base.mkdir()
    tok.save(str(base / "tokenizer.json"))
    ad = adapter(["acme-fw"])
    ad["base_model"]["local_path"] = str(base)
    root = make_project(tmp_path / "r", sources={"acme-fw": source()}, adapters={"tiny-lora": ad})
    assert cli(*RENDER, root).code == 0
    card = json.loads((root / "cards" / "tiny-lora" / "card.json").read_text())
    assert card["token_method"] == "tokenizer"
    texts = [f"Explain f{i}.\nint f{i}(void) {{ return {i}; }}" for i in range(20)]
    assert card["sources"][0]["tokens"] == sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False))
    readme = (root / "cards" / "tiny-lora" / "README.md").read_text()
    assert "Tokens were counted with the tokenizer of test-lab/tiny-base." in readme


# ---------------------------------------------------------------- the ledger head a card recorded
def requests_matching_nothing(project, issues):
    """`requested` entries no adapter is affected by: the card's figures do not change with them."""
    import datetime as dt

    from kiki_bot.repo import ledgerfile

    path = project / "compliance" / "removals.jsonl"
    at = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    for n in issues:
        ledgerfile.append_once(path, "requested", {"id": f"R-{n}", "issue": n}, "alice", at, selectors=["other/repo"],
                               body_sha256="ab" * 32, deadline=at + dt.timedelta(days=30), adapters=[])
    return path


def test_card_json_records_the_ledger_head_it_saw(project, cli):
    card = project / "cards" / "tiny-lora" / "card.json"
    rendered(project, cli)
    header = json.loads(card.read_text())["header"]
    assert (header["ledger_seq"], header["ledger_hash"]) == (0, "0" * 64)  # an empty ledger
    path = requests_matching_nothing(project, [1, 2, 3])
    assert cli("card", "check", "-C", project).code == 0  # a ledger grown since the card was rendered is fine
    rendered(project, cli)
    last = json.loads(path.read_text().splitlines()[-1])
    header = json.loads(card.read_text())["header"]
    assert (header["ledger_seq"], header["ledger_hash"]) == (3, last["hash"])


def test_a_ledger_shorter_than_or_diverging_from_the_card_fails_verify_and_check(project, cli):
    path = requests_matching_nothing(project, [1, 2, 3])
    rendered(project, cli)
    full = path.read_bytes()
    lines = full.splitlines(keepends=True)
    card = str(project / "cards" / "tiny-lora" / "card.json")

    def broken(seq_words: str) -> None:
        for command in (("ledger", "verify"), ("card", "check")):
            res = cli(*command, "-C", project)
            assert res.code == 1, (command, res.err)
            assert card in res.err and "records ledger entry seq 3" in res.err, res.err
            assert seq_words in res.err, res.err

    path.write_bytes(b"".join(lines[:2]))  # the last entry dropped
    broken("the ledger has only 2 entries")
    path.write_bytes(b"")  # an empty ledger under a card that counts three entries
    broken("the ledger has only 0 entries")
    path.unlink()  # no ledger at all
    broken("the ledger has only 0 entries")
    path.write_bytes(b"".join(lines[:2]))
    requests_matching_nothing(project, [9])  # a valid chain again, but entry 3 is another one
    broken("the ledger was rewritten")
    res = cli("ledger", "verify", "--json", "-C", project)
    assert res.code == 1 and card in res.json()["problem"]

    path.write_bytes(full)
    requests_matching_nothing(project, [4])  # growing is what a ledger does
    assert cli("ledger", "verify", "-C", project).code == 0 and cli("card", "check", "-C", project).code == 0
