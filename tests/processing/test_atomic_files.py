"""Atomic writes: the target is replaced whole or not at all, and no temporary file is left behind."""

import json
import os

import pytest

from vidtempo.processing.atomic_files import write_atomically, write_json_atomic, write_text_atomic


def test_writes_creates_parents_and_replaces(tmp_path):
    target = tmp_path / "a" / "b" / "x.json"
    write_json_atomic(target, {"k": [1, 2]})
    assert json.loads(target.read_text()) == {"k": [1, 2]}
    write_json_atomic(target, {"k": 3}, indent=2)
    assert target.read_text() == json.dumps({"k": 3}, indent=2)
    assert os.listdir(target.parent) == ["x.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "x.txt"
    write_text_atomic(target, "old")
    with pytest.raises(TypeError):
        write_json_atomic(target, {"bad": object()})  # not serialisable: fails before touching anything
    real_replace = os.replace

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(target, "new")  # the temporary file was written, the rename failed
    monkeypatch.setattr(os, "replace", real_replace)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["x.txt"]


def test_a_writer_that_fails_halfway_keeps_the_old_file(tmp_path):
    target = tmp_path / "shard.bin"
    write_atomically(target, lambda temporary: temporary.write_bytes(b"old"))

    def half_then_crash(temporary):
        temporary.write_bytes(b"ne")  # a partial file exists when the writer fails
        raise RuntimeError("writer died")

    with pytest.raises(RuntimeError, match="writer died"):
        write_atomically(target, half_then_crash)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["shard.bin"]


def test_write_folder_atomically_swaps_whole_folders(tmp_path):
    from vidtempo.processing.atomic_files import write_folder_atomically

    target = tmp_path / "model"
    write_folder_atomically(target, lambda folder: (folder / "a.txt").write_text("old"))
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    write_folder_atomically(target, lambda folder: (folder / "b.txt").write_text("new"))
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]  # replaced, not merged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary or old folder left


def test_a_failed_folder_write_leaves_the_old_folder(tmp_path):
    from vidtempo.processing.atomic_files import write_folder_atomically

    target = tmp_path / "model"
    write_folder_atomically(target, lambda folder: (folder / "a.txt").write_text("old"))

    def fails(folder):
        (folder / "half.txt").write_text("x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_folder_atomically(target, fails)
    assert (target / "a.txt").read_text() == "old" and not (target / "half.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_processing_writes_no_temp_and_rename_of_its_own():
    """`write_atomically` is the one mechanism: no other processing/ module renames files into place."""
    import re
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "processing"
    pattern = re.compile(
        r"os\.replace\(|os\.rename\(|\.rename\(|\.replace\(\s*[\w.]*path|mkstemp|NamedTemporaryFile"
    )
    offenders = [
        p.name for p in folder.glob("*.py") if p.name != "atomic_files.py" and pattern.search(p.read_text())
    ]
    assert offenders == []
