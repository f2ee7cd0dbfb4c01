"""Fit PCA whitening on extracted raw descriptors and apply it (the "extract -> fit PCA -> whiten" step)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .descriptor_store import DescriptorWriter, iter_descriptors, read_info

logger = logging.getLogger(__name__)
NOISE_FLOOR = 1e-10  # eigenvalues below this share of the largest are numerically zero


@dataclass
class PCAWhitening:
    """A fitted PCA: `mean` [D], `components` [K, D] (rows = eigenvectors, largest eigenvalue first),
    `eigenvalues` [K] (of the sample covariance, divisor n - 1)."""

    mean: np.ndarray
    components: np.ndarray
    eigenvalues: np.ndarray

    def transform(self, x: np.ndarray, eps: float = 1e-9, normalize: bool = True) -> np.ndarray:
        """Whiten [N, D] -> [N, K] (float32): centre, project, divide by sqrt(max(eigenvalue, eps)), L2-norm."""
        x = np.asarray(x, dtype=np.float64)
        y = (x - self.mean) @ self.components.T / np.sqrt(np.maximum(self.eigenvalues, eps))
        if normalize:
            y = y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
        return y.astype(np.float32)


class StreamingPCA:
    """Accumulates the mean and covariance of descriptors batch by batch in float64 (memory O(D^2), not
    O(N D)), so ~1M x 3840 descriptors fit in ~120 MB. Batches are shifted by the first batch's mean before
    accumulating, which keeps the `sum(x x^T) - n mu mu^T` formula numerically stable."""

    def __init__(self, dim: int):
        self.dim = int(dim)
        self.count = 0
        self._shift: np.ndarray | None = None
        self._sum = np.zeros(self.dim, dtype=np.float64)
        self._outer = np.zeros((self.dim, self.dim), dtype=np.float64)

    def update(self, batch) -> None:
        """Add descriptors [N, D] (numpy or torch, any float dtype)."""
        if isinstance(batch, torch.Tensor):
            batch = batch.detach().cpu().double().numpy()
        x = np.asarray(batch, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"StreamingPCA.update: expected descriptors [N, {self.dim}], got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("StreamingPCA.update: descriptors contain NaN or infinity")
        if x.shape[0] == 0:
            return
        if self._shift is None:
            self._shift = x.mean(axis=0)
        x = x - self._shift
        self.count += x.shape[0]
        self._sum += x.sum(axis=0)
        self._outer += x.T @ x

    def covariance(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean [D], sample covariance [D, D]) of everything seen so far."""
        if self.count < 2:
            raise ValueError(f"StreamingPCA: need at least 2 descriptors, got {self.count}")
        centred_mean = self._sum / self.count
        cov = (self._outer - self.count * np.outer(centred_mean, centred_mean)) / (self.count - 1)
        return centred_mean + self._shift, (cov + cov.T) / 2

    def fit(self, dim: int | None = None) -> PCAWhitening:
        """Eigendecomposition of the covariance; keep the `dim` largest components (all if None)."""
        dim = self.dim if dim is None else int(dim)
        if not 0 < dim <= self.dim:
            raise ValueError(f"StreamingPCA.fit: dim must be in [1, {self.dim}], got {dim}")
        mean, cov = self.covariance()
        eigenvalues, eigenvectors = np.linalg.eigh(cov)  # ascending
        order = np.argsort(eigenvalues)[::-1][:dim]
        return PCAWhitening(
            mean=mean, components=eigenvectors[:, order].T.copy(), eigenvalues=eigenvalues[order]
        )


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
    for _, features, _ in tqdm(
        iter_descriptors(directory), desc="fit PCA", unit="video", disable=not progress
    ):
        if frames_per_video is not None and len(features) > frames_per_video:
            features = features[np.sort(rng.choice(len(features), frames_per_video, replace=False))]
        accumulator.update(features)
    if dim > info["dim"]:
        raise ValueError(f"{directory}: cannot keep {dim} PCA components of {info['dim']}-d descriptors")
    if dim >= accumulator.count:
        raise ValueError(
            f"{directory}: {accumulator.count} frames were fitted, so at most {accumulator.count - 1} PCA components "
            f"carry any variance; --dim {dim} would whiten {dim - accumulator.count + 1} or more directions of pure "
            f"noise. Use --dim {max(1, accumulator.count - 1)} or less, or fit on more frames"
        )
    pca = accumulator.fit(dim)
    floor = NOISE_FLOOR * max(float(pca.eigenvalues[0]), 1e-300)
    noise = int((pca.eigenvalues <= floor).sum())
    if noise:
        logger.warning(
            "%s: %d of the %d kept PCA components have variance below %.0e of the largest (numerically zero); "
            "whitening divides them by sqrt(eigenvalue + eps) and amplifies noise. Consider --dim %d",
            directory,
            noise,
            dim,
            NOISE_FLOOR,
            dim - noise,
        )
    return pca


def whiten_descriptor_folder(
    source: str | os.PathLike,
    target: str | os.PathLike,
    pca: PCAWhitening,
    eps: float = 1e-9,
    shard_size: int = 64,
    progress: bool = True,
    metadata: dict | None = None,
) -> Path:
    """Write `target`, a copy of descriptor folder `source` with every frame PCA-whitened and L2-normalised.
    `metadata` overrides entries of the copied `info.json` (the whitened model that produced it, its PCA dim)."""
    info = read_info(source)
    if pca.mean.shape[0] != info["dim"]:
        raise ValueError(f"{source}: descriptors are {info['dim']}-d, the PCA expects {pca.mean.shape[0]}-d")
    import pyarrow.parquet as pq

    from .descriptor_store import shard_files

    meta = {}
    for shard in shard_files(source):
        table = pq.read_table(shard, columns=["video_id", "path", "fps"])
        for vid, path, fps in zip(
            *(table.column(c).to_pylist() for c in ("video_id", "path", "fps")), strict=True
        ):
            meta[vid] = (path, fps)
    extra = {k: v for k, v in info.items() if k not in ("format", "version", "dim")}
    extra.update(metadata or {}, whitened_from=str(Path(source).resolve()))
    with DescriptorWriter(target, pca.components.shape[0], shard_size=shard_size, metadata=extra) as writer:
        for vid, features, stamps in tqdm(
            iter_descriptors(source), desc="whiten", unit="video", disable=not progress
        ):
            path, fps = meta[vid]
            writer.add(vid, pca.transform(features, eps=eps), path=path, fps=fps, timestamps=stamps)
    return Path(target)


__all__ = ["fit_pca_on_descriptors", "whiten_descriptor_folder"]
