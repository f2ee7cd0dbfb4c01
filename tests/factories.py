"""Shared builders of small, structured test data (imported by tests in several folders)."""

import json
from pathlib import Path

import numpy as np

from vidtempo.processing.descriptor_store import write_descriptors
from vidtempo.training.train_tca import TrainConfig

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TRAIN_DIM = 32  # descriptor width of `make_synthetic`
EVAL_DIM = 16  # descriptor width of `tiny_collection`


def make_synthetic(root: Path, num_groups=40, per_group=3, num_distractors=80, seed=0, nuisance=3.0):
    """Groups of related videos share a content signal in dims 16..31 (each a noisy crop of the group's
    sequence); every video also carries a large random per-video offset in dims 0..15 (nuisance) that a
    trained model must learn to ignore. Distractors are independent."""
    rng = np.random.default_rng(seed)
    half = TRAIN_DIM // 2

    def video(content):
        x = np.zeros((content.shape[0], TRAIN_DIM))
        x[:, :half] = nuisance * rng.standard_normal(half) + 0.5 * rng.standard_normal(
            (content.shape[0], half)
        )
        x[:, half:] = content + 0.5 * rng.standard_normal(content.shape)
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float16)

    def content(length):
        return rng.standard_normal(half) + 0.5 * rng.standard_normal((length, half))

    descriptors, pairs = {}, []
    for g in range(num_groups):
        base = content(int(rng.integers(30, 60)))
        ids = []
        for k in range(per_group):
            start, stop = int(rng.integers(0, 10)), base.shape[0] - int(rng.integers(0, 10))
            ids.append(f"g{g:03d}_{k}")
            descriptors[ids[-1]] = video(base[start:stop])
        pairs += [[ids[i], ids[j]] for i in range(per_group) for j in range(i + 1, per_group)]
    for d in range(num_distractors):
        descriptors[f"d{d:04d}"] = video(content(int(rng.integers(20, 60))))
    write_descriptors(root / "desc", descriptors)
    (root / "pairs.json").write_text(json.dumps(pairs))
    return root / "desc", root / "pairs.json", descriptors, pairs


def tiny_config(root: Path, desc, pairs, **overrides) -> TrainConfig:
    values = dict(
        descriptors=str(desc),
        pairs=str(pairs),
        output_dir=str(root / "out"),
        hidden_size=16,
        num_attention_heads=4,
        intermediate_size=64,
        dropout=0.1,
        epochs=4,
        batch_size=16,
        negatives_per_anchor=4,
        bank_size=128,
        num_frames=32,
        learning_rate=3e-3,
        save_every=0,
        val_fraction=0.2,
        val_distractors=40,
        progress=False,
        report_to="none",
    )
    values.update(overrides)
    return TrainConfig(**values)


def tiny_collection(seed=0, num_queries=3, per_query=3, distractors=6):
    """Queries, near-duplicates (noisy copies), and random distractors of 3..9 frames, plus a FIVR-schema
    annotation: the first copy of each query is ND, the second DS, the third IS."""
    rng = np.random.default_rng(seed)
    descriptors, annotation, database = {}, {}, []
    for q in range(num_queries):
        base = rng.normal(size=(int(rng.integers(4, 9)), EVAL_DIM))
        descriptors[f"q{q}"] = base
        labels = {}
        for c, label in zip(range(per_query), ["ND", "DS", "IS"]):
            video = f"q{q}_c{c}"
            start = int(rng.integers(0, 2))
            descriptors[video] = base[start:] + rng.normal(scale=0.3 * (c + 1), size=base[start:].shape)
            labels.setdefault(label, []).append(video)
            database.append(video)
        annotation[f"q{q}"] = labels
    for d in range(distractors):
        descriptors[f"d{d}"] = rng.normal(size=(int(rng.integers(3, 10)), EVAL_DIM))
        database.append(f"d{d}")
    descriptors = {
        k: (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32) for k, v in descriptors.items()
    }
    queries = [f"q{q}" for q in range(num_queries)]
    fivr = {
        "versions": {"tiny": {"queries": queries, "database": queries + database}},
        "annotation": annotation,
    }
    return descriptors, fivr


def naive_evve_ap(ranked, positives: set, all_db: set) -> float:
    """EVVE's AP of one query worked as a loop (ViSiL's evaluator): the positives' ranks in `ranked` (ids,
    best first) shifted past the results that are not in `all_db`; trapezoidal rule over the positives."""
    ranks, outside = [], 0
    for r, video in enumerate(ranked):
        if video in positives:
            ranks.append(r - outside)
        if video not in all_db:
            outside += 1
    ap = 0.0
    for found, rank in enumerate(ranks):
        left = 1.0 if rank == 0 else found / rank
        right = (found + 1) / (rank + 1)
        ap += (left + right) / len(positives) / 2.0
    return ap


def tiny_tca_video(
    seed: int = 0, comparator: bool = False, pca_dim: int = 16, fit_pca_on=None, lite: bool = False
):
    """A tiny composite TCA video model (random ResNet 8-wide stages, PCA to `pca_dim`: random orthogonal, or
    fitted on the frames of the videos `fit_pca_on` as the real pipeline does, a 16-d one-layer TCA,
    optionally a comparator; `lite`: a tiny EfficientNet-Lite backbone instead), its processor (64 -> 56 px,
    2 fps), the descriptor model and TCA."""
    import torch
    from transformers import ResNetConfig

    from vidtempo.modeling import (
        FrameDescriptorConfig,
        FrameDescriptorModel,
        TCAComparatorConfig,
        TCAComparatorModel,
        TCAConfig,
        TCAModel,
        TCAVideoModel,
    )
    from vidtempo.processing.descriptor_pca import PCAWhitening
    from vidtempo.processing.image_processing_tca import TCAImageProcessor
    from vidtempo.processing.processing_tca_video import TCAVideoProcessor

    torch.manual_seed(seed)
    backbone = ResNetConfig(depths=[1, 1, 1, 1], hidden_sizes=[8, 8, 8, 8], embedding_size=8)
    if lite:
        from vidtempo.modeling import EfficientNetLiteConfig

        backbone = EfficientNetLiteConfig(
            width_coefficient=0.25, depth_coefficient=0.5, head_channels=8, num_labels=0
        )
    descriptor = FrameDescriptorModel(FrameDescriptorConfig(backbone_config=backbone)).eval()
    raw_dim = descriptor.config.feature_dim
    processor = TCAVideoProcessor(TCAImageProcessor(shortest_edge=64, crop_size=56), fps=2.0)
    rng = np.random.default_rng(seed)
    if fit_pca_on is not None:
        from vidtempo.processing.descriptor_pca import StreamingPCA

        accumulator = StreamingPCA(raw_dim)
        for frames in fit_pca_on:
            with torch.no_grad():
                accumulator.update(
                    descriptor(processor.image_processor(frames)["pixel_values"]).pooled_features
                )
        pca = accumulator.fit(pca_dim)
    else:
        components = np.linalg.qr(rng.standard_normal((raw_dim, raw_dim)))[0][:pca_dim]
        pca = PCAWhitening(
            mean=rng.standard_normal(raw_dim) * 0.01,
            components=components,
            eigenvalues=rng.uniform(0.5, 2, pca_dim),
        )
    descriptor.set_pca(pca)
    tca = TCAModel(TCAConfig(input_size=pca_dim, hidden_size=16, num_attention_heads=2, intermediate_size=32))
    comp = TCAComparatorModel(TCAComparatorConfig(conv_channels=[4, 4, 4])) if comparator else None
    model = TCAVideoModel.from_descriptor_and_tca(descriptor.eval(), tca.eval(), comp, fps=2.0)
    return model, processor, descriptor, tca


def texture_video(seed: int, num_frames: int = 30, height: int = 48, width: int = 64) -> np.ndarray:
    """uint8 frames [N, H, W, 3] of a blocky random texture scrolling sideways (seeded)."""
    blocks = np.random.default_rng(seed).integers(
        0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8
    )
    texture = np.kron(blocks, np.ones((8, 8, 1), np.uint8))[:height, :width]
    return np.stack([np.roll(texture, 2 * t, axis=1) for t in range(num_frames)])


LOCVTP_WORDS = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "a",
    "man",
    "is",
    "cooking",
    "dog",
    "runs",
    "red",
]


def tiny_locvtp(tmp_path: Path, seed: int = 0):
    """A tiny random LocVTP (TimeSformer 16 px, 4-frame clips; DistilBERT on a 12-word vocabulary) and its
    processor with a real tokenizer."""
    import torch
    from transformers import DistilBertTokenizerFast

    from vidtempo.modeling import LocVTPConfig, LocVTPModel
    from vidtempo.processing.processing_locvtp import LocVTPProcessor, default_image_processor

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(LOCVTP_WORDS) + "\n")
    tokenizer = DistilBertTokenizerFast(vocab=str(vocab))
    processor = LocVTPProcessor(
        image_processor=default_image_processor(size=16), tokenizer=tokenizer, num_clips=3, frames_per_clip=4
    )
    torch.manual_seed(seed)
    config = LocVTPConfig(
        vision_config=dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24,
                           image_size=16, patch_size=8, num_frames=4),
        text_config=dict(vocab_size=len(LOCVTP_WORDS), dim=16, n_layers=1, n_heads=2, hidden_dim=24),
        projection_dim=8, frames_per_clip=4, special_token_ids=processor.special_token_ids,
    )  # fmt: skip
    return LocVTPModel(config).eval(), processor
