"""Search at scale: video-level embeddings in FAISS or Milvus, frame-level embeddings in a memory-mapped store.

A :class:`VideoIndex` lives in one folder::

    DIR/config.json      dim, backend, index type and parameters, user metadata (e.g. the model used)
    DIR/ids.json         video ids, in the order of the FAISS rows (Milvus: the `row` primary keys)
    DIR/video.faiss      the FAISS index of L2-normalised video embeddings (inner product = cosine);
                         with ``backend="milvus"`` the vectors are in a Milvus collection instead
                         (`search/milvus_backend.py`; the URI and collection name are in config.json)
    DIR/frames.f16       frame embeddings of all videos, float16, row-major [total frames, dim]
    DIR/offsets.npy      int64 [N + 1]: video i owns rows offsets[i]:offsets[i + 1] of frames.f16
                         (``frame_codec="int8"``: frames.i8 int8 codes + frames.scales float32, one per frame)

`search(query, k, rerank=depth)` retrieves the top `depth` videos by cosine and re-ranks them by chamfer
similarity of the frame embeddings (a cascade: TCA_c cost for the whole collection, TCA_f accuracy on
the short list). `save()` commits everything atomically (the frame file is append-only and truncated
on load to the committed length; Milvus rows past it are deleted), so an interrupted indexing job resumes
from its last `save()`.
"""

from __future__ import annotations

import json
import os
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import torch

from vidtempo.processing.atomic_files import write_atomically
from vidtempo.processing.descriptor_store import decode_int8, encode_int8

from ..evaluation.embedding import frame_level_similarities

INDEX_TYPES = ("flat", "ivf", "ivfpq")
FRAME_CODECS = (
    "float16",
    "int8",
)  # int8: one float32 scale per frame (frames.i8 + frames.scales), half the disk
BACKENDS = ("faiss", "milvus")
MILVUS_LITE_FILE = "milvus.db"  # the embedded Milvus Lite database when no milvus_uri is given
CONFIG_FILE, IDS_FILE, FAISS_FILE, FRAMES_FILE, OFFSETS_FILE = (
    "config.json",
    "ids.json",
    "video.faiss",
    "frames.f16",
    "offsets.npy",
)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """`data` written to `path` atomically and synced to disk before the rename."""

    def write(temporary: Path) -> None:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    write_atomically(path, write)


def _as_matrix(embeds, dim: int, what: str) -> np.ndarray:
    if isinstance(embeds, torch.Tensor):
        embeds = embeds.detach().float().cpu().numpy()
    embeds = np.asarray(embeds, dtype=np.float32)
    if embeds.ndim == 1:
        embeds = embeds[None]
    if embeds.ndim != 2 or embeds.shape[1] != dim:
        raise ValueError(f"{what} must have shape [n, {dim}], got {embeds.shape}")
    norms = np.linalg.norm(embeds, axis=1, keepdims=True)
    return np.ascontiguousarray(embeds / np.maximum(norms, 1e-12))


class FrameStore:
    """Append-only store of per-video frame embeddings, read through a memory map: float16 (``frames.f16``) or
    int8 with one float32 scale per frame (``frames.i8`` + ``frames.scales``, `codec="int8"`)."""

    def __init__(self, directory: str | os.PathLike, dim: int, codec: str = "float16"):
        if codec not in FRAME_CODECS:
            raise ValueError(f"frame codec must be one of {FRAME_CODECS}, got {codec!r}")
        self.directory = Path(directory)
        self.dim, self.codec = dim, codec
        self.path = self.directory / (FRAMES_FILE if codec == "float16" else "frames.i8")
        self.scales_path = self.directory / "frames.scales" if codec == "int8" else None
        offsets_path = self.directory / OFFSETS_FILE
        self.offsets = np.load(offsets_path) if offsets_path.exists() else np.zeros(1, dtype=np.int64)
        frames = int(self.offsets[-1])
        files = [(self.path, frames * dim * (2 if codec == "float16" else 1))]
        if self.scales_path is not None:
            files.append((self.scales_path, frames * 4))
        for path, committed in files:
            size = path.stat().st_size if path.exists() else 0
            if size < committed:
                raise ValueError(
                    f"{path}: {size} bytes, but {OFFSETS_FILE} records {committed} (file truncated?)"
                )
            if size > committed:
                with open(path, "r+b") as handle:  # drop frames appended after the last commit
                    handle.truncate(committed)
        self._map: np.memmap | None = None
        self._scales: np.memmap | None = None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def append(self, frames: Sequence[np.ndarray | torch.Tensor]) -> None:
        arrays = []
        for f in frames:  # validate everything before writing anything
            if isinstance(f, torch.Tensor):
                f = f.detach().float().cpu().numpy()
            f = np.asarray(f)
            if f.ndim != 2 or f.shape[1] != self.dim or f.shape[0] == 0:
                raise ValueError(f"frame embeddings must have shape [frames>0, {self.dim}], got {f.shape}")
            arrays.append(f)
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as handle:
            for f in arrays:
                if self.codec == "int8":
                    codes, scales = encode_int8(f)
                    handle.write(codes.tobytes())
                    with open(self.scales_path, "ab") as scale_handle:
                        scale_handle.write(scales.tobytes())
                else:
                    handle.write(np.ascontiguousarray(f, dtype=np.float16).tobytes())
        lengths = np.array([f.shape[0] for f in arrays], dtype=np.int64)
        self.offsets = np.concatenate([self.offsets, self.offsets[-1] + np.cumsum(lengths)])
        self._map = self._scales = None

    def commit(self) -> None:
        """Record the appended videos (until then a reload drops them)."""
        self.directory.mkdir(parents=True, exist_ok=True)

        def save(temporary: Path) -> None:
            with open(temporary, "wb") as handle:  # a handle: np.save would add ".npy" to the name
                np.save(handle, self.offsets)

        write_atomically(self.directory / OFFSETS_FILE, save)

    def _frames(self) -> np.ndarray:
        if self._map is None:
            total = int(self.offsets[-1])
            dtype = np.float16 if self.codec == "float16" else np.int8
            self._map = (
                np.memmap(self.path, dtype=dtype, mode="r", shape=(total, self.dim))
                if total
                else (np.zeros((0, self.dim), dtype))
            )
            if self.scales_path is not None:
                self._scales = (
                    np.memmap(self.scales_path, dtype=np.float32, mode="r", shape=(total,))
                    if total
                    else np.zeros(0, np.float32)
                )
        return self._map

    def get(self, position: int) -> np.ndarray:
        """Frame embeddings [F, dim] of the video at `position`: float16 (a view into the memory map), or
        float32 decoded from int8 codes and scales."""
        if not 0 <= position < len(self.offsets) - 1:
            raise IndexError(f"frame store has {len(self.offsets) - 1} videos, asked for {position}")
        start, stop = self.offsets[position], self.offsets[position + 1]
        frames = self._frames()[start:stop]
        return frames if self.codec == "float16" else decode_int8(frames, self._scales[start:stop])


def _stored_frames(store: FrameStore, rows: np.ndarray) -> list[torch.Tensor]:
    """Tensors over the stored frames of `rows`, without copying: float16 views into the read-only
    memory map (`frame_level_similarities` casts them block by block into a reused buffer; a copy or cast
    per video here is slower, bench_chamfer.py), or int8 frames decoded to float32."""
    with warnings.catch_warnings():  # the views are only read
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return [torch.from_numpy(store.get(int(r))) for r in rows]


@dataclass
class SearchResult:
    """Top-k of one query: ids and scores (chamfer when re-ranked, cosine otherwise), best first."""

    ids: list[str]
    scores: np.ndarray  # [k]
    reranked: bool = False


class VideoIndex:
    """Video-level FAISS index plus an on-disk frame store, in one folder (see the module docstring).

    Args:
        directory: the index folder (created on demand).
        dim: embedding size.
        index_type: ``flat`` (exact inner product, default), ``ivf`` (IVF-Flat) or ``ivfpq`` (IVF-PQ);
            the IVF kinds are trained on the first `add` (or an explicit `train`).
        nlist, pq_m, pq_bits, nprobe: IVF lists, PQ sub-quantisers / bits, lists probed per query.
        store_frames: keep frame embeddings (needed for re-ranking).
        exact_backend: how a flat FAISS index is searched: ``blas`` (numpy matmul + argpartition, default)
            or ``faiss`` (`IndexFlatIP.search`).
        backend: where the video vectors live: ``faiss`` (in-process, saved in the folder; default) or
            ``milvus`` (a Milvus collection; `index_type` ``flat`` or ``ivf``). Frames stay in the folder.
        milvus_uri: Milvus server URI (``http://host:19530``) or Milvus Lite file (``*.db``); default: Milvus
            Lite in ``DIR/milvus.db``.
        milvus_collection: collection name (default: a new unique ``vidtempo_...`` name).
        frame_codec: ``float16`` (default) or ``int8`` (per-frame scale; half the disk) for the frame store.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        dim: int,
        index_type: str = "flat",
        nlist: int = 1024,
        pq_m: int = 64,
        pq_bits: int = 8,
        nprobe: int = 32,
        store_frames: bool = True,
        metadata: dict | None = None,
        exact_backend: str = "blas",
        backend: str = "faiss",
        milvus_uri: str | None = None,
        milvus_collection: str | None = None,
        frame_codec: str = "float16",
        *,
        _existing: bool = False,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if index_type not in INDEX_TYPES:
            raise ValueError(f"index_type must be one of {INDEX_TYPES}, got {index_type!r}")
        if index_type == "ivfpq" and dim % pq_m:
            raise ValueError(f"ivfpq: dim {dim} must be divisible by pq_m {pq_m}")
        self.directory = Path(directory)
        self.config = {
            "dim": int(dim),
            "index_type": index_type,
            "nlist": int(nlist),
            "pq_m": int(pq_m),
            "pq_bits": int(pq_bits),
            "nprobe": int(nprobe),
            "store_frames": bool(store_frames),
            "metadata": dict(metadata or {}),
            "exact_backend": exact_backend,
            "backend": backend,
            "frame_codec": frame_codec,
        }
        if backend == "milvus":
            self.config["milvus_uri"] = _absolute_lite_path(milvus_uri)
            self.config["milvus_collection"] = milvus_collection or f"vidtempo_{uuid.uuid4().hex[:16]}"
        if exact_backend not in ("blas", "faiss"):
            raise ValueError(f"exact_backend must be 'blas' or 'faiss', got {exact_backend!r}")
        self.ids: list[str] = []
        self.skipped: list[dict] = []  # filled by build_index: malformed inputs left out
        self._position: dict[str, int] = {}
        self.index = self._new_milvus_index(_existing) if backend == "milvus" else self._new_faiss_index()
        self.frames = FrameStore(self.directory, dim, frame_codec) if store_frames else None

    # -- construction -------------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self.config["dim"]

    @property
    def milvus_uri(self) -> str:
        """The Milvus URI of a ``backend="milvus"`` index (Milvus Lite in the folder when none was given)."""
        return self.config.get("milvus_uri") or str(self.directory.resolve() / MILVUS_LITE_FILE)

    def _new_milvus_index(self, existing: bool):
        from .milvus_backend import MilvusVectors

        if self.config.get("milvus_uri") is None:
            self.directory.mkdir(parents=True, exist_ok=True)
        return MilvusVectors(
            self.milvus_uri,
            self.config["milvus_collection"],
            self.dim,
            self.config["index_type"],
            self.config["nlist"],
            self.config["nprobe"],
            create=not existing,
        )

    def _new_faiss_index(self):
        dim, kind = self.dim, self.config["index_type"]
        if kind == "flat":
            return faiss.IndexFlatIP(dim)
        quantizer = faiss.IndexFlatIP(dim)
        if kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, dim, self.config["nlist"], faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexIVFPQ(
                quantizer,
                dim,
                self.config["nlist"],
                self.config["pq_m"],
                self.config["pq_bits"],
                faiss.METRIC_INNER_PRODUCT,
            )
        index.nprobe = self.config["nprobe"]
        self._quantizer = quantizer  # keep the Python wrapper alive with the index
        return index

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, video_id: str) -> bool:
        return video_id in self._position

    @property
    def is_trained(self) -> bool:
        return bool(self.index.is_trained)

    def train(self, video_embeds) -> None:
        """Train the IVF coarse quantiser (and PQ codebooks) on a sample of video embeddings."""
        sample = _as_matrix(video_embeds, self.dim, "training sample")
        if sample.shape[0] < self.config["nlist"]:
            raise ValueError(
                f"{self.config['index_type']} with nlist={self.config['nlist']} needs at least "
                f"nlist training vectors, got {sample.shape[0]} (lower --nlist or use flat)"
            )
        self.index.train(sample)

    def add(self, ids: Sequence[str], video_embeds, frame_embeds: Sequence | None = None) -> None:
        """Add videos: ids, video embeddings [N, dim] (L2-normalised here) and, when the index stores
        frames, their frame embeddings N x [F_i, dim]. Call `save()` to commit."""
        ids = [str(i) for i in ids]
        vectors = _as_matrix(video_embeds, self.dim, "video_embeds")
        if len(ids) != vectors.shape[0]:
            raise ValueError(f"{len(ids)} ids for {vectors.shape[0]} video embeddings")
        duplicates = [i for i in ids if i in self._position]
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            duplicates += [i for i in ids if i in seen or seen.add(i)]
        if duplicates:
            raise ValueError(f"ids already in the index (or repeated): {sorted(set(duplicates))[:10]}")
        if self.frames is not None:
            if frame_embeds is None or len(frame_embeds) != len(ids):
                raise ValueError("this index stores frames: pass one frame-embedding array per video")
        if not self.is_trained:
            self.train(vectors)
        if self.frames is not None:
            self.frames.append(frame_embeds)
        if self.config["backend"] == "milvus":
            self.index.add(vectors, ids)
        else:
            self.index.add(vectors)
        for video_id in ids:
            self._position[video_id] = len(self.ids)
            self.ids.append(video_id)

    def save(self) -> Path:
        """Commit the index to its folder (atomic per file; frames first, ids last)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.frames is not None:
            self.frames.commit()
        if self.config["backend"] == "milvus":
            self.index.flush()
        else:
            write_atomically(
                self.directory / FAISS_FILE, lambda temporary: faiss.write_index(self.index, str(temporary))
            )
        _atomic_write_bytes(self.directory / CONFIG_FILE, json.dumps(self.config, indent=2).encode())
        _atomic_write_bytes(self.directory / IDS_FILE, json.dumps(self.ids).encode())
        return self.directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> VideoIndex:
        """Open a saved index (frames stay on disk, memory-mapped)."""
        directory = Path(directory)
        for name in (CONFIG_FILE, IDS_FILE):
            if not (directory / name).exists():
                raise FileNotFoundError(f"{directory} is not a vidtempo index: {name} is missing")
        config = json.loads((directory / CONFIG_FILE).read_text())
        backend = config.get("backend", "faiss")
        if backend == "faiss" and not (directory / FAISS_FILE).exists():
            raise FileNotFoundError(f"{directory} is not a vidtempo index: {FAISS_FILE} is missing")
        self = cls(
            directory,
            config["dim"],
            config["index_type"],
            config["nlist"],
            config["pq_m"],
            config["pq_bits"],
            config["nprobe"],
            config["store_frames"],
            config.get("metadata"),
            config.get("exact_backend", "blas"),
            backend,
            config.get("milvus_uri"),
            config.get("milvus_collection"),
            config.get("frame_codec", "float16"),
            _existing=True,
        )
        self.ids = json.loads((directory / IDS_FILE).read_text())
        self._position = {video_id: i for i, video_id in enumerate(self.ids)}
        where = FAISS_FILE
        if backend == "milvus":
            self.index.truncate(len(self.ids))  # rows inserted after the last save() are dropped
            where = f"milvus collection {config['milvus_collection']!r} at {self.milvus_uri}"
        else:
            self.index = faiss.read_index(str(directory / FAISS_FILE))
            if hasattr(self.index, "nprobe"):
                self.index.nprobe = config["nprobe"]
        if self.index.ntotal != len(self.ids):
            raise ValueError(
                f"{directory}: {where} holds {self.index.ntotal} vectors for {len(self.ids)} ids"
            )
        if self.frames is not None and len(self.frames) != len(self.ids):
            raise ValueError(
                f"{directory}: {OFFSETS_FILE} lists {len(self.frames)} videos for {len(self.ids)} ids"
            )
        return self

    @classmethod
    def open_or_create(cls, directory: str | os.PathLike, dim: int, **kwargs) -> VideoIndex:
        """Load the index in `directory` if there is one (to resume), else create an empty one."""
        if (Path(directory) / CONFIG_FILE).exists():
            index = cls.load(directory)
            if index.dim != dim:
                raise ValueError(
                    f"{directory}: existing index has dim {index.dim}, new embeddings have {dim}"
                )
            return index
        return cls(directory, dim, **kwargs)

    # -- search -------------------------------------------------------------------------------------

    def frame_embeddings(self, video_id: str) -> np.ndarray:
        if self.frames is None:
            raise ValueError("this index was built without frame embeddings")
        return self.frames.get(self._position[video_id])

    def search(
        self,
        query_embeds,
        k: int = 10,
        rerank: int | None = None,
        query_frames: Sequence | None = None,
        kind: str = "chamfer",
    ) -> list[SearchResult]:
        """Top-`k` videos for each query video embedding ([dim] or [Q, dim]).

        With `rerank` = depth, the top `max(depth, k)` candidates by cosine are re-scored with `kind`
        (``chamfer`` or ``symmetric_chamfer``) between `query_frames` (one [F, dim] array per query) and
        the stored frame embeddings, and the best `k` are returned.
        """
        queries = _as_matrix(query_embeds, self.dim, "query_embeds")
        if len(self) == 0:
            raise ValueError("the index is empty")
        k = min(k, len(self))
        depth = k if rerank is None else min(max(rerank, k), len(self))
        scores, rows = self.video_search(queries, depth)  # [Q, depth]
        if rerank is None:
            return [self._result(r, s, False) for r, s in zip(rows, scores)]
        if self.frames is None:
            raise ValueError("re-ranking needs an index built with frame embeddings")
        if query_frames is None or len(query_frames) != len(queries):
            raise ValueError("re-ranking needs query_frames: one [frames, dim] array per query")
        results = []
        for q_frames, q_rows in zip(query_frames, rows):
            q_rows = q_rows[q_rows >= 0]
            q_tensor = torch.as_tensor(np.asarray(q_frames, dtype=np.float32))
            candidates = _stored_frames(self.frames, q_rows)
            rescored = frame_level_similarities([q_tensor], candidates, kind)[0].numpy()  # [depth]
            order = np.argsort(-rescored, kind="stable")[:k]  # ties keep the cosine order
            results.append(self._result(q_rows[order], rescored[order], True))
        return results

    def video_search(self, queries: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-`depth` (scores, rows) by inner product for normalised queries [Q, dim].

        A flat index is searched exactly with one BLAS matmul + `argpartition` over a zero-copy view of
        the FAISS vectors (faster than `IndexFlatIP.search` on the CPUs measured in bench_search.py; same
        result, ties broken by insertion order); ``exact_backend="faiss"`` uses FAISS's own search."""
        if (
            self.config["backend"] == "milvus"
            or self.config["index_type"] != "flat"
            or self.config.get("exact_backend", "blas") == "faiss"
        ):
            return self.index.search(queries, depth)
        vectors = self._flat_vectors()  # [N, dim], shares memory with FAISS
        scores, rows = [], []
        for start in range(0, len(queries), 64):
            block = queries[start : start + 64] @ vectors.T  # [q, N]
            top = np.argpartition(-block, depth - 1, axis=1)[:, :depth]  # unordered top-depth
            values = np.take_along_axis(block, top, axis=1)
            order = np.lexsort((top, -values), axis=1)  # by score, then by row
            rows.append(np.take_along_axis(top, order, axis=1))
            scores.append(np.take_along_axis(values, order, axis=1))
        return np.concatenate(scores), np.concatenate(rows)

    def _flat_vectors(self) -> np.ndarray:
        total = self.index.ntotal
        return faiss.rev_swig_ptr(self.index.get_xb(), total * self.dim).reshape(total, self.dim)

    def close(self) -> None:
        """Release the Milvus connection (nothing to do for FAISS)."""
        if self.config["backend"] == "milvus":
            self.index.close()

    def _result(self, rows: np.ndarray, scores: np.ndarray, reranked: bool) -> SearchResult:
        keep = rows >= 0  # FAISS pads with -1 when fewer candidates are found (IVF)
        return SearchResult([self.ids[int(r)] for r in rows[keep]], np.asarray(scores)[keep], reranked)


def _absolute_lite_path(uri: str | None) -> str | None:
    """A relative Milvus Lite path (``x.db``) made absolute, so the index opens from any directory."""
    if uri is None or "://" in uri or uri.startswith("unix:") or not uri.endswith(".db"):
        return uri
    return str(Path(uri).resolve())


__all__ = ["BACKENDS", "FRAME_CODECS", "FrameStore", "INDEX_TYPES", "SearchResult", "VideoIndex"]
