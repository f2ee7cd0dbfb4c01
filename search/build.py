"""Building a `VideoIndex` from a descriptor folder: embed with a TCA model chunk by chunk, resume, and refuse
to mix embedding spaces (another TCA model, or descriptors of another descriptor model)."""

from __future__ import annotations

import itertools
import logging
import os
from pathlib import Path

import torch
from tqdm.auto import tqdm

from vidtempo.evaluation.embedding import embed_descriptors
from vidtempo.processing.descriptor_store import iter_descriptors, read_info
from vidtempo.processing.provenance import model_record, same_model

from .index import VideoIndex

logger = logging.getLogger(__name__)


def _chunks(iterable, size: int):
    iterator = iter(iterable)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def build_index(
    features_dir: str | os.PathLike,
    index_dir: str | os.PathLike,
    model=None,
    model_name: str = "none",
    chunk_videos: int = 256,
    train_size: int = 50_000,
    device: str = "cpu",
    progress: bool = True,
    force: bool = False,
    **index_kwargs,
) -> VideoIndex:
    """Embed every video of a descriptor folder and add it to the index in `index_dir`, saving after
    each chunk. Videos already in the index are skipped (resume). IVF indexes are trained on the first
    `train_size` embeddings. Adding to an index built with another TCA model, or from descriptors of another
    descriptor model, is refused (the difference named) unless `force`: it would mix embedding spaces."""
    info = read_info(features_dir)
    record = model_record(model_name)
    descriptor_model = {"model": info.get("model"), "model_sha256": info.get("model_sha256")}
    index: VideoIndex | None = None
    if (Path(index_dir) / "config.json").exists():
        index = VideoIndex.load(index_dir)
        backend = index_kwargs.get("backend")
        if backend and backend != index.config.get("backend", "faiss"):
            raise ValueError(
                f"{Path(index_dir) / 'config.json'}: the index uses backend {index.config.get('backend', 'faiss')!r}, "
                f"not {backend!r}: use another --index for a {backend} index"
            )
        if not force:
            check_same_space(index, record, descriptor_model, info)
    seen: set[str] = set()  # a duplicated id is indexed once (its first copy)
    skipped: list[dict] = []  # malformed videos: reported, the rest is indexed
    pending: list = []  # (ids, video embeds, frame embeds) buffered until an IVF index can be trained
    bar = tqdm(desc="indexing", unit="video", disable=not progress)
    for chunk in _chunks(iter_descriptors(features_dir), chunk_videos):
        chunk = [
            (v, f)
            for v, f, _ in chunk
            if (index is None or v not in index) and v not in seen and not seen.add(v)
        ]
        if not chunk:
            continue
        try:
            emb = embed_descriptors(
                model,
                chunk,
                keep_frames=index_kwargs.get("store_frames", True)
                if index is None
                else index.frames is not None,
                device=device,
                progress=False,
                skip_bad=True,
            )
        except ValueError as error:  # every video of the chunk was malformed
            skipped += [{"video_id": v, "error": str(error)} for v, _ in chunk]
            continue
        skipped += emb.skipped
        if index is None:
            metadata = {
                **record,
                "features": str(Path(features_dir).resolve()),
                "descriptor_dim": info["dim"],
                "descriptor_model": descriptor_model,
            }
            index = VideoIndex(index_dir, emb.video_embeds.shape[1], metadata=metadata, **index_kwargs)
        pending.append(emb)
        if index.is_trained or sum(len(p) for p in pending) >= train_size:
            pending = _commit(index, pending, bar)
    if pending:  # a collection smaller than train_size
        _commit(index, pending, bar)
    bar.close()
    for item in skipped:
        logger.warning("skipped %s: %s", item["video_id"], item["error"])
    if index is None:
        raise ValueError(f"{features_dir}: the descriptor folder holds no usable videos")
    index.skipped = skipped
    return index


def _commit(index: VideoIndex, pending: list, bar) -> list:
    """Train `index` on the buffered embeddings if it is untrained, add them, save; returns the empty buffer."""
    if not index.is_trained:
        index.train(torch.cat([p.video_embeds for p in pending]))
    for emb in pending:
        index.add(emb.ids, emb.video_embeds, emb.frame_embeds)
        bar.update(len(emb))
    index.save()
    return []


def check_same_space(index: VideoIndex, record: dict, descriptor_model: dict, info: dict) -> None:
    """Refuse (ValueError naming the difference) to add embeddings of the TCA model `record`, computed from
    descriptors of `descriptor_model` with `info` (descriptor folder info), to `index` built otherwise."""
    meta = index.config["metadata"]
    where = Path(index.directory) / "config.json"
    if not same_model(meta, record):
        raise ValueError(
            f"{where}: the index holds embeddings of model {meta.get('model')}, this run embeds with "
            f"{record['model']} ({'sha256 ' + record['model_sha256'][:12] + '…' if record['model_sha256'] else 'no hash'}); "
            "the two embedding spaces cannot be mixed: use another --index, or --force if they are the same model"
        )
    if meta.get("descriptor_dim") not in (None, info["dim"]):
        raise ValueError(
            f"{where}: the index was built from {meta['descriptor_dim']}-d descriptors, the features "
            f"are {info['dim']}-d"
        )
    recorded = meta.get("descriptor_model")
    if (
        recorded
        and (recorded.get("model_sha256") or descriptor_model.get("model_sha256"))
        and not same_model(recorded, descriptor_model)
    ):
        raise ValueError(
            f"{where}: the index was built from descriptors of {recorded.get('model')}, these features come from "
            f"{descriptor_model.get('model')}: use another --index, or --force if they are the same model"
        )
