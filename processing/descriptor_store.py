"""The on-disk descriptor dataset shared by extraction, training, evaluation and search.

Layout of a descriptor folder::

    DIR/info.json            {"format": "vidtempo-descriptors", "version": 1, "dim": D, ...user metadata}
    DIR/data/*.parquet       one row per video (a `datasets` dataset; load with `load_descriptor_dataset`)
    DIR/failed.jsonl         videos that could not be processed: {"video_id", "path", "error"} per line
    DIR/packed/<codec>/      optional flat copy read on demand (`pack_descriptors`, `PackedDescriptors`):
                             frames.bin (float16, or int8 + scales.f32), offsets.npy, ids.json, manifest.json

Columns: `video_id` (string), `path` (string), `fps` (float64, decoded frame rate), `timestamps`
(list of float32 seconds, one per sampled frame), `num_frames` (int32), `features`
(`Array2D((None, D), "float16")`: one row per sampled frame).

Shards are written to a temporary name and renamed, so a crash never leaves a half-written shard and
`existing_ids` tells a resumed job what is already done.
"""

from __future__ import annotations

import json
import os
import time
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .atomic_files import write_atomically, write_text_atomic

FORMAT_NAME = "vidtempo-descriptors"
FORMAT_VERSION = 1
DATA_DIR = "data"
INFO_FILE = "info.json"
FAILED_FILE = "failed.jsonl"


def descriptor_features(dim: int):
    """The `datasets.Features` of a descriptor dataset of dimension `dim`."""
    from datasets import Array2D, Features, List, Value

    return Features(
        {
            "video_id": Value("string"),
            "path": Value("string"),
            "fps": Value("float64"),
            "timestamps": List(Value("float32")),
            "num_frames": Value("int32"),
            "features": Array2D((None, dim), "float16"),
        }
    )


def write_info(out_dir: str | os.PathLike, dim: int, **metadata) -> dict:
    """Create (or check) `info.json`: a folder holds descriptors of one dimension only."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    info_path = out_dir / INFO_FILE
    if info_path.exists():
        info = read_info(out_dir)
        if info["dim"] != dim:
            raise ValueError(f"{info_path}: folder holds dim {info['dim']} descriptors, cannot add dim {dim}")
        return info
    info = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "dim": int(dim), **metadata}
    write_text_atomic(info_path, json.dumps(info, indent=2, sort_keys=True))
    return info


def read_info(directory: str | os.PathLike) -> dict:
    """Read and validate `info.json` of a descriptor folder."""
    info_path = Path(directory) / INFO_FILE
    if not info_path.is_file():
        raise FileNotFoundError(f"{info_path}: not a vidtempo descriptor folder (no {INFO_FILE})")
    try:
        info = json.loads(info_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{info_path}: invalid JSON ({err})") from err
    if info.get("format") != FORMAT_NAME or not isinstance(info.get("dim"), int):
        raise ValueError(f"{info_path}: expected format {FORMAT_NAME!r} with an integer 'dim', got {info}")
    return info


def shard_files(directory: str | os.PathLike) -> list[Path]:
    """The finished parquet shards of a descriptor folder, in a stable order."""
    return sorted((Path(directory) / DATA_DIR).glob("*.parquet"))


@dataclass
class DescriptorWriter:
    """Buffers rows and writes them as atomic parquet shards.

    A shard is written when `shard_size` videos are buffered, or `commit_seconds` after the first buffered row,
    or once the buffered features reach `commit_bytes`, whichever comes first: a killed job loses at most that
    much work. Use one writer per process (`prefix` keeps their shard names apart) and call `close()` (or use it
    as a context manager) to write the last partial shard.
    """

    out_dir: str | os.PathLike
    dim: int
    shard_size: int = 64
    prefix: str = "shard"
    metadata: dict = field(default_factory=dict)
    commit_seconds: float = 30.0
    commit_bytes: int = 256 * 2**20

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        write_info(self.out_dir, self.dim, **self.metadata)
        (self.out_dir / DATA_DIR).mkdir(parents=True, exist_ok=True)
        for stale in (self.out_dir / DATA_DIR).glob(f".{self.prefix}-*.parquet*.tmp"):
            stale.unlink(missing_ok=True)  # a shard this writer's predecessor was killed while writing
        self._rows: list[dict] = []
        self._buffered_bytes = 0
        self._first_buffered = 0.0
        self.written = 0

    def add(
        self,
        video_id: str,
        features: np.ndarray,
        *,
        path: str = "",
        fps: float = float("nan"),
        timestamps: Sequence[float] | None = None,
    ) -> None:
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[1] != self.dim or features.shape[0] == 0:
            raise ValueError(
                f"video {video_id!r}: features must have shape [frames>0, {self.dim}], got {features.shape}"
            )
        if timestamps is None:
            timestamps = np.arange(features.shape[0], dtype=np.float32)
        if len(timestamps) != features.shape[0]:
            raise ValueError(
                f"video {video_id!r}: {len(timestamps)} timestamps for {features.shape[0]} frames"
            )
        self._rows.append(
            {
                "video_id": str(video_id),
                "path": str(path),
                "fps": float(fps),
                "timestamps": np.asarray(timestamps, dtype=np.float32),
                "num_frames": int(features.shape[0]),
                "features": features.astype(np.float16),
            }
        )
        if len(self._rows) == 1:
            self._first_buffered = time.monotonic()
        self._buffered_bytes += self._rows[-1]["features"].nbytes
        if (
            len(self._rows) >= self.shard_size
            or self._buffered_bytes >= self.commit_bytes
            or time.monotonic() - self._first_buffered >= self.commit_seconds
        ):
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows as one shard (atomic rename)."""
        if not self._rows:
            return
        table = _rows_to_table(self._rows, self.dim)
        final = self.out_dir / DATA_DIR / f"{self.prefix}-{uuid.uuid4().hex[:12]}.parquet"
        write_atomically(final, lambda temporary: pq.write_table(table, temporary))
        self.written += len(self._rows)
        self._rows = []
        self._buffered_bytes = 0

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> DescriptorWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _rows_to_table(rows: list[dict], dim: int) -> pa.Table:
    from datasets import Dataset

    columns = {key: [row[key] for row in rows] for key in rows[0]}
    return Dataset.from_dict(columns, features=descriptor_features(dim)).data.table


def append_failure(out_dir: str | os.PathLike, video_id: str, path: str, error: str) -> None:
    """Record a video that could not be processed in `failed.jsonl` (one JSON object per line)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / FAILED_FILE
    row = json.dumps({"video_id": video_id, "path": path, "error": error}) + "\n"
    with open(log, "a+b") as handle:
        if handle.tell():  # a job killed while appending leaves a torn last line: start a new one
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                row = "\n" + row
        handle.write(row.encode())
        handle.flush()
        os.fsync(handle.fileno())


def read_failures(directory: str | os.PathLike) -> list[dict]:
    """The rows of `failed.jsonl`. A malformed line (a job killed while appending) is skipped with a warning
    naming the file and line: that video is not marked failed, so a resumed job simply tries it again."""
    path = Path(directory) / FAILED_FILE
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            warnings.warn(f"{path}, line {number}: not a JSON object ({error}); ignored", stacklevel=2)
    return rows


def existing_ids(directory: str | os.PathLike) -> set[str]:
    """Ids already written to finished shards (for resuming)."""
    ids: set[str] = set()
    for shard in shard_files(directory):
        ids.update(pq.read_table(shard, columns=["video_id"]).column("video_id").to_pylist())
    return ids


def load_descriptor_dataset(directory: str | os.PathLike):
    """The descriptor folder as a `datasets.Dataset` (features decoded as `Array2D` float16)."""
    from datasets import Dataset

    info = read_info(directory)
    files = shard_files(directory)
    if not files:
        return Dataset.from_dict(
            {key: [] for key in descriptor_features(info["dim"])}, features=descriptor_features(info["dim"])
        )
    return Dataset.from_parquet([str(f) for f in files], features=descriptor_features(info["dim"]))


def iter_descriptors(
    directory: str | os.PathLike, ids: Iterable[str] | None = None
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yield `(video_id, features float16 [F, D], timestamps float32 [F])` shard by shard, without
    decoding through `datasets` (fast and float16-preserving). `ids` restricts the output."""
    info = read_info(directory)
    wanted = None if ids is None else set(ids)
    for shard in shard_files(directory):
        table = pq.read_table(shard, columns=["video_id", "timestamps", "features"])
        video_ids = table.column("video_id").to_pylist()
        if wanted is not None and wanted.isdisjoint(video_ids):
            continue
        features = table.column("features").combine_chunks()
        if isinstance(features, pa.ExtensionArray):  # datasets' Array2D type, once datasets is imported
            features = features.storage
        # features: list<list<halffloat>>, one outer item per video, one inner list per frame
        lengths = features.value_lengths().to_numpy(zero_copy_only=False)
        flat = features.flatten().flatten().to_numpy(zero_copy_only=False).reshape(-1, info["dim"])
        stamps = table.column("timestamps").combine_chunks()
        flat_stamps = stamps.flatten().to_numpy(zero_copy_only=False)
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        for index, video_id in enumerate(video_ids):
            if wanted is None or video_id in wanted:
                start, stop = bounds[index], bounds[index + 1]
                yield video_id, flat[start:stop], flat_stamps[start:stop]


def load_descriptors(directory: str | os.PathLike, ids: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """`{video_id: features float16 [F, D]}` for the whole folder (or for `ids`). Later shards win on
    duplicate ids."""
    return {video_id: features for video_id, features, _ in iter_descriptors(directory, ids)}


def write_descriptors(
    out_dir: str | os.PathLike,
    descriptors: dict[str, np.ndarray],
    shard_size: int = 256,
    **metadata,
) -> Path:
    """Write `{video_id: features [F, D]}` (e.g. synthetic data) as a descriptor folder."""
    if not descriptors:
        raise ValueError("write_descriptors: no descriptors given")
    dim = int(np.asarray(next(iter(descriptors.values()))).shape[1])
    with DescriptorWriter(out_dir, dim, shard_size=shard_size, metadata=metadata) as writer:
        for video_id, features in descriptors.items():
            writer.add(video_id, features)
    return Path(out_dir)


SETTINGS_KEYS = ("dim", "model", "model_sha256", "pooling", "pca_dim", "fps", "num_frames", "min_duration")


def merge_descriptor_folders(out_dir: str | os.PathLike, parts: Sequence[str | os.PathLike]) -> dict:
    """Merge descriptor folders written on several machines (node-local `--output`s) into `out_dir`: shards
    are copied (atomic, names kept; a name already present is refused), `failed.jsonl` rows are kept for videos
    no part extracted. All parts (and `out_dir`, if it exists) must share the extraction settings (named when
    not). Returns {"shards", "videos", "duplicates", "failed"}; a video in several parts is reported."""
    if not parts:
        raise ValueError("merge: no part folders given")
    infos = [(Path(part), read_info(part)) for part in parts]
    reference_path, reference = infos[0]
    if (Path(out_dir) / INFO_FILE).exists():
        reference_path, reference = Path(out_dir), read_info(out_dir)
    for path, info in infos:
        for key in SETTINGS_KEYS:
            if info.get(key) != reference.get(key):
                raise ValueError(
                    f"merge: {path / INFO_FILE} has {key}={info.get(key)!r}, {reference_path / INFO_FILE} has "
                    f"{reference.get(key)!r}: descriptors of different settings cannot share a folder"
                )
    out_dir = Path(out_dir)
    write_info(
        out_dir,
        reference["dim"],
        **{k: v for k, v in reference.items() if k not in ("format", "version", "dim")},
    )
    (out_dir / DATA_DIR).mkdir(parents=True, exist_ok=True)
    present = {f.name for f in shard_files(out_dir)}
    seen = existing_ids(out_dir)
    duplicates: set[str] = set()
    copied = 0
    for path, _ in infos:
        for shard in shard_files(path):
            if shard.name in present:
                raise ValueError(f"merge: {shard} has the name of a shard already in {out_dir / DATA_DIR}")
            ids = pq.read_table(shard, columns=["video_id"]).column("video_id").to_pylist()
            duplicates.update(v for v in ids if v in seen)
            seen.update(ids)
            data = shard.read_bytes()
            write_atomically(
                out_dir / DATA_DIR / shard.name, lambda temporary, d=data: Path(temporary).write_bytes(d)
            )
            present.add(shard.name)
            copied += 1
    failed = 0
    for path, _ in infos:
        for row in read_failures(path):
            if row["video_id"] not in seen:
                append_failure(out_dir, row["video_id"], row.get("path", ""), row.get("error", ""))
                seen.add(row["video_id"])
                failed += 1
    if duplicates:
        warnings.warn(
            f"merge: {len(duplicates)} videos are in several parts (e.g. {sorted(duplicates)[:5]}); "
            "readers take one copy",
            stacklevel=2,
        )
    return {
        "shards": copied,
        "videos": len(existing_ids(out_dir)),
        "duplicates": len(duplicates),
        "failed": failed,
    }


# -- packed store: the descriptors as one flat file read on demand (bounded-memory training, compact stores) ----

PACKED_DIR = "packed"
CODECS = ("float16", "int8")  # int8: one float32 scale per frame vector (max |x| / 127)
_MANIFEST, _IDS, _OFFSETS, _FRAMES, _SCALES = (
    "manifest.json",
    "ids.json",
    "offsets.npy",
    "frames.bin",
    "scales.f32",
)


def encode_int8(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 codes [F, D], float32 scales [F]) with features ~= codes * scales[:, None] (per-vector scale)."""
    x = np.asarray(features, dtype=np.float32)
    scales = np.abs(x).max(axis=1) / 127.0
    codes = np.rint(x / np.maximum(scales, np.finfo(np.float32).tiny)[:, None])
    return np.clip(codes, -127, 127).astype(np.int8), scales.astype(np.float32)


def decode_int8(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """float32 [F, D] from int8 codes and per-vector scales."""
    return codes.astype(np.float32) * scales[:, None]


def _shard_signature(directory: str | os.PathLike) -> list[list]:
    return [[f.name, f.stat().st_size] for f in shard_files(directory)]


class PackedWriter:
    """Appends videos to a packed store folder: ``frames.bin`` (float16 or int8 rows), ``scales.f32`` (int8),
    ``offsets.npy``, ``ids.json`` and, written last, ``manifest.json`` (a folder without it is incomplete).
    Memory: the ids and offsets only."""

    def __init__(self, path: str | os.PathLike, dim: int, codec: str = "float16", shards: list | None = None):
        if codec not in CODECS:
            raise ValueError(f"packed store codec must be one of {CODECS}, got {codec!r}")
        self.path, self.dim, self.codec, self.shards = Path(path), int(dim), codec, shards or []
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / _MANIFEST).unlink(missing_ok=True)
        self._frames = open(self.path / _FRAMES, "wb")
        self._scales = open(self.path / _SCALES, "wb") if codec == "int8" else None
        self.ids: list[str] = []
        self._lengths: list[int] = []

    def add(self, video_id: str, features: np.ndarray) -> None:
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[1] != self.dim or features.shape[0] == 0:
            raise ValueError(
                f"video {video_id!r}: features must be [frames>0, {self.dim}], got {features.shape}"
            )
        if self.codec == "int8":
            codes, scales = encode_int8(features)
            self._frames.write(codes.tobytes())
            self._scales.write(scales.tobytes())
        else:
            self._frames.write(np.ascontiguousarray(features, dtype=np.float16).tobytes())
        self.ids.append(str(video_id))
        self._lengths.append(int(features.shape[0]))

    def close(self) -> Path:
        """Flush the files and write ids, offsets and the manifest; returns the store folder."""
        for handle in (self._frames, self._scales):
            if handle is not None:
                handle.flush()
                os.fsync(handle.fileno())
                handle.close()
        offsets = np.concatenate([[0], np.cumsum(self._lengths, dtype=np.int64)]).astype(np.int64)

        def save(temporary: Path) -> None:
            with open(temporary, "wb") as handle:  # a handle: np.save would add ".npy" to the name
                np.save(handle, offsets)

        write_atomically(self.path / _OFFSETS, save)
        write_text_atomic(self.path / _IDS, json.dumps(self.ids))
        manifest = {"codec": self.codec, "dim": self.dim, "videos": len(self.ids), "frames": int(offsets[-1])}
        write_text_atomic(self.path / _MANIFEST, json.dumps({**manifest, "shards": self.shards}, indent=1))
        return self.path


def packed_path(directory: str | os.PathLike, codec: str = "float16") -> Path:
    """Where the packed store of a descriptor folder lives: ``DIR/packed/<codec>``."""
    return Path(directory) / PACKED_DIR / codec


def pack_descriptors(directory: str | os.PathLike, codec: str = "float16", force: bool = False) -> Path:
    """Pack a descriptor folder's parquet shards into ``DIR/packed/<codec>`` (one shard in memory at a time).
    An up-to-date pack (same shard names and sizes) is kept unless `force`."""
    info = read_info(directory)
    target, shards = packed_path(directory, codec), _shard_signature(directory)
    if not force and (target / _MANIFEST).exists():
        if json.loads((target / _MANIFEST).read_text()).get("shards") == shards:
            return target
    writer = PackedWriter(target, info["dim"], codec, shards)
    for video_id, features, _ in iter_descriptors(directory):
        writer.add(video_id, features)
    return writer.close()


class PackedDescriptors:
    """Read-only `{video_id: features [F, D]}` over a packed store, read on demand with `os.pread` (no memory
    map, so nothing of the store stays in this process's memory) through an LRU cache bounded in bytes.

    float16 stores give float16 arrays, equal to `load_descriptors`; int8 stores give float32 decoded arrays.
    Each process (DataLoader worker) opens its own file handles and keeps its own cache.

    Args:
        path: the store folder (`packed_path`), or a descriptor folder (its float16 pack).
        cache_bytes: cache bound; 0 disables caching. A video larger than the bound is never cached.
        directory: when given, the store must match this descriptor folder's shards (else stale, refused).
    """

    def __init__(
        self, path: str | os.PathLike, cache_bytes: int = 0, directory: str | os.PathLike | None = None
    ):
        path = Path(path)
        if not (path / _MANIFEST).exists() and (path / INFO_FILE).exists():
            directory, path = path, packed_path(path)
        if not (path / _MANIFEST).exists():
            raise FileNotFoundError(
                f"{path}: not a packed descriptor store (no {_MANIFEST}; see pack_descriptors)"
            )
        self.path, self.manifest = path, json.loads((path / _MANIFEST).read_text())
        if (
            directory is not None
            and shard_files(directory)
            and self.manifest["shards"] != _shard_signature(directory)
        ):
            raise ValueError(
                f"{path}: packed from other shards than {directory}/{DATA_DIR} now holds: re-pack it"
            )
        self.dim, self.codec = int(self.manifest["dim"]), self.manifest["codec"]
        self.offsets = np.load(path / _OFFSETS)
        ids = json.loads((path / _IDS).read_text())
        self._row = {video_id: i for i, video_id in enumerate(ids)}  # a repeated id: the later row wins
        self._itemsize = 1 if self.codec == "int8" else 2
        expected = int(self.offsets[-1]) * self.dim * self._itemsize
        if len(ids) + 1 != len(self.offsets) or (path / _FRAMES).stat().st_size != expected:
            raise ValueError(
                f"{path}: {_FRAMES} / {_OFFSETS} / {_IDS} disagree (an interrupted pack? re-pack it)"
            )
        self.cache_bytes, self.cached_bytes, self.hits, self.misses = int(cache_bytes), 0, 0, 0
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._pid, self._handles = None, None

    def __getstate__(self) -> dict:  # pickled into DataLoader workers: no handles, an empty cache
        state = dict(self.__dict__)
        state.update(_pid=None, _handles=None, _cache=OrderedDict(), cached_bytes=0)
        return state

    def __len__(self) -> int:
        return len(self._row)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._row

    def __iter__(self) -> Iterator[str]:
        return iter(self._row)

    def keys(self):
        return self._row.keys()

    def num_frames(self, video_id: str) -> int:
        row = self._row[video_id]
        return int(self.offsets[row + 1] - self.offsets[row])

    def _files(self) -> tuple[int, int | None]:
        if self._pid != os.getpid():
            scales = os.open(self.path / _SCALES, os.O_RDONLY) if self.codec == "int8" else None
            self._handles, self._pid = (os.open(self.path / _FRAMES, os.O_RDONLY), scales), os.getpid()
        return self._handles

    def read(self, video_id: str) -> np.ndarray:
        """The features of one video straight from disk (no cache)."""
        row = self._row[video_id]
        start, stop = int(self.offsets[row]), int(self.offsets[row + 1])
        frames, scales = self._files()
        size = (stop - start) * self.dim * self._itemsize
        data = os.pread(frames, size, start * self.dim * self._itemsize)
        if len(data) != size:
            raise OSError(f"{self.path / _FRAMES}: short read for {video_id!r} (file truncated?)")
        if self.codec == "float16":
            return np.frombuffer(data, dtype=np.float16).reshape(stop - start, self.dim)
        codes = np.frombuffer(data, dtype=np.int8).reshape(stop - start, self.dim)
        return decode_int8(codes, np.frombuffer(os.pread(scales, (stop - start) * 4, start * 4), np.float32))

    def __getitem__(self, video_id: str) -> np.ndarray:
        cached = self._cache.get(video_id)
        if cached is not None:
            self._cache.move_to_end(video_id)
            self.hits += 1
            return cached
        self.misses += 1
        features = self.read(video_id)
        if features.nbytes <= self.cache_bytes:
            while self.cached_bytes + features.nbytes > self.cache_bytes:
                _, evicted = self._cache.popitem(last=False)
                self.cached_bytes -= evicted.nbytes
            self._cache[video_id] = features
            self.cached_bytes += features.nbytes
        return features

    def close(self) -> None:
        if self._handles is not None and self._pid == os.getpid():
            for handle in self._handles:
                if handle is not None:
                    os.close(handle)
        self._pid, self._handles = None, None


__all__ = [
    "CODECS",
    "merge_descriptor_folders",
    "PackedDescriptors",
    "PackedWriter",
    "decode_int8",
    "encode_int8",
    "pack_descriptors",
    "packed_path",
    "DescriptorWriter",
    "append_failure",
    "descriptor_features",
    "existing_ids",
    "iter_descriptors",
    "load_descriptor_dataset",
    "load_descriptors",
    "read_failures",
    "read_info",
    "shard_files",
    "write_descriptors",
    "write_info",
]
