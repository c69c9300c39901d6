"""The Hub emulator takes files as the Hub does (issue 14, point 7): over 10 MB, or tracked by LFS in the
repository's .gitattributes, only through the git-LFS batch API, never inline in the commit; and its answers
carry what the Hub sends (checked over everything it served in the session, last)."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import urllib.error
import urllib.request

import pytest
from emulator_fixtures import HUB_SERVER
from openapi_conformance import SUMMARY, session_exchanges

from kiki_bot.demo.emulators.hub import LFS_THRESHOLD, lfs_pointer
from kiki_bot.demo.emulators.recorder import Exchange

BIG = bytes(range(256)) * (LFS_THRESHOLD // 256 + 4096)  # 11 MiB: over the Hub's 10 MB limit for inline files


def test_a_file_over_10_mb_goes_through_lfs_and_comes_back_whole(hub, hf_api) -> None:
    from huggingface_hub import CommitOperationAdd, hf_hub_download

    hub.create_repo("org/model")
    hf_api.create_commit("org/model", [CommitOperationAdd("data/big.jsonl", BIG),
                                       CommitOperationAdd("notes.txt", b"small\n")], commit_message="c1")

    oid = hashlib.sha256(BIG).hexdigest()
    batch = [r for r in hub.requests if r.path.endswith(".git/info/lfs/objects/batch")]
    assert [o["oid"] for o in batch[0].json["objects"]] == [oid]
    assert [r.method for r in hub.requests if f"/lfs/objects/{oid}" in r.path] == ["PUT"]
    commit = next(r for r in hub.requests if "/commit/" in r.path)
    lines = {line["value"]["path"]: line for line in commit.json[1:]}
    assert lines["data/big.jsonl"] == {"key": "lfsFile", "value": {"path": "data/big.jsonl", "algo": "sha256",
                                                                     "oid": oid, "size": len(BIG)}}
    assert lines["notes.txt"]["key"] == "file"

    repo = hub.repo("org/model")
    main = repo.history[repo.branches["main"]]
    assert main.files["data/big.jsonl"] == lfs_pointer(oid, len(BIG))  # git holds the pointer, as on the Hub
    assert repo.files()["data/big.jsonl"] == BIG
    path = hf_hub_download("org/model", "data/big.jsonl")
    with open(path, "rb") as downloaded:
        assert downloaded.read() == BIG
    entry = next(e for e in hf_api.list_repo_tree("org/model", "data"))
    assert (entry.size, entry.lfs.sha256, entry.lfs.size) == (len(BIG), oid, len(BIG))
    sibling = next(s for s in hf_api.model_info("org/model", files_metadata=True).siblings
                   if s.rfilename == "data/big.jsonl")
    assert (sibling.size, sibling.lfs.sha256) == (len(BIG), oid)

    hub.requests.clear()  # the same content again: the batch says it is stored, so no upload and no commit
    hf_api.create_commit("org/model", [CommitOperationAdd("data/big.jsonl", BIG)], commit_message="c2")
    assert not [r for r in hub.requests if r.method == "PUT" or "/commit/" in r.path]


def test_a_file_tracked_by_lfs_in_gitattributes_goes_through_lfs_whatever_its_size(hub, hf_api) -> None:
    from huggingface_hub import CommitOperationAdd

    hub.create_repo("org/model")  # the Hub's initial .gitattributes tracks *.safetensors with LFS
    hf_api.create_commit("org/model", [CommitOperationAdd("adapters.safetensors", b"\0" * 1000)],
                         commit_message="weights")
    commit = next(r for r in hub.requests if "/commit/" in r.path)
    assert [line["key"] for line in commit.json[1:]] == ["lfsFile"]
    assert hub.repo("org/model").files()["adapters.safetensors"] == b"\0" * 1000


def _commit(lines: list[dict]) -> tuple[int, dict]:
    """POST an NDJSON commit to org/model's main as a client that ignores preupload would: (status, answer)."""
    request = urllib.request.Request(
        f"{HUB_SERVER.url}/api/models/org/model/commit/main", data="\n".join(map(json.dumps, lines)).encode(),
        headers={"Authorization": "Bearer hf_emulator_token", "Content-Type": "application/x-ndjson"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


HEADER = {"key": "header", "value": {"summary": "c", "description": ""}}


@pytest.mark.parametrize("size", [LFS_THRESHOLD + 1, len(BIG)])
def test_a_file_over_10_mb_sent_inline_is_refused_and_nothing_is_committed(hub, size: int) -> None:
    hub.create_repo("org/model")
    head = hub.repo("org/model").branches["main"]
    inline = {"path": "big.bin", "encoding": "base64", "content": base64.b64encode(BIG[:size]).decode()}
    status, answer = _commit([HEADER, {"key": "file", "value": inline}])
    assert status == 400 and "larger than 10 MiB" in answer["error"] and "LFS" in answer["error"]
    assert hub.repo("org/model").branches["main"] == head


def test_an_lfs_commit_line_for_content_never_uploaded_is_refused(hub) -> None:
    hub.create_repo("org/model")
    line = {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": "0" * 64, "size": 5}}
    status, answer = _commit([HEADER, line])
    assert status == 400 and "was not uploaded" in answer["error"]


HUB_ANSWERS: list[tuple[str, str, frozenset[str], frozenset[str]]] = [
    # method, path (regex), keys of the answer, keys of each item of its list (`files`, `objects`, or the list)
    ("GET", r"/api/whoami-v2", frozenset({"type", "id", "name", "fullname", "email", "emailVerified", "canPay",
                                          "isPro", "periodEnd", "avatarUrl", "orgs", "auth"}), frozenset()),
    ("POST", r"/api/repos/create", frozenset({"url", "name", "id"}), frozenset()),
    ("GET", r"/api/models/[^/]+/[^/]+(/revision/[^/]+)?", frozenset({
        "_id", "id", "modelId", "author", "sha", "lastModified", "createdAt", "private", "gated", "disabled",
        "downloads", "likes", "tags", "library_name", "pipeline_tag", "cardData", "siblings", "spaces",
        "usedStorage"}), frozenset({"rfilename"})),
    ("GET", r"/api/datasets/[^/]+/[^/]+(/revision/[^/]+)?", frozenset({
        "_id", "id", "author", "sha", "lastModified", "createdAt", "private", "gated", "disabled", "downloads",
        "likes", "tags", "cardData", "siblings", "usedStorage"}), frozenset({"rfilename"})),
    ("POST", r"/api/\w+/[^/]+/[^/]+/preupload/[^/]+", frozenset({"files", "commitOid"}),
     frozenset({"path", "uploadMode", "shouldIgnore"})),
    ("POST", r"/api/\w+/[^/]+/[^/]+/commit/[^/]+", frozenset({"success", "commitOid", "commitUrl", "hookOutput",
                                                              "pullRequestUrl"}), frozenset()),
    ("GET", r"/api/\w+/[^/]+/[^/]+/refs", frozenset({"branches", "tags", "converts"}),
     frozenset({"name", "ref", "targetCommit"})),
    ("GET", r"/api/\w+/[^/]+/[^/]+/tree/.+", frozenset(), frozenset({"type", "oid", "size", "path"})),
    ("GET", r"/api/\w+/[^/]+/[^/]+/commits/[^/]+", frozenset(),
     frozenset({"id", "title", "message", "authors", "date"})),
    ("POST", r"/(datasets/)?[^/]+/[^/]+\.git/info/lfs/objects/batch", frozenset({"transfer", "objects"}),
     frozenset({"oid", "size", "authenticated"})),
]
"""What the Hub sends in the answers huggingface_hub reads (shared/reference/hub-and-github-apis.md part A;
huggingface_hub 2.4.0's ModelInfo, DatasetInfo, RepoFile, GitCommitInfo, GitRefs, CommitInfo and LFS batch
parsers), for every successful answer of those routes."""


def _items(answer: object) -> list:
    if isinstance(answer, list):
        return answer
    if isinstance(answer, dict):
        for key in ("files", "objects", "siblings", "branches"):
            if isinstance(answer.get(key), list):
                return answer[key]
    return []


def hub_findings(exchanges: list[Exchange]) -> tuple[int, list[str]]:
    """(answers checked, what they lack of what the Hub sends)."""
    checked, findings = 0, []
    for exchange in exchanges:
        if not 200 <= exchange.status < 300:
            continue
        if "/resolve/" in exchange.path:
            wanted = {"X-Repo-Commit", "ETag", "Content-Length"}
            if exchange.headers.get("X-Linked-Size"):
                wanted.add("X-Linked-Etag")
            missing = wanted - set(exchange.headers)
        else:
            spec = next((s for s in HUB_ANSWERS if s[0] == exchange.method and re.fullmatch(s[1], exchange.path)),
                        None)
            if spec is None:
                continue
            answer = exchange.response
            missing = set(spec[2] - set(answer)) if isinstance(answer, dict) else set()
            for item in _items(answer):
                missing |= spec[3] - set(item)
        checked += 1
        if missing:
            findings.append(f"{exchange.method} {exchange.path} -> {exchange.status}: lacks {sorted(missing)}")
    return checked, findings


def test_every_hub_answer_huggingface_hub_reads_carries_what_the_hub_sends() -> None:
    """Runs last (tests/conftest.py): every such answer the Hub emulator gave in this session."""
    checked, findings = hub_findings(session_exchanges("hub", at_least=200))
    SUMMARY.append(f"Hub answers: {checked} answers huggingface_hub reads checked for the fields the Hub sends; "
                   f"{len(findings)} lacking")
    assert not findings, f"{len(findings)} answer(s), first 30:\n" + "\n".join(findings[:30])
