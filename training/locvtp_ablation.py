"""The LocVTP loss ablation at the feature level (issue 21 §5; protocol and decision rule: docs/locvtp.md).

Frozen real towers, small trainable heads, the model's own loss functions:

* video: ImageNet EfficientNet-Lite0 pooled head features (1280-d) of every sampled frame, frozen, under a
  trainable 1-layer Transformer over the frames; a clip is the mean of its frames' outputs, projected to D;
* text: frozen all-MiniLM-L6-v2 token features (384-d) under a trainable 1-layer Transformer + projection;
  word candidates are the processor's whole words (`LocVTPProcessor.word_candidate_mask`);
* losses: `coarse_contrastive_loss`, `discover_correspondence` (clip top-K, K = 3), `positive_word_embeds`,
  `fine_grained_contrastive_loss`, `sample_temporal_offsets` and `LocVTPContextWarpingHead` of
  `modeling_locvtp`, weighted 0.5 / 1 / 1 as in the paper, with the arm's terms switched on.

Arms are paired within a seed: the same initial weights (one seeded init copied to every arm), the same
batches and the same δ draws (one generator per seed, consumed identically by every arm).
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..evaluation.grounding import ground_sentence, grounding_metrics, reference_metrics
from ..evaluation.text_video_retrieval import retrieval_metrics
from ..modeling.modeling_locvtp import (
    LocVTPContextWarpingHead,
    coarse_contrastive_loss,
    discover_correspondence,
    fine_grained_contrastive_loss,
    positive_word_embeds,
    sample_temporal_offsets,
)

logger = logging.getLogger(__name__)

ARMS = {
    "L_c": (0.5, 0.0, 0.0),
    "L_c+L_f": (0.5, 1.0, 0.0),
    "L_c+L_t": (0.5, 0.0, 1.0),
    "L_c+L_f+L_t": (0.5, 1.0, 1.0),
}


@dataclass
class AblationData:
    """Frozen features: frames [V, F, 1280] of every video, `frames_per_clip`, the video-level captions'
    token features [V, S, 384] / real-token mask / word-candidate mask, and the grounding queries (each
    with video index, start, end and token features [S', 384] / mask)."""

    frame_features: torch.Tensor
    frames_per_clip: int
    clip_seconds: float
    caption_tokens: torch.Tensor
    caption_mask: torch.Tensor
    caption_candidates: torch.Tensor
    queries: list[dict] = field(default_factory=list)

    @property
    def num_clips(self) -> int:
        return self.frame_features.shape[1] // self.frames_per_clip


class FeatureLocVTP(nn.Module):
    """The trainable heads over frozen frame and token features (module docstring)."""

    def __init__(self, frame_dim: int = 1280, token_dim: int = 384, hidden: int = 128, dim: int = 128):
        super().__init__()
        self.frame_in = nn.Linear(frame_dim, hidden)
        self.frame_pos = nn.Parameter(torch.zeros(64, hidden))
        self.frame_encoder = nn.TransformerEncoderLayer(hidden, 4, 2 * hidden, 0.1, batch_first=True)
        self.clip_out = nn.Linear(hidden, dim)
        self.token_in = nn.Linear(token_dim, hidden)
        self.token_encoder = nn.TransformerEncoderLayer(hidden, 4, 2 * hidden, 0.1, batch_first=True)
        self.word_out = nn.Linear(hidden, dim)
        self.warping_head = LocVTPContextWarpingHead(SimpleNamespace(projection_dim=dim))
        nn.init.normal_(self.frame_pos, std=0.02)

    def clips(self, frames: torch.Tensor, frames_per_clip: int) -> torch.Tensor:
        """[B, F, frame_dim] -> L2-normalised clip features [B, F // frames_per_clip, D]."""
        x = self.frame_in(frames) + self.frame_pos[: frames.shape[1]]
        x = self.frame_encoder(x)
        batch, num, hidden = x.shape
        x = x[:, : num // frames_per_clip * frames_per_clip].reshape(batch, -1, frames_per_clip, hidden)
        return F.normalize(self.clip_out(x.mean(2)), dim=-1)

    def words(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[B, S, token_dim] (+ attention mask [B, S]) -> L2-normalised word features [B, S, D]."""
        x = self.token_encoder(self.token_in(tokens), src_key_padding_mask=~mask.bool())
        return F.normalize(self.word_out(x), dim=-1)

    @staticmethod
    def sentence(words: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The sentence embedding: the normalised mean of the real tokens' word features [B, D]."""
        m = mask.to(words.dtype)[..., None]
        return F.normalize((words * m).sum(1) / m.sum(1).clamp(min=1), dim=-1)


def arm_loss(
    model: FeatureLocVTP,
    weights: tuple[float, float, float],
    clips: torch.Tensor,
    words: torch.Tensor,
    token_mask: torch.Tensor,
    candidates: torch.Tensor,
    offsets: torch.Tensor,
    temperature: float = 0.07,
) -> torch.Tensor:
    """0.5·L_c (+ 1·L_f) (+ 1·L_t) of one batch, as `LocVTPModel.compute_losses` builds them."""
    clip_mask = torch.ones(clips.shape[:2], dtype=torch.bool)
    video = F.normalize(clips.mean(1), dim=-1)
    loss = weights[0] * coarse_contrastive_loss(video, model.sentence(words, token_mask), temperature)
    if weights[1] or weights[2]:
        chosen = discover_correspondence(clips, words, clip_mask, candidates, 3, "clip_topk")
        positives = positive_word_embeds(chosen, words, "mean")
        if weights[1]:
            loss = loss + weights[1] * fine_grained_contrastive_loss(
                clips, positives, clip_mask, words, candidates, temperature
            )
        if weights[2]:
            warped = F.normalize(model.warping_head(clips, offsets), dim=-1)
            loss = loss + weights[2] * fine_grained_contrastive_loss(
                warped, positives, clip_mask, words, candidates, temperature
            )
    return loss


def train_arm(
    init: FeatureLocVTP,
    data: AblationData,
    train_videos: np.ndarray,
    arm: str,
    lr: float,
    seed: int,
    steps: int = 300,
    batch_size: int = 16,
    delta_max: int = 4,
) -> FeatureLocVTP:
    """Train a copy of `init` on `train_videos` with arm `arm`'s losses; batches and δ drawn from `seed`
    (identical for every arm of that seed)."""
    model = copy.deepcopy(init).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout
    for _ in range(steps):
        batch = train_videos[torch.randperm(len(train_videos), generator=generator)[:batch_size].numpy()]
        clips = model.clips(data.frame_features[batch], data.frames_per_clip)
        offsets = sample_temporal_offsets(torch.ones(clips.shape[:2], dtype=torch.bool), delta_max, generator)
        words = model.words(data.caption_tokens[batch], data.caption_mask[batch])
        loss = arm_loss(
            model, ARMS[arm], clips, words, data.caption_mask[batch], data.caption_candidates[batch], offsets
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.no_grad()
def evaluate_arm(model: FeatureLocVTP, data: AblationData, videos: np.ndarray) -> dict[str, float]:
    """Grounding (contrast window score, NMS 0.5) of the queries of `videos`, plus t2v R@5 of their
    video-level captions against them."""
    model.eval()
    clips = model.clips(data.frame_features[videos], data.frames_per_clip).double().numpy()
    position = {int(v): i for i, v in enumerate(videos)}
    times = clip_times(data)
    queries = [q for q in data.queries if q["video"] in position]
    predictions = []
    for q in queries:
        words = model.words(q["tokens"][None], q["mask"][None])
        sentence = model.sentence(words, q["mask"][None])[0].double().numpy()
        predictions.append(ground_sentence(clips[position[q["video"]]], times, sentence, top_n=5)[0])
    out = grounding_metrics(predictions, [(q["start"], q["end"]) for q in queries])
    words = model.words(data.caption_tokens[videos], data.caption_mask[videos])
    texts = model.sentence(words, data.caption_mask[videos]).double().numpy()
    video_embeds = clips.mean(1)
    video_embeds /= np.linalg.norm(video_embeds, axis=1, keepdims=True)
    out["t2v R@5"] = retrieval_metrics(texts @ video_embeds.T)["t2v"]["R@5"]
    return out


def clip_times(data: AblationData) -> np.ndarray:
    """[T, 2] seconds of the clips (consecutive, `clip_seconds` long)."""
    starts = np.arange(data.num_clips) * data.clip_seconds
    return np.stack([starts, starts + data.clip_seconds], axis=1)


def chance_rows(data: AblationData, videos: np.ndarray, untrained: FeatureLocVTP) -> dict[str, dict]:
    """The chance rows of a table: whole video, random window (seeded), the untrained model."""
    position = set(int(v) for v in videos)
    queries = [q for q in data.queries if q["video"] in position]
    rows = reference_metrics([clip_times(data)] * len(queries), [(q["start"], q["end"]) for q in queries])
    rows["whole_video"]["t2v R@5"] = rows["random_window"]["t2v R@5"] = (
        100.0 * min(5, len(videos)) / len(videos)
    )
    rows["untrained_model"] = evaluate_arm(untrained, data, videos)
    return rows


@torch.no_grad()
def build_ablation_data(
    captioned_dir: str, frames_per_clip: int = 2, size: int = 128, batch: int = 64
) -> tuple[AblationData, list[dict]]:
    """Frozen features of a (harder) captioned set folder: Lite0 pooled features of every frame (resized to
    `size`, Lite's (x - 127) / 128 normalisation) and MiniLM token features of the video-level captions and of
    the grounding queries (train + test files). Returns the data and the caption rows (video order)."""
    import torch.nn.functional as F  # noqa: N812
    from transformers import AutoModel, AutoTokenizer

    from ..evaluation.grounding import read_charades_sta
    from ..processing.captions import load_caption_dataset
    from ..processing.offline_models import efficientnet_lite0_classifier, minilm_folder
    from ..processing.processing_locvtp import LocVTPProcessor
    from ..processing.video_reader import read_all_frames

    rows = [
        {**row, "split": split}
        for split in ("train", "test")
        for row in load_caption_dataset(f"{captioned_dir}/captions.csv", split=split)
    ]
    lite = efficientnet_lite0_classifier().eval()
    frame_features, fps = [], None
    for row in rows:
        frames, fps = read_all_frames(row["video_path"])
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        x = (x - 127.0) / 128.0
        feats = torch.cat(
            [lite.efficientnet_lite(x[i : i + batch]).pooler_output for i in range(0, len(x), batch)]
        )
        frame_features.append(feats)
    num_frames = min(len(f) for f in frame_features)
    frame_features = torch.stack([f[:num_frames] for f in frame_features])
    folder = minilm_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    text_model = AutoModel.from_pretrained(folder).eval()
    processor = LocVTPProcessor(tokenizer=tokenizer)

    def encode(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tokens = processor(text=texts, max_length=48)
        hidden = text_model(
            input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
        ).last_hidden_state
        real = tokens["attention_mask"].bool() & ~torch.isin(
            tokens["input_ids"], torch.tensor(processor.special_token_ids)
        )
        return hidden, real, tokens["word_candidate_mask"].bool()

    caption_tokens, caption_mask, candidates = encode([r["caption"] for r in rows])
    index = {r["video_id"]: i for i, r in enumerate(rows)}
    queries = []
    for split in ("train", "test"):
        for q in read_charades_sta(f"{captioned_dir}/charades_sta_{split}.txt"):
            if q["video_id"] in index:
                queries.append(
                    {
                        "video": index[q["video_id"]],
                        "start": q["start"],
                        "end": q["end"],
                        "sentence": q["sentence"],
                    }
                )
    q_tokens, q_mask, _ = encode([q["sentence"] for q in queries])
    for q, tokens, mask in zip(queries, q_tokens, q_mask):
        q["tokens"], q["mask"] = (
            tokens[: int(mask.nonzero().max()) + 2],
            mask[: int(mask.nonzero().max()) + 2],
        )
    data = AblationData(
        frame_features=frame_features,
        frames_per_clip=frames_per_clip,
        clip_seconds=frames_per_clip / float(fps),
        caption_tokens=caption_tokens,
        caption_mask=caption_mask,
        caption_candidates=candidates,
        queries=queries,
    )
    return data, rows


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the Student-t interval of the mean of `values` (n >= 2)."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    mean = float(values.mean())
    if n < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half


def run_ablation(
    data: AblationData,
    rows: list[dict],
    seeds: list[int],
    lrs: list[float],
    steps: int = 300,
    tune_seed: int = 100,
    arms: list[str] | None = None,
    log=logger.info,
) -> dict:
    """Long because it is the whole protocol of docs/locvtp.md in one place: lr per arm on a validation split
    of the training videos (seed `tune_seed`), then every arm on every seed (paired), the chance rows, the
    paired differences against L_c with 95% t-intervals and the pre-registered decision."""
    arms = arms or list(ARMS)
    train = np.array([i for i, r in enumerate(rows) if r["split"] == "train"])
    test = np.array([i for i, r in enumerate(rows) if r["split"] == "test"])
    rng = np.random.default_rng(tune_seed)
    shuffled = rng.permutation(train)
    n_val = max(2, len(train) // 5)
    val, fit = np.sort(shuffled[:n_val]), np.sort(shuffled[n_val:])
    torch.manual_seed(tune_seed)
    tune_init = FeatureLocVTP()
    sweep: dict[str, dict[str, float]] = {}
    for arm in arms:
        for lr in lrs:
            model = train_arm(tune_init, data, fit, arm, lr, tune_seed, steps)
            sweep.setdefault(arm, {})[str(lr)] = evaluate_arm(model, data, val)["mIoU"]
            log(f"tune {arm} lr={lr}: validation mIoU {sweep[arm][str(lr)]:.2f}")
    chosen = {arm: float(max(sweep[arm], key=sweep[arm].get)) for arm in arms}
    per_seed: dict[str, list[dict]] = {arm: [] for arm in arms}
    untrained_rows = []
    for seed in seeds:
        torch.manual_seed(seed)
        init = FeatureLocVTP()
        untrained_rows.append(evaluate_arm(init, data, test))
        for arm in arms:
            per_seed[arm].append(
                evaluate_arm(train_arm(init, data, train, arm, chosen[arm], seed, steps), data, test)
            )
            log(f"seed {seed} {arm}: mIoU {per_seed[arm][-1]['mIoU']:.2f}")
    chance = chance_rows(data, test, init)
    chance["untrained_model"] = {k: float(np.mean([r[k] for r in untrained_rows])) for k in untrained_rows[0]}
    metrics = list(per_seed[arms[0]][0])
    summary = {arm: {m: t_interval(np.array([r[m] for r in per_seed[arm]])) for m in metrics} for arm in arms}
    paired = {}
    for arm in arms:
        if arm != "L_c" and "L_c" in per_seed:
            diff = np.array([a["mIoU"] - b["mIoU"] for a, b in zip(per_seed[arm], per_seed["L_c"])])
            interval = t_interval(diff)
            paired[arm] = {"delta_mIoU": interval, "decision": decide(interval), "per_seed": diff.tolist()}
    best_chance = max(chance["whole_video"]["mIoU"], chance["random_window"]["mIoU"])
    full = "L_c+L_f+L_t"
    localizes = bool(full in summary and summary[full]["mIoU"][1] > best_chance)
    return {
        "seeds": seeds,
        "steps": steps,
        "lr_sweep": sweep,
        "lr": chosen,
        "num_train_videos": len(train),
        "num_test_videos": len(test),
        "num_test_queries": sum(q["video"] in set(test.tolist()) for q in data.queries),
        "chance": chance,
        "per_seed": per_seed,
        "summary": summary,
        "paired_vs_L_c": paired,
        "trained_model_localizes": localizes,
    }


def decide(delta: tuple[float, float, float]) -> str:
    """The pre-registered rule (docs/locvtp.md) on a paired-difference interval (mean, low, high)."""
    if delta[1] > 0:
        return "beats L_c"
    if delta[2] < 0:
        return "L_c beats it"
    return "no detectable difference"


__all__ = [
    "ARMS",
    "AblationData",
    "FeatureLocVTP",
    "arm_loss",
    "build_ablation_data",
    "chance_rows",
    "clip_times",
    "decide",
    "run_ablation",
    "evaluate_arm",
    "t_interval",
    "train_arm",
]
