"""Fit PCA whitening on extracted raw descriptors and apply it (the "extract -> fit PCA -> whiten" step)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..modeling.modeling_frame_descriptor import PCAWhitening, StreamingPCA
from .descriptor_store import DescriptorWriter, iter_descriptors, read_info


def fit_pca_on_descriptors(
    directory: str | os.PathLike,
    dim: int = 1024,
    frames_per_video: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> PCAWhitening:
    """Stream a descriptor folder through `StreamingPCA` and keep `dim` components.

    `frames_per_video` samples that many random frames of each video (the authors' code uses 10); `None`
    uses every frame (the paper fits on ~1M frames). Memory is O(D^2) whatever the folder size.
    """
    info = read_info(directory)
    accumulator = StreamingPCA(info["dim"])
    rng = np.random.default_rng(seed)
    for _, features, _ in tqdm(iter_descriptors(directory), desc="fit PCA", unit="video", disable=not progress):
        if frames_per_video is not None and len(features) > frames_per_video:
            features = features[np.sort(rng.choice(len(features), frames_per_video, replace=False))]
        accumulator.update(features)
    if dim > info["dim"]:
        raise ValueError(f"{directory}: cannot keep {dim} PCA components of {info['dim']}-d descriptors")
    return accumulator.fit(dim)


def whiten_descriptor_folder(
    source: str | os.PathLike, target: str | os.PathLike, pca: PCAWhitening, eps: float = 1e-9,
    shard_size: int = 64, progress: bool = True,
) -> Path:
    """Write `target`, a copy of descriptor folder `source` with every frame PCA-whitened and L2-normalised."""
    info = read_info(source)
    if pca.mean.shape[0] != info["dim"]:
        raise ValueError(f"{source}: descriptors are {info['dim']}-d, the PCA expects {pca.mean.shape[0]}-d")
    import pyarrow.parquet as pq

    from .descriptor_store import shard_files

    meta = {}
    for shard in shard_files(source):
        table = pq.read_table(shard, columns=["video_id", "path", "fps"])
        for vid, path, fps in zip(*(table.column(c).to_pylist() for c in ("video_id", "path", "fps")), strict=True):
            meta[vid] = (path, fps)
    extra = {k: v for k, v in info.items() if k not in ("format", "version", "dim")}
    extra["whitened_from"] = str(source)
    with DescriptorWriter(target, pca.components.shape[0], shard_size=shard_size, metadata=extra) as writer:
        for vid, features, stamps in tqdm(iter_descriptors(source), desc="whiten", unit="video",
                                          disable=not progress):
            path, fps = meta[vid]
            writer.add(vid, pca.transform(features, eps=eps), path=path, fps=fps, timestamps=stamps)
    return Path(target)


__all__ = ["fit_pca_on_descriptors", "whiten_descriptor_folder"]
