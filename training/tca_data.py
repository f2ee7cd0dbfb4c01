"""Training data for TCA: related pairs plus random distractors over a descriptor folder.

Pairs come from VCDB's annotation (`video_pairs` / `negs` in `vcdb.json`) or from a user's own list:
a JSON list of `[id_a, id_b]` (or of `{"videos": [id_a, id_b]}`) or a CSV whose header names two id
columns (the first two columns are used). Ids missing from the descriptor folder are reported once
(a warning with counts and examples) and skipped.

Training clips are randomly cropped (or zero-padded) to `num_frames`; the randomness of item i in
epoch e comes from `numpy.random.default_rng([seed, e, i])`, so the data are reproducible and a resumed
run sees exactly the same batches.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..processing.descriptor_store import (
    PackedDescriptors,
    load_descriptors,
    pack_descriptors,
    packed_path,
    shard_files,
)

logger = logging.getLogger(__name__)


@dataclass
class PairList:
    """Related pairs and the pool of distractor ids."""

    pairs: list[tuple[str, str]]
    distractors: list[str] | None  # None: "every descriptor id not in a pair"


def _read_id_list(path: Path) -> list[str]:
    """Distractor ids: a JSON list, a JSON object with `negs`, or a text file with one id per line."""
    text = path.read_text()
    if path.suffix.lower() == ".json":
        data = json.loads(text)
        if isinstance(data, dict):
            if "negs" not in data:
                raise ValueError(f"{path}: a JSON object of distractors needs a 'negs' list")
            data = data["negs"]
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of distractor ids")
        return [str(x) for x in data]
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_pairs(path: str | os.PathLike, distractors: str | os.PathLike | None = None) -> PairList:
    """Read a pair file (VCDB JSON, JSON list or CSV) and, optionally, a distractor id file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pairs file not found: {path}")
    pairs: list[tuple[str, str]] = []
    negs: list[str] | None = None
    if path.suffix.lower() == ".csv":
        with path.open(newline="") as handle:
            rows = list(csv.reader(handle))
        if not rows or len(rows[0]) < 2:
            raise ValueError(f"{path}: expected a CSV with a header and at least two id columns")
        for line, row in enumerate(rows[1:], start=2):
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) < 2 or not row[0].strip() or not row[1].strip():
                raise ValueError(f"{path}:{line}: expected two video ids, got {row!r}")
            pairs.append((row[0].strip(), row[1].strip()))
    else:
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from error
        if isinstance(data, dict):
            if "video_pairs" not in data:
                raise ValueError(f"{path}: a JSON object needs a 'video_pairs' list (VCDB format)")
            negs = [str(x) for x in data.get("negs", [])] or None
            data = data["video_pairs"]
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a list of pairs")
        for index, item in enumerate(data):
            ids = item.get("videos") if isinstance(item, dict) else item
            if not isinstance(ids, (list, tuple)) or len(ids) != 2:
                raise ValueError(f"{path}: pair #{index} must be [id_a, id_b] or {{'videos': [id_a, id_b]}}")
            pairs.append((str(ids[0]), str(ids[1])))
    if not pairs:
        raise ValueError(f"{path}: no pairs found")
    if distractors is not None:
        negs = _read_id_list(Path(distractors))
    return PairList(pairs=pairs, distractors=negs)


def _warn_missing(kind: str, missing: list[str], total: int) -> None:
    if missing:
        examples = ", ".join(missing[:5])
        warnings.warn(
            f"{len(missing)} of {total} {kind} ids are not in the descriptor folder and are skipped "
            f"(e.g. {examples})",
            stacklevel=3,
        )


def resolve_pairs(pair_list: PairList, available: set[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """Drop pairs and distractors whose ids have no descriptors (one warning each, with counts) and
    self-pairs. Distractors default to every available id that is in no pair."""
    missing = sorted({v for pair in pair_list.pairs for v in pair if v not in available})
    _warn_missing("pair video", missing, len({v for pair in pair_list.pairs for v in pair}))
    missing_set = set(missing)
    pairs = [(a, b) for a, b in pair_list.pairs if a != b and a not in missing_set and b not in missing_set]
    seen: set[tuple[str, str]] = set()
    unique = []
    for a, b in pairs:
        key = (a, b) if a < b else (b, a)
        if key not in seen:
            seen.add(key)
            unique.append((a, b))
    in_pairs = {v for pair in unique for v in pair}
    if pair_list.distractors is None:
        distractors = sorted(available - in_pairs)
    else:
        absent = [v for v in pair_list.distractors if v not in available]
        _warn_missing("distractor", absent, len(pair_list.distractors))
        distractors = [
            v for v in dict.fromkeys(pair_list.distractors) if v in available and v not in in_pairs
        ]
    return unique, distractors


def split_pairs(
    pairs: list[tuple[str, str]], val_fraction: float, seed: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Hold out whole connected groups of related videos (so no validation video is seen in training)
    until about `val_fraction` of the pairs are held out."""
    if val_fraction <= 0:
        return list(pairs), []
    parent: dict[str, str] = {}

    def find(v: str) -> str:
        while parent.setdefault(v, v) != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    for a, b in pairs:
        parent[find(a)] = find(b)
    groups: dict[str, list[int]] = {}
    for index, (a, _) in enumerate(pairs):
        groups.setdefault(find(a), []).append(index)
    roots = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(roots))
    target = val_fraction * len(pairs)
    val_indices: set[int] = set()
    for position in order:
        if len(val_indices) >= target:
            break
        val_indices.update(groups[roots[position]])
    train = [p for i, p in enumerate(pairs) if i not in val_indices]
    val = [p for i, p in enumerate(pairs) if i in val_indices]
    return train, val


def crop_or_pad(
    features: np.ndarray, num_frames: int, rng: np.random.Generator | None
) -> tuple[np.ndarray, int]:
    """A random window of `num_frames` consecutive frames (the first window when `rng` is None), or the
    whole video zero-padded to `num_frames`. Returns (float32 [num_frames, D], number of real frames)."""
    length = features.shape[0]
    out = np.zeros((num_frames, features.shape[1]), dtype=np.float32)
    if length > num_frames:
        start = 0 if rng is None else int(rng.integers(0, length - num_frames + 1))
        out[:] = features[start : start + num_frames]
        return out, num_frames
    out[:length] = features
    return out, length


class _EpochSeeded:
    """Draws that depend on (seed, epoch): `set_epoch` (called by the loop each epoch) moves to new ones."""

    seed: int
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)


class TCAPairDataset(_EpochSeeded, Dataset):
    """Item i: (anchor, positive) of pair i, randomly swapped, and `num_negatives` random distractors,
    each cropped or padded to `num_frames`. Call `set_epoch` before each epoch."""

    def __init__(
        self,
        descriptors: Mapping[str, np.ndarray],
        pairs: list[tuple[str, str]],
        distractors: list[str],
        num_frames: int = 64,
        num_negatives: int = 16,
        seed: int = 0,
    ):
        if not pairs:
            raise ValueError(
                "TCAPairDataset: no training pairs (check the pairs file and the descriptor folder)"
            )
        if num_negatives > 0 and not distractors:
            raise ValueError("TCAPairDataset: no distractor videos available for the negatives")
        self.descriptors = descriptors
        self.pairs = pairs
        self.distractors = distractors
        self.num_frames = num_frames
        self.num_negatives = num_negatives
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        anchor_id, positive_id = self.pairs[index]
        if rng.random() < 0.5:
            anchor_id, positive_id = positive_id, anchor_id
        ids = [anchor_id, positive_id]
        if self.num_negatives:
            replace = len(self.distractors) < self.num_negatives
            picks = rng.choice(len(self.distractors), self.num_negatives, replace=replace)
            ids += [self.distractors[j] for j in picks]
        clips, lengths = zip(
            *(crop_or_pad(self.descriptors[v], self.num_frames, rng) for v in ids), strict=True
        )
        return {"features": np.stack(clips), "lengths": np.asarray(lengths), "ids": ids}


def _mask(lengths: np.ndarray, num_frames: int) -> torch.Tensor:
    return (np.arange(num_frames)[None, :] < lengths[:, None]).astype(np.int64)


def collate_pairs(items: list[dict]) -> dict[str, torch.Tensor]:
    """Stack items into anchor/positive [B, L, D] + masks [B, L] and negatives [B·n, L, D] + mask, where L is
    the longest clip of the batch (at most the dataset's `num_frames`): padding beyond it would be masked
    anyway, and short videos would otherwise cost as much compute as `num_frames`-long ones."""
    lengths = np.stack([item["lengths"] for item in items])  # [B, 2 + n]
    num_frames = int(lengths.max())
    features = np.stack([item["features"][:, :num_frames] for item in items])  # [B, 2 + n, L, D]
    batch, _, _, dim = features.shape
    masks = _mask(lengths.reshape(-1), num_frames).reshape(batch, -1, num_frames)
    return {
        "anchor": torch.from_numpy(features[:, 0]),
        "anchor_mask": torch.from_numpy(masks[:, 0]),
        "positive": torch.from_numpy(features[:, 1]),
        "positive_mask": torch.from_numpy(masks[:, 1]),
        "negatives": torch.from_numpy(np.ascontiguousarray(features[:, 2:]).reshape(-1, num_frames, dim)),
        "negatives_mask": torch.from_numpy(masks[:, 2:].reshape(-1, num_frames)),
    }


class EpochPermutationSampler(_EpochSeeded, Sampler[int]):
    """A random permutation that depends only on (seed, epoch): reproducible after a resume."""

    def __init__(self, length: int, seed: int = 0):
        self.length = length
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.length, generator=generator).tolist())


def load_training_descriptors(
    directory: str | os.PathLike, ids: set[str] | None = None
) -> dict[str, np.ndarray]:
    """`{id: float16 [F, D]}` from a descriptor folder; rejects empty videos with a clear error."""
    descriptors = load_descriptors(directory, ids)
    for video_id, features in descriptors.items():
        if features.ndim != 2 or features.shape[0] == 0:
            raise ValueError(f"{directory}: video {video_id!r} has no frames (features {features.shape})")
    return descriptors


def open_training_store(directory: str | os.PathLike, cache_mb: int | None) -> PackedDescriptors | None:
    """On-demand descriptors for training: the float16 pack of `directory` (made, or re-made when the shards
    changed), read through a cache of `cache_mb` MiB per process; None when `cache_mb` is None (in RAM).
    A folder holding only a pack (no parquet shards) is used as it is."""
    if cache_mb is None:
        return None
    if cache_mb < 0:
        raise ValueError(f"descriptor_cache_mb must be >= 0 (or unset), got {cache_mb}")
    if shard_files(directory):
        target = packed_path(directory)
        logger.info("packing %s into %s (once; kept while the shards are unchanged)", directory, target)
        pack_descriptors(directory)
    return PackedDescriptors(packed_path(directory), int(cache_mb) * 2**20, directory=directory)


__all__ = [
    "EpochPermutationSampler",
    "open_training_store",
    "PairList",
    "TCAPairDataset",
    "collate_pairs",
    "crop_or_pad",
    "load_training_descriptors",
    "read_pairs",
    "resolve_pairs",
    "split_pairs",
]
