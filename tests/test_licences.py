"""Licence ids and expressions against the SPDX list that license-expression ships."""

from __future__ import annotations

import threading

import pytest

from kiki_bot.core import licences

EXPRESSIONS = ["MIT", "Apache-2.0", "MIT OR Apache-2.0", "BSD-3-Clause AND MIT",
               "GPL-2.0-only WITH Classpath-exception-2.0", "CC0-1.0", "LicenseRef-x"]


@pytest.mark.parametrize("text, words", [
    ("Apache2", "`Apache2` is not an SPDX licence id (did you mean `Apache-2.0`?)"),
    ("PSF 2.0", "(did you mean `PSF-2.0`?)"),
    ("llama3", "write the Hub's `llama3` licence as LicenseRef-llama3"),
    ("Zzqx", "a licence outside the SPDX list is written LicenseRef-<name>"),
    ("MIT AND", "`MIT AND` is not a valid SPDX licence expression"),
])
def test_unknown_ids_are_named_with_the_closest_one(text, words):
    with pytest.raises(ValueError) as exc:
        licences.parse(text)
    assert words in str(exc.value)


def test_licence_refs_parse_and_map_to_the_hubs_ids():
    assert licences.valid("LicenseRef-llama3") and licences.valid("DocumentRef-x:LicenseRef-y")
    assert licences.hub_license("LicenseRef-llama3") == ("llama3", None)
    assert licences.hub_license("LicenseRef-in-house") == ("other", "in-house")


def _parse_all(start: int, failures: list[str]) -> None:
    for text in EXPRESSIONS[start % len(EXPRESSIONS):] + EXPRESSIONS:
        try:
            licences.parse(text)
        except Exception as exc:  # noqa: BLE001  any failure is the finding
            failures.append(repr(exc))


def test_threads_parsing_their_first_expressions_at_once_get_the_same_answers():
    """license-expression builds its parser lazily; concurrent first parses used to fail at random."""
    for _ in range(5):
        licences._licensing.cache_clear()
        licences.parse.cache_clear()
        failures: list[str] = []
        threads = [threading.Thread(target=_parse_all, args=(i, failures)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
