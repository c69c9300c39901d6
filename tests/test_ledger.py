"""The removal ledger: chain, verification down to single bytes, and the views built on it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kiki_bot.core import ledger
from kiki_bot.repo import ledgerfile
from kiki_bot.core.canonical import canonical_json
from kiki_bot.core.errors import BadInput, CheckFailed

T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
H = "ab" * 32


def _ref(issue: int) -> dict:
    return {"id": f"R-{issue}", "issue": issue}


def _requested(path: Path, issue: int, at: dt.datetime, adapters: tuple[str, ...] = ("cpp",)) -> ledger.Entry:
    return ledgerfile.append_once(
        path,
        "requested",
        _ref(issue),
        "alice",
        at,
        selectors=["alice/blink"],
        body_sha256=H,
        deadline=at + 30 * DAY,
        adapters=list(adapters),
    )[0]


def _purged(
    path: Path, issue: int, at: dt.datetime, records: list, adapters: tuple[str, ...] = ("cpp",)
) -> None:
    ledgerfile.append_once(path, "approved", _ref(issue), "maintainer", at)
    ledgerfile.append_once(path, "purged", _ref(issue), "kiki-bot[bot]", at, records=records, adapters=list(adapters))


def _released(path: Path, issue: int, at: dt.datetime, adapter: str = "cpp", version: str = "0.4.5") -> None:
    ledgerfile.append_once(path, "released", _ref(issue), "kiki-bot[bot]", at, ("adapter", "version"),
                           adapter=adapter, version=version, train_sha256="a" * 64, adapter_sha256="b" * 64)


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """Three entries: requested, approved, purged (one record)."""
    path = tmp_path / "compliance" / "removals.jsonl"
    _requested(path, 1, T0)
    _purged(path, 1, T0 + DAY, [["esp-idf", 17, "cd" * 32]])
    return path


def _problem(path: Path) -> str:
    with pytest.raises(CheckFailed) as info:
        ledgerfile.verify(path)
    assert info.value.problems == [str(info.value).removeprefix("removal ledger is broken at ")]
    return str(info.value)


def test_append_chains_entries_and_read_returns_them(small: Path) -> None:
    entries = ledgerfile.read(small)
    assert [e.seq for e in entries] == [1, 2, 3]
    assert [e.event for e in entries] == ["requested", "approved", "purged"]
    assert entries[0].prev_hash == ledger.GENESIS
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    for line, entry in zip(small.read_bytes().splitlines(), entries, strict=True):
        obj = json.loads(line)
        assert line == canonical_json(obj)
        assert obj["hash"] == ledger.entry_hash(obj) == entry.hash
    ledgerfile.verify(small)


def test_missing_ledger_is_empty_and_valid(tmp_path: Path) -> None:
    assert ledgerfile.read(tmp_path / "none.jsonl") == []
    ledgerfile.verify(tmp_path / "none.jsonl")


def test_times_are_stored_in_utc(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    paris = T0.astimezone(ZoneInfo("Europe/Paris"))
    entry = _requested(path, 5, paris)
    assert entry.at == T0 and entry.at.tzinfo == dt.UTC
    assert json.loads(path.read_text())["at"] == "2025-03-01T09:00:00Z"


def test_every_changed_byte_is_caught_at_its_own_line(small: Path) -> None:
    data = small.read_bytes()
    for pos in range(len(data)):
        line = data[:pos].count(b"\n") + 1
        small.write_bytes(data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1 :])
        assert f"removals.jsonl:{line} (entry seq {line})" in _problem(small), pos


def test_truncated_last_line(small: Path) -> None:
    data = small.read_bytes()
    for cut in (1, 20):  # a torn append: only the newline, or part of the JSON, missing
        small.write_bytes(data[:-cut])
        assert "removals.jsonl:3 (entry seq 3): truncated last line" in _problem(small)
        with pytest.raises(BadInput, match=r"removals.jsonl:3: truncated last line"):
            ledgerfile.read(small)
        with pytest.raises(CheckFailed):  # never chain onto a torn line
            _released(small, 1, T0)


def test_seq_gap_when_a_line_is_dropped(small: Path) -> None:
    lines = small.read_bytes().splitlines(keepends=True)
    small.write_bytes(lines[0] + lines[2])
    assert "removals.jsonl:2 (entry seq 2): seq is 3, expected 2" in _problem(small)


def test_reordered_lines(small: Path) -> None:
    lines = small.read_bytes().splitlines(keepends=True)
    small.write_bytes(lines[0] + lines[2] + lines[1])
    assert "removals.jsonl:2 (entry seq 2): seq is 3" in _problem(small)


def test_rehashed_edit_breaks_the_next_link(small: Path) -> None:
    lines = small.read_bytes().splitlines()
    obj = json.loads(lines[0])
    obj["selectors"] = ["someone-else"]
    obj["hash"] = ledger.entry_hash(obj)
    small.write_bytes(b"\n".join([canonical_json(obj), *lines[1:]]) + b"\n")
    assert "removals.jsonl:2 (entry seq 2): broken chain" in _problem(small)


def test_blank_and_non_canonical_lines(small: Path) -> None:
    lines = small.read_bytes().splitlines(keepends=True)
    small.write_bytes(lines[0] + b"\n" + lines[1] + lines[2])
    assert "removals.jsonl:2 (entry seq 2): not valid JSON" in _problem(small)
    spaced = json.dumps(json.loads(lines[1])).encode() + b"\n"
    small.write_bytes(lines[0] + spaced + lines[2])
    assert "removals.jsonl:2 (entry seq 2): not canonical JSON" in _problem(small)


@pytest.mark.parametrize(
    ("event", "ref", "actor", "fields", "problem"),
    [
        (
            "requested",
            _ref(2),
            "alice",
            {"selectors": ["x"], "body_sha256": H, "adapters": []},
            "needs deadline",
        ),
        ("approved", _ref(2), "bob", {"records": [["s", 1, H]]}, "records not allowed"),
        ("approved", _ref(2), "bob@example.org", {}, "actor"),
        ("approved", _ref(2), "Jane Doe", {}, "actor"),
        ("approved", {"id": "R-3", "issue": 2}, "bob", {}, "R-<issue>"),
        ("approved", {"id": "P-abc123", "issue": 2}, "bob", {}, "R-<issue>"),
        ("released", _ref(2), "bob", {"adapter": "cpp", "train_sha256": H, "adapter_sha256": H}, "needs version"),
        ("released", _ref(2), "bob", {"adapter": "cpp", "version": "1.0.0"}, "needs adapter_sha256, train_sha256"),
        ("deadline_missed", _ref(2), "bob", {"adapter": "cpp", "fallback": "delete"}, "fallback"),
        (
            "purged",
            _ref(2),
            "bob",
            {"records": [["s", -1, H]], "adapters": ["cpp"]},
            r"records\[0\]\[1\]: expected a number at least 0",
        ),
        ("approved", _ref(2), "bob", {"colour": "red"}, "colour"),
    ],
)
def test_bad_entries_are_refused(
    tmp_path: Path, event: str, ref: dict, actor: str, fields: dict, problem: str
) -> None:
    path = tmp_path / "r.jsonl"
    with pytest.raises(BadInput, match=problem):
        ledgerfile.append_once(path, event, ref, actor, T0, **fields)  # type: ignore[arg-type]
    assert not path.exists()


def test_naive_time_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="timezone"):
        ledgerfile.append_once(tmp_path / "r.jsonl", "approved", _ref(2), "bob", dt.datetime(2025, 3, 1))


def test_read_names_the_line_of_an_invalid_entry(small: Path) -> None:
    obj = json.loads(small.read_bytes().splitlines()[1])
    obj["event"] = "forgotten"
    small.write_bytes(small.read_bytes() + canonical_json(obj) + b"\n")
    with pytest.raises(BadInput, match=r"removals.jsonl:4: not a valid ledger entry \(event: "):
        ledgerfile.read(small)


def test_private_request_and_find(small: Path) -> None:
    private = {"id": "P-1f2e3d4c5b6a", "issue": None}
    ledgerfile.append_once(small, "rejected", private, "private", T0, reason="not our data")
    entries = ledgerfile.read(small)
    assert ledger.find(entries, "rejected", "P-1f2e3d4c5b6a", reason="not our data") is entries[-1]
    assert ledger.find(entries, "rejected", "P-1f2e3d4c5b6a", reason="other") is None
    assert ledger.find(entries, "purged", "R-1", adapters=["cpp"]) is entries[2]
    assert ledger.find(entries, "released", "R-1") is None


def test_derived_views(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    _requested(path, 1, T0, adapters=("cpp", "rust"))
    _purged(
        path, 1, T0 + DAY, [["esp-idf", 17, "cd" * 32], ["blogs", 3, "ef" * 32]], adapters=("cpp", "rust")
    )
    _released(path, 1, T0 + 10 * DAY, adapter="cpp")
    _requested(path, 2, T0 + DAY)
    ledgerfile.append_once(path, "rejected", _ref(2), "maintainer", T0 + 2 * DAY, reason="not our data")
    _requested(path, 3, T0 + 2 * DAY)
    ledgerfile.append_once(path, "approved", _ref(3), "maintainer", T0 + 3 * DAY)
    entries = ledgerfile.read(path)

    assert ledger.blocklist(entries) == {"cd" * 32, "ef" * 32}
    assert ledger.purged_keys(entries) == {("esp-idf", 17), ("blogs", 3)}
    states = ledger.request_state(entries)
    one = states["R-1"]
    assert (one.status, one.pending, one.deadline) == ("purged", ("rust",), T0 + 30 * DAY)
    assert one.by_adapter == {"cpp": "released", "rust": "purged"}
    assert one.released == {"cpp": ("0.4.5", T0 + 10 * DAY)}
    assert (states["R-2"].status, states["R-2"].pending) == ("rejected", ())
    assert (states["R-3"].status, states["R-3"].decided_at, states["R-3"].pending) == (
        "approved",
        T0 + 3 * DAY,
        (),
    )

    _released(path, 1, T0 + 12 * DAY, adapter="rust")
    assert ledger.request_state(ledgerfile.read(path))["R-1"].status == "released"


def test_removal_stats(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    assert ledger.removal_stats([], "cpp", ["0.4.5"])["median_days_to_release"] is None
    for issue, days in ((1, 10), (2, 25), (3, 20.5)):
        opened = T0 + issue * DAY
        _requested(path, issue, opened)
        _purged(path, issue, opened + DAY, [["esp-idf", issue, "cd" * 32], ["blogs", issue, "ef" * 32]])
        _released(path, issue, opened + days * DAY)
    _requested(path, 4, T0)
    ledgerfile.append_once(path, "rejected", _ref(4), "maintainer", T0)
    _requested(path, 5, T0)
    _requested(path, 6, T0, adapters=("rust",))
    ledgerfile.append_once(
        path, "deadline_missed", _ref(3), "kiki-bot[bot]", T0 + 40 * DAY, adapter="cpp", fallback="gate"
    )
    entries = ledgerfile.read(path)

    assert ledger.removal_stats(entries, "cpp", ["0.4.5"]) == {
        "requests_received": 5,
        "approved": 3,
        "rejected": 1,
        "records_removed": 6,
        "deadlines_missed": 1,
        "median_days_to_release": 20.5,
        "longest_days_to_release": 25.0,
    }
    assert ledger.removal_stats(entries, "cpp", ["0.4.5"], sources={"esp-idf"})["records_removed"] == 3
    assert ledger.removal_stats(entries, "rust", ["0.4.5"])["longest_days_to_release"] is None
    # v0.4.5's review PR merged (the `released` entries) but publish never ran: no day to release is claimed
    unpublished = ledger.removal_stats(entries, "cpp", ["0.4.4"])
    assert unpublished["median_days_to_release"] is None and unpublished["longest_days_to_release"] is None


def test_append_once_under_concurrency_appends_one_entry(tmp_path):
    """Eight threads at once, each checking then appending the same step: the project lock makes it one."""
    import threading

    path = tmp_path / "compliance" / "removals.jsonl"
    _requested(path, 1, T0)
    barrier, appended = threading.Barrier(8), []

    def approve() -> None:
        barrier.wait()
        appended.append(ledgerfile.append_once(path, "approved", _ref(1), "maint", T0 + DAY)[1])

    threads = [threading.Thread(target=approve) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [e.event for e in ledgerfile.read(path)] == ["requested", "approved"] and appended.count(True) == 1
    ledgerfile.verify(path)
    # `once` names the fields that make a step distinct: a miss for another adapter is its own entry.
    for adapter in ("cpp", "cpp", "rust"):
        ledgerfile.append_once(path, "deadline_missed", _ref(1), "bot", T0, ["adapter"], adapter=adapter, fallback="gate")
    assert [e.adapter for e in ledgerfile.read(path) if e.event == "deadline_missed"] == ["cpp", "rust"]


def test_verify_holds_the_ledger_to_the_heads_cards_recorded(small: Path) -> None:
    entries = ledgerfile.read(small)
    assert ledger.head(entries) == (3, entries[-1].hash) and ledger.head([]) == (0, ledger.GENESIS)
    ledgerfile.verify(small, {"a": (3, entries[-1].hash), "b": (1, entries[0].hash), "c": (0, ledger.GENESIS)})
    with pytest.raises(CheckFailed) as info:
        ledgerfile.verify(small, {"a": (4, H), "b": (2, H), "c": (0, H), "d": (3, entries[-1].hash)})
    assert info.value.problems == [
        f"a records ledger entry seq 4 ({H[:12]}…), but the ledger has only 3 entries: entries were removed",
        f"b records ledger entry seq 2 as {H[:12]}…, but that entry is now {entries[1].hash[:12]}…: "
        "the ledger was rewritten",
        "c records ledger seq 0 with a hash that is not zeros",
    ]


def test_once_finds_or_chains_an_entry_in_memory_as_the_file_would(small: Path) -> None:
    """The release builds its review PR's ledger from bytes: the chained entry is the one append would write."""
    data = small.read_bytes()
    entries = ledger.verified(data, "main:compliance/removals.jsonl")
    fields = {"adapter": "cpp", "version": "0.4.5", "train_sha256": "a" * 64, "adapter_sha256": "b" * 64}
    entry, new = ledger.once(entries, "released", _ref(1), "kiki-bot[bot]", T0 + 2 * DAY, "x", ("version",), **fields)
    assert new and entry.seq == 4 and entries[-1] == entry and small.read_bytes() == data  # nothing written
    again, new = ledger.once(entries, "released", _ref(1), "kiki-bot[bot]", T0 + 3 * DAY, "x", ("version",), **fields)
    assert not new and again == entry and len(entries) == 4
    ledgerfile.append_once(small, "released", _ref(1), "kiki-bot[bot]", T0 + 2 * DAY, **fields)
    assert small.read_bytes() == data + ledger.line(entry).encode() + b"\n"


def test_verified_names_where_the_bytes_came_from(small: Path) -> None:
    lines = small.read_bytes().splitlines(keepends=True)
    edited = lines[0] + lines[1].replace(b"maintainer", b"mallory") + lines[2]
    with pytest.raises(CheckFailed, match=r"main:compliance/removals\.jsonl:2 \(entry seq 2\): hash mismatch"):
        ledger.verified(edited, "main:compliance/removals.jsonl")
