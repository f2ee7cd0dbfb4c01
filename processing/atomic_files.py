"""Atomic writes, the one mechanism: write a uniquely named temporary sibling, then rename it over the target,
so a reader (or a resumed job) never sees a half-written file or folder and concurrent writers never share a
temporary. Files: `write_atomically`; folders (saved models, checkpoints, published repos):
`write_folder_atomically`, or `replace_folder` when several processes fill one temporary folder."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """`write(temporary_path)`, then rename the temporary file over `path` (parent folders are created). The
    temporary name ends in `.tmp`, so writers that infer a format from the suffix must be told it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` atomically (parent folders are created)."""
    return write_atomically(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def write_json_atomic(path: str | os.PathLike, payload, indent: int = 1) -> Path:
    """`json.dumps(payload, indent=indent)` written to `path` atomically."""
    return write_text_atomic(path, json.dumps(payload, indent=indent))


def replace_folder(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Rename the finished folder `source` to `target`. An existing `target` is first renamed aside and deleted
    only after the swap, so at every moment `target` is either the old folder or the new one, whole."""
    source, target = Path(source), Path(target)
    aside = None
    if target.exists():
        aside = target.with_name(f".{target.name}.{uuid.uuid4().hex}.old")
        os.replace(target, aside)
    try:
        os.replace(source, target)
    except BaseException:
        if aside is not None:
            os.replace(aside, target)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    return target


def write_folder_atomically(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """`write(temporary_folder)` (an empty folder), then `replace_folder` it over `path`. If `write` fails, the
    temporary folder is removed and `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temporary.mkdir()
    try:
        write(temporary)
        return replace_folder(temporary, path)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


__all__ = [
    "replace_folder",
    "write_atomically",
    "write_folder_atomically",
    "write_json_atomic",
    "write_text_atomic",
]
