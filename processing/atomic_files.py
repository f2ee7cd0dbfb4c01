"""Atomic file writes: write a uniquely named temporary sibling, then rename it over the target, so a reader
(or a resumed job) never sees a half-written file and concurrent writers never share a temporary file."""

from __future__ import annotations

import json
import os
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


__all__ = ["write_atomically", "write_json_atomic", "write_text_atomic"]
