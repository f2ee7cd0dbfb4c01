"""Full-length, deterministic embedding of descriptor sets and the similarity kinds of METHODS.md §1.3.

`embed_descriptors` runs a TCA model (or the no-TCA baseline) over whole videos, batching videos of
similar length together (padding is masked, so batching does not change the result beyond float
rounding); `compute_similarities` scores queries against a database with ``cosine`` (TCA_c),
``chamfer`` (TCA_f), ``symmetric_chamfer`` (TCA_sym), ``comparator`` (TCA_v: the ViSiL/DnS comparator on
the frame-to-frame similarity matrices) or ``cascade`` (cosine for everything, then the top `cascade_depth`
candidates of each query re-scored with chamfer or the comparator).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from vidtempo.modeling.modeling_tca import chamfer_similarity, cosine_similarity, symmetric_chamfer_similarity

from .similarities import SIMILARITIES

# Cascade scores of candidates that were not re-ranked are their cosine minus this offset, so they rank
# below every re-ranked candidate (chamfer of unit vectors lies in [-1, 1]) and keep their cosine order.
CASCADE_OFFSET = 3.0


@dataclass
class VideoEmbeddings:
    """Embeddings of `ids`: video-level [N, H] (L2-normalised) and, when kept, frame-level N x [F_i, H]."""

    ids: list[str]
    video_embeds: torch.Tensor  # [N, H]
    frame_embeds: list[torch.Tensor] | None = None  # N x [F_i, H]
    skipped: list[dict] = field(default_factory=list)  # {"video_id", "error"} of inputs left out

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, ids: Sequence[str]) -> VideoEmbeddings:
        position = {video_id: i for i, video_id in enumerate(self.ids)}
        rows = [position[i] for i in ids]
        frames = None if self.frame_embeds is None else [self.frame_embeds[r] for r in rows]
        return VideoEmbeddings(list(ids), self.video_embeds[rows], frames)


def check_descriptors(video_id: str, features: np.ndarray, dim: int | None) -> str | None:
    """Why `features` cannot be embedded (None when it can): shape [frames > 0, dim], finite values."""
    if features.ndim != 2 or features.shape[0] == 0:
        return f"descriptors must have shape [frames>0, dim], got {features.shape}"
    if dim is not None and features.shape[1] != dim:
        return f"descriptor dim {features.shape[1]} does not match the model's input_size {dim}"
    if not np.isfinite(features).all():
        return "descriptors contain NaN or infinite values"
    return None


def pad_frames(frames: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """N x [F_i, H] -> (padded [N, max F, H], mask [N, max F] bool)."""
    if not frames:
        raise ValueError("pad_frames: no videos")
    longest = max(f.shape[0] for f in frames)
    padded = frames[0].new_zeros(len(frames), longest, frames[0].shape[1])
    mask = torch.zeros(len(frames), longest, dtype=torch.bool)
    for i, f in enumerate(frames):
        padded[i, : f.shape[0]] = f
        mask[i, : f.shape[0]] = True
    return padded, mask


def length_batches(lengths: Sequence[int], max_frames: int, max_videos: int | None = None) -> list[list[int]]:
    """Indices grouped into batches of similar length: sorted by length (stable), each batch's
    padded size (videos x longest) at most `max_frames` (a single longer video gets its own batch)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches, current, longest = [], [], 0
    for i in order:
        grown = max(longest, lengths[i])
        if current and (
            grown * (len(current) + 1) > max_frames or (max_videos and len(current) >= max_videos)
        ):
            batches.append(current)
            current, grown = [], lengths[i]
        current.append(i)
        longest = grown
    if current:
        batches.append(current)
    return batches


@torch.no_grad()
def embed_descriptors(
    model: torch.nn.Module | None,
    descriptors: Mapping[str, np.ndarray] | Iterable[tuple[str, np.ndarray]],
    keep_frames: bool = True,
    max_frames: int = 8192,
    device: str | torch.device | None = None,
    frame_dtype: torch.dtype = torch.float32,
    progress: bool = True,
    skip_bad: bool = False,
) -> VideoEmbeddings:
    """Embed whole videos (no cropping). `descriptors`: ``{video_id: [F, D]}`` or ``(id, [F, D])`` pairs.

    With `model` a `TCAModel` (put in eval mode here): its `video_embeds` and `frame_embeds`. With
    ``model=None`` (the no-TCA baseline): the L2-normalised mean of the frame descriptors and the raw
    descriptors. Output order = input order. A malformed video (wrong shape or dim, NaN) raises a
    `ValueError` naming it, or with ``skip_bad=True`` is left out and listed in ``skipped``.
    """
    items = list(descriptors.items() if isinstance(descriptors, Mapping) else descriptors)
    if not items:
        raise ValueError("embed_descriptors: no videos")
    dim = getattr(getattr(model, "config", None), "input_size", None)
    ids, arrays, skipped = [], [], []
    for video_id, features in items:
        features = np.asarray(features)
        problem = check_descriptors(str(video_id), features, dim)
        if problem is None:
            ids.append(str(video_id))
            arrays.append(features)
        elif skip_bad:
            skipped.append({"video_id": str(video_id), "error": problem})
        else:
            raise ValueError(f"video {video_id!r}: {problem}")
    if not arrays:
        raise ValueError(f"embed_descriptors: no valid videos ({skipped[:3]})")
    if model is not None:
        model.eval()
        device = torch.device(device) if device is not None else next(model.parameters()).device
        dtype = next(model.parameters()).dtype
    else:
        device, dtype = torch.device(device or "cpu"), torch.float32
    video_embeds: list[torch.Tensor | None] = [None] * len(arrays)
    frame_embeds: list[torch.Tensor | None] = [None] * len(arrays)
    batches = length_batches([a.shape[0] for a in arrays], max_frames)
    for batch in tqdm(batches, desc="embedding", unit="batch", disable=not progress):
        frames, mask = pad_frames([torch.from_numpy(np.asarray(arrays[i], dtype=np.float32)) for i in batch])
        frames, mask = frames.to(device=device, dtype=dtype), mask.to(device)
        if model is None:
            videos = F.normalize((frames * mask[..., None]).sum(1) / mask.sum(1, keepdim=True), dim=-1)
            per_frame = frames
        else:
            output = model(frame_features=frames, attention_mask=mask.long())
            videos, per_frame = output.video_embeds, output.frame_embeds
            if keep_frames and per_frame is None:
                raise ValueError(
                    f"the model (aggregator={getattr(model.config, 'aggregator', '?')!r}) gives no frame "
                    "embeddings: use a video-level similarity (cosine) or embed with keep_frames=False"
                )
        for row, i in enumerate(batch):
            video_embeds[i] = videos[row].float().cpu()
            if keep_frames:
                frame_embeds[i] = per_frame[row, : int(mask[row].sum())].to("cpu", frame_dtype).clone()
    return VideoEmbeddings(ids, torch.stack(video_embeds), frame_embeds if keep_frames else None, skipped)


def _frame_similarity(kind: str):
    return chamfer_similarity if kind == "chamfer" else symmetric_chamfer_similarity


def frame_level_similarities(
    query_frames: Sequence[torch.Tensor],
    database_frames: Sequence[torch.Tensor],
    kind: str = "chamfer",
    group_bytes: int = 16 * 2**20,
    max_query_frames: int = 4096,
    chunk_bytes: int = 2 * 2**20,
    progress: bool = False,
) -> torch.Tensor:
    """Chamfer (or symmetric chamfer) of every query against every database video: [Q, D] float32.

    On CPU nothing is padded: consecutive queries (up to `max_query_frames` frames) are stacked, and
    consecutive database videos fill blocks whose similarity matrix [frames, query frames] stays under
    `chunk_bytes` (one long video gets a block of its own). Each block's frames are copied (float16 stores
    cast) into one reused buffer and scored by one matmul; per-video maxima and per-query means are
    segment reductions over the block (`np.maximum.reduceat`, `np.add.reduceat`), which stays in cache.
    One matmul a block rather than one a video keeps the speed for many stacked queries and on a loaded
    machine; reused buffers keep blocks from page-faulting fresh memory. Elsewhere (CUDA) both sides are
    grouped by length and padded per group (`group_bytes`), and `chamfer_similarity` does the masked
    reductions. Measured against a same-FLOPs matmul in bench_chamfer.py."""
    out = torch.empty(len(query_frames), len(database_frames))
    if not len(query_frames) or not len(database_frames):
        return out
    for name, frames in (("query", query_frames), ("database", database_frames)):
        empty = [i for i, f in enumerate(frames) if f.shape[0] == 0]
        if empty:
            raise ValueError(f"{name} video {empty[0]} has no frames: chamfer needs at least one")
    if query_frames[0].device.type != "cpu":
        return _padded_frame_similarities(
            query_frames, database_frames, kind, group_bytes, max_query_frames, chunk_bytes, progress
        )
    symmetric = kind != "chamfer"
    dtype = torch.float64 if query_frames[0].dtype == torch.float64 else torch.float32
    itemsize = torch.finfo(dtype).bits // 8
    d_lengths_all = [f.shape[0] for f in database_frames]
    longest = max(d_lengths_all)
    query_groups = _consecutive_groups([f.shape[0] for f in query_frames], max_query_frames)
    bar = tqdm(total=len(query_groups) * len(database_frames), desc=kind, disable=not progress)
    for q_start, q_stop in query_groups:
        q_lengths = np.array([f.shape[0] for f in query_frames[q_start:q_stop]])
        q_offsets = np.concatenate([[0], np.cumsum(q_lengths)[:-1]])
        query_t = torch.cat([f.to(dtype) for f in query_frames[q_start:q_stop]]).T  # [H, sum Fq]
        cap = max(1, chunk_bytes // (itemsize * query_t.shape[1]))
        block_buffer = torch.empty(max(cap, longest), query_t.shape[1], dtype=dtype)
        frames_buffer = torch.empty(max(cap, longest), query_t.shape[0], dtype=dtype)
        for d_start, d_stop in _consecutive_groups(d_lengths_all, cap):
            d_lengths = np.array(d_lengths_all[d_start:d_stop])
            d_offsets = np.concatenate([[0], np.cumsum(d_lengths)[:-1]])
            sims = block_buffer[: int(d_lengths.sum())]  # [sum Fd, sum Fq]
            for video, offset, length in zip(database_frames[d_start:d_stop], d_offsets, d_lengths):
                frames_buffer[offset : offset + length].copy_(video)  # casts float16 stores
            torch.matmul(frames_buffer[: len(sims)], query_t, out=sims)  # one matmul a block
            sims = sims.numpy()
            best_per_video = np.maximum.reduceat(sims, d_offsets, axis=0)  # [videos, sum Fq]
            scores = np.add.reduceat(best_per_video, q_offsets, axis=1) / q_lengths[None]  # [videos, queries]
            if symmetric:
                best_per_query = np.maximum.reduceat(sims, q_offsets, axis=1)  # [sum Fd, queries]
                reverse = np.add.reduceat(best_per_query, d_offsets, axis=0) / d_lengths[:, None]
                scores = (scores + reverse) / 2
            out[q_start:q_stop, d_start:d_stop] = torch.from_numpy(scores.T.astype(np.float32))
            bar.update((q_stop - q_start) * (d_stop - d_start))
    bar.close()
    return out


def _consecutive_groups(lengths: Sequence[int], max_frames: int) -> list[tuple[int, int]]:
    """[start, stop) runs of consecutive items whose lengths sum to at most `max_frames` (an item longer
    than that gets a run of its own)."""
    groups, start, total = [], 0, 0
    for i, n in enumerate(lengths):
        if i > start and total + n > max_frames:
            groups.append((start, i))
            start, total = i, 0
        total += n
    groups.append((start, len(lengths)))
    return groups


def _padded_frame_similarities(
    query_frames: Sequence[torch.Tensor],
    database_frames: Sequence[torch.Tensor],
    kind: str,
    group_bytes: int,
    max_query_frames: int,
    chunk_bytes: int,
    progress: bool,
) -> torch.Tensor:
    """`frame_level_similarities` off CPU: groups of similar length, padded and masked per group."""
    similarity = _frame_similarity(kind)
    out = torch.empty(len(query_frames), len(database_frames))
    max_frames = max(1, group_bytes // (4 * database_frames[0].shape[-1]))
    query_groups = length_batches([f.shape[0] for f in query_frames], max_query_frames)
    padded_queries = [pad_frames([query_frames[i] for i in group]) for group in query_groups]  # small
    database_groups = length_batches([f.shape[0] for f in database_frames], max_frames)
    bar = tqdm(total=len(database_groups), desc=kind, disable=not progress)
    for d_group in database_groups:  # each database group is padded (copied) once
        d_pad, d_mask = pad_frames([database_frames[i] for i in d_group])
        for q_group, (q_pad, q_mask) in zip(query_groups, padded_queries):
            block = similarity(q_pad, q_mask, d_pad, d_mask, chunk_bytes=chunk_bytes)  # [q, d]
            out[np.ix_(q_group, d_group)] = block.float().cpu()
        bar.update()
    bar.close()
    return out


@torch.no_grad()
def comparator_similarities(
    query_frames: Sequence[torch.Tensor],
    database_frames: Sequence[torch.Tensor],
    comparator: torch.nn.Module,
    batch_size: int = 64,
    progress: bool = False,
) -> torch.Tensor:
    """TCA_v: the comparator's video similarity of every query against every database video, [Q, D] float32.

    Videos with fewer than 4 frames are repeated to 4, as DnS's pipeline does (`repeat_to_min_frames`)."""
    if comparator is None:
        raise ValueError("comparator similarity needs a TCAComparatorModel (--comparator)")
    comparator.eval()
    out = torch.empty(len(query_frames), len(database_frames))
    for q, query in enumerate(tqdm(query_frames, desc="comparator", disable=not progress)):
        if len(database_frames):
            out[q] = comparator.score_database(
                query.float(), [d.float() for d in database_frames], batch_size, repeat_short=True
            )
    return out


def cascade_similarities(
    queries: VideoEmbeddings,
    database: VideoEmbeddings,
    depth: int = 100,
    kind: str = "chamfer",
    comparator: torch.nn.Module | None = None,
) -> torch.Tensor:
    """Cosine for every pair; each query's top `depth` database videos re-scored with `kind` (chamfer,
    symmetric_chamfer or comparator). Candidates outside the top `depth` get ``cosine - CASCADE_OFFSET``
    (ranked after the re-scored ones; every re-score lies in [-1, 1])."""
    if queries.frame_embeds is None or database.frame_embeds is None:
        raise ValueError("cascade similarity needs frame embeddings (embed with keep_frames=True)")
    scores = cosine_similarity(queries.video_embeds, database.video_embeds).float() - CASCADE_OFFSET  # [Q, D]
    depth = min(depth, len(database))
    top = scores.topk(depth, dim=1).indices  # [Q, depth]
    for q in range(len(queries)):
        candidates = top[q].tolist()
        candidate_frames = [database.frame_embeds[c] for c in candidates]
        if kind == "comparator":
            rescored = comparator_similarities([queries.frame_embeds[q]], candidate_frames, comparator)
        else:
            rescored = frame_level_similarities([queries.frame_embeds[q]], candidate_frames, kind)
        scores[q, top[q]] = rescored[0]
    return scores


def compute_similarities(
    queries: VideoEmbeddings,
    database: VideoEmbeddings,
    kind: str = "cosine",
    cascade_depth: int = 100,
    progress: bool = False,
    comparator: torch.nn.Module | None = None,
    cascade_rerank: str = "chamfer",
) -> torch.Tensor:
    """[Q, D] similarities of `queries` against `database` for one of `SIMILARITIES` (`comparator`: a
    `TCAComparatorModel`, for ``comparator`` and for ``cascade`` with ``cascade_rerank="comparator"``)."""
    if kind == "cosine":
        return cosine_similarity(queries.video_embeds, database.video_embeds).float()
    if kind in ("chamfer", "symmetric_chamfer"):
        if queries.frame_embeds is None or database.frame_embeds is None:
            raise ValueError(f"{kind} similarity needs frame embeddings (embed with keep_frames=True)")
        return frame_level_similarities(queries.frame_embeds, database.frame_embeds, kind, progress=progress)
    if kind == "comparator":
        if queries.frame_embeds is None or database.frame_embeds is None:
            raise ValueError("comparator similarity needs frame embeddings (embed with keep_frames=True)")
        return comparator_similarities(
            queries.frame_embeds, database.frame_embeds, comparator, progress=progress
        )
    if kind == "cascade":
        if cascade_rerank not in ("chamfer", "symmetric_chamfer", "comparator"):
            raise ValueError(
                f"cascade_rerank must be chamfer, symmetric_chamfer or comparator, got {cascade_rerank!r}"
            )
        if cascade_rerank == "comparator" and comparator is None:
            raise ValueError(
                "a cascade re-ranked by the comparator needs a TCAComparatorModel (--comparator)"
            )
        return cascade_similarities(queries, database, cascade_depth, cascade_rerank, comparator)
    raise ValueError(f"unknown similarity {kind!r}; expected one of {SIMILARITIES}")


__all__ = [
    "CASCADE_OFFSET",
    "SIMILARITIES",
    "VideoEmbeddings",
    "cascade_similarities",
    "comparator_similarities",
    "check_descriptors",
    "compute_similarities",
    "embed_descriptors",
    "frame_level_similarities",
    "length_batches",
    "pad_frames",
]
