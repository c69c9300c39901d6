"""What kiki-bot writes: new files get the umask's mode (as `open()` would give them), rewritten files keep
theirs, and a command that writes several files writes all of them or none."""

from __future__ import annotations

import os
import stat

import pytest
from factory import adapter, make_project, record, snapshot, source, write_jsonl

from kiki_bot.repo import storage

RENDER = ("card", "render", "--version", "0.1.0", "--date", "2026-05-06", "-C")


@pytest.fixture
def umask():
    """Set the process umask for one test, and put the old one back."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def modes(root):
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode)
            for p in root.rglob("*") if p.is_file() and ".kiki" not in p.parts}


@pytest.mark.parametrize("mask", [0o022, 0o077], ids=["umask-022", "umask-077"])
def test_init_gives_every_new_file_the_umask_mode(tmp_path, cli, umask, mask):
    umask(mask)
    root = tmp_path / "repo"
    root.mkdir()
    assert cli("init", root, "--ref", "a" * 40).code == 0
    found = modes(root)
    assert {".gitignore", "kiki.toml", "cards/example-lora/README.md", "data/example-source/MANIFEST.json",
            ".github/workflows/kiki-release.yml"} <= set(found)
    assert set(found.values()) == {0o666 & ~mask}, found


@pytest.mark.parametrize("mask", [0o022, 0o077], ids=["umask-022", "umask-077"])
def test_rewritten_files_keep_their_mode(tmp_path, cli, umask, mask):
    umask(mask)
    root = tmp_path / "repo"
    root.mkdir()
    (root / ".gitignore").write_text("*.pyc\n")
    (root / ".gitignore").chmod(0o640)
    assert cli("init", root, "--ref", "a" * 40).code == 0
    assert (root / ".gitignore").read_text() == "*.pyc\n.kiki/\n"
    readme = root / "cards" / "example-lora" / "README.md"
    readme.chmod(0o640)
    readme.write_text("hand-edited\n")
    assert cli("card", "render", "-C", root).code == 0
    assert readme.read_text() != "hand-edited\n"
    assert stat.S_IMODE((root / ".gitignore").stat().st_mode) == 0o640
    assert stat.S_IMODE(readme.stat().st_mode) == 0o640


def test_write_files_leaves_no_temp_file_and_skips_unchanged(tmp_path, umask):
    umask(0o022)
    same, new = tmp_path / "same.txt", tmp_path / "sub" / "new.txt"
    same.write_bytes(b"x")
    same.chmod(0o600)
    before = same.stat().st_mtime_ns
    assert storage.write_files({same: b"x", new: b"y"}) == [new]
    assert same.stat().st_mtime_ns == before and new.read_bytes() == b"y"
    assert stat.S_IMODE(new.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["new.txt", "same.txt", "sub"]


def test_write_files_changes_nothing_when_one_file_cannot_be_staged(tmp_path):
    ok, blocked = tmp_path / "ok.txt", tmp_path / "blocker" / "x.txt"
    ok.write_bytes(b"old")
    (tmp_path / "blocker").write_text("a file where a directory should be")
    before = snapshot(tmp_path)
    with pytest.raises(OSError):
        storage.write_files({ok: b"new", blocked: b"x"})
    assert snapshot(tmp_path) == before


def test_data_manifest_writes_every_manifest_or_none(tmp_path, cli):
    """A bad record in the second source used to leave the first source's manifest rewritten."""
    root = make_project(tmp_path / "repo", sources={"a-src": source("2.1"), "b-src": source("2.1")})
    write_jsonl(root / "data" / "a-src" / "part-001.jsonl", [record("a-src", 100, "new")])
    write_jsonl(root / "data" / "b-src" / "part-000.jsonl", [record("b-src", 0, "x"), {"text": "no provenance"}])
    before = snapshot(root)
    res = cli("data", "manifest", "-C", root)
    assert res.code == 2, res.err
    assert "b-src/part-000.jsonl:2: missing `_provenance` object" in res.err
    assert snapshot(root) == before


def test_card_render_writes_every_adapter_or_none(tmp_path, cli):
    """One adapter's manifest mismatch used to fail after the other adapter's card was written."""
    root = make_project(tmp_path / "repo", sources={"a-src": source("2.1"), "b-src": source("2.1")},
                        adapters={"a-lora": adapter(["a-src"]), "b-lora": adapter(["b-src"])})
    assert cli(*RENDER, root).code == 0
    path = root / "data" / "b-src" / "part-000.jsonl"
    path.write_text(path.read_text().replace("return 3;", "return 4;"))
    before = snapshot(root)
    res = cli("card", "render", "--version", "0.2.0", "--date", "2026-06-01", "-C", root)
    assert res.code == 2, res.err
    assert "b-src/part-000.jsonl" in res.err and "MANIFEST.json" in res.err
    assert snapshot(root) == before
