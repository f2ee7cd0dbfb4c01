"""Captions tables for video–text data: `load_caption_dataset` reads CSV / JSON / JSONL rows into a
`datasets.Dataset` of (video_id, video_path, start, end, caption). Videos stay paths; nothing is decoded here.

Columns: a path column (`video_path`, `path`, `video` or `file_name`; relative paths resolve against the
file's folder), `caption` (or `sentence` / `text`), optional `start` / `end` seconds (missing: the whole
video), optional `video_id` (default: the file stem) and `split`.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from pathlib import Path

import datasets

PATH_COLUMNS = ("video_path", "path", "video", "file_name")


def _read_rows(path: Path) -> list[dict]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        import csv

        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    if suffix == ".jsonl":
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            data = data.get("rows") or data.get("data") or data.get("annotations")
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of rows (or {{'rows': [...]}})")
        return data
    raise ValueError(f"{path}: unsupported captions file (expected .csv, .json or .jsonl)")


def _float(value, default: float, where: str, field: str) -> float:
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: field {field!r} must be a number of seconds, got {value!r}") from None


def load_caption_dataset(
    path: str | os.PathLike, split: str | None = None, unit: str = "segment", joiner: str = " then "
) -> datasets.Dataset:
    """Rows (video_id, video_path, start, end, caption) of a captions CSV/JSON/JSONL.

    Columns: a path column (`video_path`, `path`, `video` or `file_name`; relative paths are resolved
    against the file's folder), `caption` (or `sentence`/`text`), optional `start`/`end` seconds (missing:
    the whole video, end = inf), optional `video_id` (default: the file stem) and `split` (kept when
    `split` is given). `unit="video"` merges each video's rows into one whole-video row whose caption joins
    the captions in start-time order with `joiner`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: captions file not found")
    if unit not in ("segment", "video"):
        raise ValueError(f"unit must be 'segment' or 'video', got {unit!r}")
    rows = []
    for number, raw in enumerate(_read_rows(path), start=1):
        where = f"{path} row {number}"
        video = next((raw[c] for c in PATH_COLUMNS if raw.get(c)), None)
        caption = next((raw[c] for c in ("caption", "sentence", "text") if raw.get(c) is not None), None)
        if video is None:
            raise ValueError(f"{where}: no video path (expected one of the columns {list(PATH_COLUMNS)})")
        if caption is None or not str(caption).strip():
            raise ValueError(f"{where}: empty or missing 'caption'")
        if split is not None and raw.get("split", split) != split:
            continue
        video_path = Path(video) if Path(video).is_absolute() else path.parent / video
        start = _float(raw.get("start"), 0.0, where, "start")
        end = _float(raw.get("end"), math.inf, where, "end")
        if not end > start:
            raise ValueError(f"{where}: need start < end, got start={start} end={end}")
        rows.append(
            {
                "video_id": str(raw.get("video_id") or video_path.stem),
                "video_path": str(video_path),
                "start": start,
                "end": end,
                "caption": str(caption).strip(),
            }
        )
    if unit == "video":
        grouped: dict[str, list[dict]] = defaultdict(list)
        for row in rows:
            grouped[row["video_path"]].append(row)
        rows = [
            {
                "video_id": group[0]["video_id"],
                "video_path": video_path,
                "start": 0.0,
                "end": math.inf,
                "caption": joiner.join(r["caption"] for r in sorted(group, key=lambda r: r["start"])),
            }
            for video_path, group in grouped.items()
        ]
    if not rows:
        raise ValueError(f"{path}: no rows" + (f" with split == {split!r}" if split else ""))
    return datasets.Dataset.from_list(rows)
