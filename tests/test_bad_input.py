"""Every mistake a user can make in a model repository, one row each: the CLI exits 2 (1 for a broken ledger
chain: DESIGN.md section 4 calls that a failed check), names the file and the line or key, says what was
expected in kiki-bot's own words, and changes no byte of the project.

Builds on tests/test_card_check.py's twelve cases (and its helpers, now in factory.py); CLI usage errors
(unknown options, missing arguments) are h5's table in their own test; a few argument values are here."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from factory import edit_toml, record, snapshot, write_jsonl

from kiki_bot.repo import ledgerfile

RENDER = ("card", "render", "--version", "0.1.0", "--date", "2026-05-06")
COMMANDS = {
    "render": RENDER,
    "manifest": ("data", "manifest"),
    "verify": ("ledger", "verify"),
    "check": ("card", "check"),
}
# What pydantic says in its own words: none of it may reach the user.
PYDANTIC_WORDS = ("Input should", "errors.pydantic.dev", "Value error,", "Field required", "validation error", "(+")


def toml(rel: str, old: str, new: str):
    return lambda root: edit_toml(root / rel, old, new)


def provenance(**over):
    """Write a data file whose second record's provenance has `over` (None drops the key)."""
    def breaks(root: Path) -> None:
        write_jsonl(root / "data" / "acme-fw" / "part-000.jsonl",
                    [record("acme-fw", 0, "x"), record("acme-fw", 1, "y", **over)])
    return breaks


def data_line(raw: str):
    """Append one raw line after a good record."""
    def breaks(root: Path) -> None:
        good = json.dumps(record("acme-fw", 0, "x"))
        (root / "data" / "acme-fw" / "part-000.jsonl").write_text(f"{good}\n{raw}\n", encoding="utf-8")
    return breaks


def manifest(text: str):
    return lambda root: (root / "data" / "acme-fw" / "MANIFEST.json").write_text(text)


def manifest_entry(**over):
    def breaks(root: Path) -> None:
        path = root / "data" / "acme-fw" / "MANIFEST.json"
        doc = json.loads(path.read_text())
        doc["files"]["part-000.jsonl"].update(over)
        path.write_text(json.dumps(doc))
    return breaks


def write(rel: str, text: str):
    return lambda root: (root / rel).parent.mkdir(parents=True, exist_ok=True) or (root / rel).write_text(text)


def _entries(root: Path) -> Path:
    path = root / "compliance" / "removals.jsonl"
    at = dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC)
    for n in (1, 2):
        ledgerfile.append_once(path, "requested", {"id": f"R-{n}", "issue": n}, "alice", at, selectors=["acme"],
                               body_sha256="0" * 64, deadline=at + dt.timedelta(days=30), adapters=["tiny-lora"])
    return path


def ledger_edit(change):
    def breaks(root: Path) -> None:
        path = _entries(root)
        path.write_bytes(change(path.read_bytes()))
    return breaks


KIKI, SRC, ADP = "kiki.toml", "sources/acme-fw.toml", "adapters/tiny-lora.toml"
CARD = "cards/tiny-lora/card.json"
# case: (what breaks the project, command, words the message must hold[, exit code])
CASES = {
    # ---------------------------------------------------------------- kiki.toml
    "kiki: misspelt key": (toml(KIKI, "sme = true", "smee = true"), "render",
                           ["kiki.toml:7: key `provider.smee`: unknown key `smee` (did you mean `sme`?)"]),
    "kiki: number as string": (toml(KIKI, "[policy]\n", '[policy]\nremoval_window_days = "30"\n'), "render",
                               [("kiki.toml:13: key `policy.removal_window_days`: expected an integer, "
                                'got the string "30"')]),
    "kiki: bool as string": (toml(KIKI, "sme = true", 'sme = "yes"'), "render",
                             ['kiki.toml:7: key `provider.sme`: expected true or false, got the string "yes"']),
    "kiki: bool as number": (toml(KIKI, "sme = true", "sme = 1"), "render",
                             ["kiki.toml:7: key `provider.sme`: expected true or false, got the number 1"]),
    "kiki: float for integer": (toml(KIKI, "[policy]\n", "[policy]\nwarn_days = 7.5\n"), "render",
                                ["kiki.toml:13: key `policy.warn_days`: expected an integer, got the number 7.5"]),
    "kiki: number as string (float)": (toml(KIKI, "[policy]\n", '[policy]\nreview_buffer_days = "2"\n'), "render",
                                       ["key `policy.review_buffer_days`: expected a number"]),
    "kiki: licence not SPDX": (toml(KIKI, '"CC0-1.0"', '"PSF 2.0"'), "render",
                               [("kiki.toml:13: key `policy.allowed_licenses[3]`: `PSF 2.0` is not an SPDX licence "
                                "id (did you mean `PSF-2.0`?)")]),
    "kiki: expression in allow-list": (toml(KIKI, '"CC0-1.0"', '"MIT OR CC0-1.0"'), "render",
                                       ["key `policy.allowed_licenses[3]`", "expected one SPDX licence id"]),
    "kiki: empty allow-list": (toml(KIKI, '"MIT",\n    "Apache-2.0",\n    "BSD-3-Clause",\n    "CC0-1.0",\n', ""),
                               "render", ["kiki.toml:13: key `policy.allowed_licenses`: expected at least 1 item"]),
    "kiki: country pattern": (toml(KIKI, 'country = "FR"', 'country = "fr"'), "render",
                              [("kiki.toml:5: key `provider.country`: expected a string matching ^[A-Z]{2}$, "
                               'got the string "fr"')]),
    "kiki: not a URL": (toml(KIKI, 'website = "https://test-lab.eu"', 'website = "test-lab dot eu"'), "render",
                        ["kiki.toml:4: key `provider.website`: expected an http(s) URL"]),
    "kiki: not one of": (toml(KIKI, "[policy]\n", '[policy]\napprove_permission = "owner"\n'), "render",
                         ["kiki.toml:13: key `policy.approve_permission`: expected one of 'triage', 'write'"]),
    "kiki: out of range": (toml(KIKI, "[policy]\n", "[policy]\nremoval_window_days = 0\n"), "render",
                           ["key `policy.removal_window_days`: expected a number at least 1, got the number 0"]),
    "kiki: missing table": (toml(KIKI, '[hub]\nnamespace = "test-lab"\n', ""), "render",
                            ["kiki.toml: key `hub`: required key is missing (expected a table)"]),
    "kiki: table as value": (lambda r: (toml(KIKI, '[hub]\nnamespace = "test-lab"\n', "")(r),
                                        toml(KIKI, "[provider]", 'hub = "test-lab"\n[provider]')(r)), "render",
                             ['kiki.toml:1: key `hub`: expected a table, got the string "test-lab"']),
    "kiki: rule across keys": (toml(KIKI, "established_in_eu = true", "established_in_eu = false"), "render",
                               [("kiki.toml:1: key `provider`: authorised_representative is required when "
                                "established_in_eu = false")]),
    "kiki: TOML syntax": (toml(KIKI, "[provider]", "[provider"), "render",
                          ["kiki.toml:1:10: not valid TOML: Expected ']'"]),
    "kiki: duplicate TOML key": (toml(KIKI, 'country = "FR"', 'country = "FR"\ncountry = "DE"'), "render",
                                 ["kiki.toml:6:", "not valid TOML: Cannot overwrite a value"]),
    "kiki: cut off mid-key": (lambda r: (r / KIKI).write_text((r / KIKI).read_text()[:150]), "render",
                              ["kiki.toml:6:", "not valid TOML", "the file ends too early"]),
    "kiki: cut off after a table": (lambda r: (r / KIKI).write_text("".join((r / KIKI).read_text().splitlines(True)[:8])),
                                    "render", [("kiki.toml:1: key `provider.copyright_policy_url`: required key is "
                                               "missing"), "kiki.toml: key `policy`: required key is missing",
                                               "4 problems:"]),
    # ---------------------------------------------------------------- sources/<id>.toml
    "source: licence not SPDX": (toml(SRC, 'license = "MIT"', 'license = "Apache2"'), "render",
                                 [("sources/acme-fw.toml:4: key `license`: `Apache2` is not an SPDX licence id "
                                  "(did you mean `Apache-2.0`?)")]),
    "source: licence syntax": (toml(SRC, 'license = "MIT"', 'license = "MIT AND"'), "render",
                               [("sources/acme-fw.toml:4: key `license`: `MIT AND` is not a valid SPDX licence "
                                "expression")]),
    "source: Hub licence id": (toml(SRC, 'license = "MIT"', 'license = "llama3"'), "render",
                               ["sources/acme-fw.toml:4: key `license`", "LicenseRef-llama3"]),
    "source: date as string": (toml(SRC, "collected_from = 2025-09-01", 'collected_from = "2025-09-01"'), "render",
                               [("sources/acme-fw.toml:14: key `collected_from`: expected a date such as 2025-09-01 "
                                '(a TOML date: no quotes), got the string "2025-09-01"')]),
    "source: date-time for a date": (toml(SRC, "collected_to = 2025-10-31", "collected_to = 2025-10-31T12:00:00"),
                                     "render", ["sources/acme-fw.toml:15: key `collected_to`: expected a date"]),
    "source: dates reversed": (toml(SRC, "collected_to = 2025-10-31", "collected_to = 2025-08-31"), "render",
                               ["sources/acme-fw.toml: collected_to is before collected_from"]),
    "source: misspelt key": (toml(SRC, 'license = "MIT"', 'licence = "MIT"'), "render",
                             [("sources/acme-fw.toml:4: key `licence`: unknown key `licence` (did you mean "
                              "`license`?)")]),
    "source: unknown key, nothing close": (toml(SRC, 'modality = "text"', 'modality = "text"\nflavour = 3'), "render",
                                           [("sources/acme-fw.toml:6: key `flavour`: unknown key `flavour` (expected "
                                            "one of: category,")]),
    "source: crawled without crawler": (lambda r: edit_toml(r / SRC, (r / SRC).read_text()[(r / SRC).read_text()
                                        .index("[crawler]"):], ""), "render",
                                        ["sources/acme-fw.toml: category 2.3 (crawled) needs a [crawler] table"]),
    "source: string for list": (toml(SRC, 'opt_outs = [\n    "robots.txt",\n    "ai.txt",\n]', 'opt_outs = "robots.txt"'),
                                "render", [("sources/acme-fw.toml:21: key `crawler.opt_outs`: expected an array, got "
                                           'the string "robots.txt"')]),
    "source: id is not the file name": (toml(SRC, 'name = "Example source"', 'id = "other"\nname = "Example source"'),
                                        "render", [("sources/acme-fw.toml:1: key `id`: must equal the file name "
                                                   "`acme-fw`")]),
    "source: unknown modality": (toml(SRC, 'modality = "text"', 'modality = "txt"'), "render",
                                 ["sources/acme-fw.toml:5: key `modality`: expected one of 'text', 'image'"]),
    "source: empty list": (toml(SRC, 'languages = [\n    "en",\n]', "languages = []"), "render",
                           ["sources/acme-fw.toml:9: key `languages`: expected at least 1 item(s), got 0"]),
    "source: PST category": (toml(SRC, 'category = "2.3"', 'category = "2.7"'), "render",
                             ["sources/acme-fw.toml:2: key `category`: expected one of '2.1', '2.2.1'"]),
    # ---------------------------------------------------------------- adapters/<name>.toml
    "adapter: integer as string": (toml(ADP, "rank = 4", 'rank = "8"'), "render",
                                   [('adapters/tiny-lora.toml:21: key `lora.rank`: expected an integer, got the '
                                    'string "8"')]),
    "adapter: base licence not SPDX": (toml(ADP, 'license = "Apache-2.0"', 'license = "Apache 2"'), "render",
                                       [("adapters/tiny-lora.toml:17: key `base_model.license`: `Apache 2` is not an "
                                        "SPDX licence id (did you mean `Apache-2.0`?)")]),
    "adapter: unknown source": (toml(ADP, '"acme-fw"', '"acme-fw",\n    "nope"'), "render",
                                [("adapters/tiny-lora.toml:6: key `sources[1]`: unknown source `nope`: no "
                                 "sources/nope.toml (known: acme-fw)")]),
    "adapter: out of range": (toml(ADP, "dropout = 0.0", "dropout = 1.5"), "render",
                              ["adapters/tiny-lora.toml:23: key `lora.dropout`: expected a number less than 1"]),
    "adapter: float for integer": (toml(ADP, "iters = 10", "iters = 10.0"), "render",
                                   [("adapters/tiny-lora.toml:31: key `training.iters`: expected an integer, got the "
                                    "number 10.0")]),
    "adapter: bool as string": (toml(ADP, 'continuous_training = false', 'continuous_training = "no"'),
                                "render", [("adapters/tiny-lora.toml:11: key `continuous_training`: expected true or "
                                           'false, got the string "no"')]),
    "adapter: misspelt nested key": (toml(ADP, 'license = "Apache-2.0"', 'licence = "Apache-2.0"'), "render",
                                     [("adapters/tiny-lora.toml:17: key `base_model.licence`: unknown key `licence` "
                                      "(did you mean `license`?)")]),
    "adapter: pattern": (toml(ADP, 'hub_repo = "test-lab/tiny-lora"', 'hub_repo = "tiny-lora"'), "render",
                         ["adapters/tiny-lora.toml:2: key `hub_repo`: expected a string matching"]),
    "adapter: several files at once": (lambda r: (toml(ADP, "rank = 4", 'rank = "8"')(r),
                                                  toml(SRC, 'license = "MIT"', 'license = "Apache2"')(r)), "render",
                                       ["2 problems:", "sources/acme-fw.toml:4: key `license`",
                                        "adapters/tiny-lora.toml:21: key `lora.rank`"]),
    # ---------------------------------------------------------------- records (JSONL)
    "record: not JSON": (data_line("{not json"), "render", ["part-000.jsonl:2: not valid JSON"]),
    "record: not an object": (data_line("[1, 2]"), "manifest", ["part-000.jsonl:2: expected a JSON object per line"]),
    "record: no provenance": (data_line('{"text": "x"}'), "render", ["part-000.jsonl:2: missing `_provenance` object"]),
    "record: no payload": (data_line(json.dumps({"_provenance": record("acme-fw", 1, "y")["_provenance"]})), "render",
                           ["part-000.jsonl:2: no training payload: expected `messages`"]),
    "record: index as string": (provenance(record_idx="1"), "render",
                                [('part-000.jsonl:2: key `_provenance.record_idx`: expected an integer, got the '
                                 'string "1"')]),
    "record: index as float": (provenance(record_idx=1.0), "manifest",
                               [("part-000.jsonl:2: key `_provenance.record_idx`: expected an integer, got the number "
                                "1.0")]),
    "record: negative index": (provenance(record_idx=-1), "render",
                               ["part-000.jsonl:2: key `_provenance.record_idx`: expected a number at least 0"]),
    "record: bad date": (provenance(access_date="yesterday"), "render",
                         [('part-000.jsonl:2: key `_provenance.access_date`: expected an ISO date string such as '
                          '"2025-10-02", got the string "yesterday"')]),
    "record: impossible date": (provenance(access_date="2025-02-30"), "render",
                                ["part-000.jsonl:2: key `_provenance.access_date`: expected an ISO date string"]),
    "record: date as number": (provenance(access_date=20251002), "manifest",
                               ["part-000.jsonl:2: key `_provenance.access_date`", "got the number 20251002"]),
    "record: licence not SPDX": (provenance(license="Apache2"), "render",
                                 [("part-000.jsonl:2: key `_provenance.license`: `Apache2` is not an SPDX licence id "
                                  "(did you mean `Apache-2.0`?)")]),
    "record: licence missing": (provenance(license=None), "manifest",
                                [("part-000.jsonl:2: key `_provenance.license`: required key is missing (expected a "
                                 "string)")]),
    "record: misspelt provenance key": (provenance(license=None, licence="MIT"), "render",
                                        [("part-000.jsonl:2: key `_provenance.licence`: unknown key `licence` (did you "
                                         "mean `license`?)")]),
    "record: wrong source": (provenance(source="other"), "render",
                             [("part-000.jsonl:2: _provenance.source is 'other' but the file lies under "
                              "data/acme-fw/")]),
    "record: hash not hex": (provenance(sha256="xyz"), "render",
                             ["part-000.jsonl:2: key `_provenance.sha256`: expected a string matching"]),
    "record: licence outside policy": (provenance(license="GPL-3.0-only"), "render",
                                       [("part-000.jsonl:2: _provenance.license 'GPL-3.0-only' is not satisfiable by "
                                        "the allow-list")]),
    "record: several bad lines": (data_line('{"text": "x"}\n[1]'), "render",
                                  ["2 problems:", "part-000.jsonl:2: missing `_provenance` object",
                                   "part-000.jsonl:3: expected a JSON object per line"]),
    # ---------------------------------------------------------------- manifests
    "manifest: not JSON": (manifest('{"files": {'), "render", ["MANIFEST.json:1:12: not valid JSON"]),
    "manifest: wrong shape": (manifest('{"files": []}'), "render",
                              ["MANIFEST.json: key `files`: expected a JSON object, got an array"]),
    "manifest: unknown key": (manifest('{"files": {}, "file": {}}'), "render",
                              ["MANIFEST.json: key `file`: unknown key `file` (did you mean `files`?)"]),
    "manifest: size as string": (manifest_entry(bytes="8080"), "render",
                                 [("MANIFEST.json: key `files.part-000.jsonl.bytes`: expected an integer, got the "
                                  'string "8080"')]),
    "manifest: hash not hex": (manifest_entry(sha256="not-a-hash"), "render",
                               ["MANIFEST.json: key `files.part-000.jsonl.sha256`: expected a string matching"]),
    "manifest: wrong hash": (manifest_entry(sha256="0" * 64), "render",
                             ["part-000.jsonl: bytes differ from MANIFEST.json (sha256"]),
    "manifest: missing": (lambda r: (r / "data" / "acme-fw" / "MANIFEST.json").unlink(), "render",
                          ["MANIFEST.json: missing (run `kiki-bot data manifest`)"]),
    "manifest: lists a missing file": (write("data/acme-fw/part-001.jsonl", "") , "render",
                                       ["part-001.jsonl: not listed in MANIFEST.json"]),
    "card: wrong type in card.json": (lambda r: edit_toml(r / CARD, '"version": "0.1.0"', '"version": 1'), "render",
                                      ["card.json: key `header.version`: expected a string, got the number 1"]),
    "card: card.json not JSON": (write(CARD, "{"), "check", ["card.json: not valid JSON (EOF while parsing"]),
    # ---------------------------------------------------------------- the removal ledger
    "ledger: not JSON": (write("compliance/removals.jsonl", "{oops\n"), "render",
                         ["removals.jsonl:1: not valid JSON"]),
    "ledger: torn last line": (ledger_edit(lambda b: b[:-1]), "render",
                               ["removals.jsonl:2: truncated last line"]),
    "ledger: not an entry": (write("compliance/removals.jsonl", '{"seq": 1}\n'), "render",
                             ["removals.jsonl:1: not a valid ledger entry"]),
    "ledger: broken chain": (ledger_edit(lambda b: b.split(b"\n", 1)[1]), "verify",
                             ["removals.jsonl:1 (entry seq 1): seq is 2, expected 1"], 1),
    "ledger: edited entry": (ledger_edit(lambda b: b.replace(b'"alice"', b'"mallory"', 1)), "verify",
                             ["removals.jsonl:1 (entry seq 1): hash mismatch"], 1),
    # ---------------------------------------------------------------- command-line values (usage errors: h5)
    "cli: bad date": (lambda r: None, ("card", "render", "--date", "06/05/2026"),
                      ["--date: expected YYYY-MM-DD, got '06/05/2026'"]),
    "cli: run facts of the wrong type": (write("run.json", '{"trained_tokens": "many"}'),
                                         (*RENDER, "--run", "{root}/run.json"),
                                         ["/run.json: key `trained_tokens`: expected an integer, got the string "
                                          '"many"']),
    "cli: unknown adapter": (lambda r: None, ("card", "render", "nope"),
                             ["adapter: unknown adapter 'nope' (known: tiny-lora)"]),
    "cli: unknown source": (lambda r: None, ("data", "manifest", "nope"),
                            ["source: unknown source 'nope' (known: acme-fw)"]),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_named_in_kiki_bots_words_and_changes_no_byte(project, cli, case):
    breaks, command, words, *code = CASES[case]
    assert cli(*RENDER, "-C", project).code == 0
    breaks(project)
    before = snapshot(project)
    res = cli(*(str(a).replace("{root}", str(project)) for a in COMMANDS.get(command, command)), "-C", project)
    assert res.code == (code[0] if code else 2), res.err
    for word in words:
        assert word in res.err, (word, res.err)
    for word in PYDANTIC_WORDS:
        assert word not in res.err, (word, res.err)
    assert "Traceback" not in res.err
    assert snapshot(project) == before


def test_the_table_covers_every_file_kind():
    kinds = {case.split(":")[0] for case in CASES}
    assert kinds == {"kiki", "source", "adapter", "record", "manifest", "card", "ledger", "cli"}
    assert len(CASES) >= 40


def test_a_misspelt_key_is_one_problem_not_a_missing_key_too(project, cli):
    """pydantic reports `smee` as extra and `sme` as missing; the user made one mistake."""
    edit_toml(project / "kiki.toml", "sme = true", "smee = true")
    res = cli(*RENDER, "-C", project)
    assert res.code == 2
    assert res.err.count("\n") == 1 and "`provider.sme`" not in res.err, res.err
