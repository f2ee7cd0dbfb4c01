"""Pipelines of a published LocVTP repo (`config.custom_pipelines`; `pipeline(task, model=repo,
trust_remote_code=True)` loads them without vidtempo):

- `locvtp-grounding`: video + sentence -> ranked moments `[{"start", "end", "score"}]` (zero-shot: every window
  of consecutive clips scored inside-minus-outside by `grounding_scoring.py`, NMS);
- `locvtp-clip-features`: video -> `{"clip_embeds": [T, D] (L2-normalised), "clip_times": [T, 2] seconds}`;
- `locvtp-text-video-retrieval`: `{"videos": [...], "texts": [...]}` -> `{"scores": [texts, videos]}` (cosine of the
  sentence embedding and the normalised mean of the video's clip embeddings).

A video is a file path or uint8 frames [N, H, W, 3] (then pass `video_fps`). Imports only torch, transformers,
numpy and its siblings (it travels with the checkpoint).
"""

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from transformers import Pipeline

from .grounding_scoring import constant_scores, rank_moments

# "feature-extraction" is served by the embedding pipeline too, so the card's `pipeline_tag` is true
PIPELINES = {
    "feature-extraction": {"impl": "pipeline_locvtp.LocVTPClipFeaturesPipeline", "pt": ["AutoModel"]},
    "locvtp-grounding": {"impl": "pipeline_locvtp.LocVTPGroundingPipeline", "pt": ["AutoModel"]},
    "locvtp-clip-features": {"impl": "pipeline_locvtp.LocVTPClipFeaturesPipeline", "pt": ["AutoModel"]},
    "locvtp-text-video-retrieval": {"impl": "pipeline_locvtp.LocVTPRetrievalPipeline", "pt": ["AutoModel"]},
}


def encode_video_clips(model, processor, video, video_fps=None, clip_batch: int = 32):
    """(L2-normalised clip embeddings [T, D], clip times [T, 2] seconds) of consecutive clips of one video."""
    inputs = processor(videos=[video], mode="inference", fps=[video_fps])
    param = next(model.parameters())
    pixels = inputs["pixel_values"][0].to(param.device, param.dtype)  # [T, F, 3, H, W]
    with torch.no_grad():
        embeds = torch.cat(
            [
                model.get_clip_features(pixels[i : i + clip_batch][None])[0]
                for i in range(0, len(pixels), clip_batch)
            ]
        )
    if "clip_times" not in inputs:
        raise ValueError("LocVTP pipelines need the video's frame rate: pass video_fps with decoded frames")
    return F.normalize(embeds.float(), dim=-1).cpu(), inputs["clip_times"][0]


def encode_texts(model, processor, texts: list) -> torch.Tensor:
    """L2-normalised sentence embeddings [N, D] (mean of the real words' projected features)."""
    tokens = processor(text=list(texts))
    device = next(model.parameters()).device
    with torch.no_grad():
        out = model.get_text_features(
            input_ids=tokens["input_ids"].to(device), attention_mask=tokens["attention_mask"].to(device)
        )
    return out.pooler_output.float().cpu()


class _LocVTPPipeline(Pipeline):
    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def _forward(self, model_inputs):
        return model_inputs  # the encoders run in preprocess: inputs are videos and sentences, not tensors

    def postprocess(self, model_outputs, **kwargs):
        return model_outputs


class LocVTPClipFeaturesPipeline(_LocVTPPipeline):
    """Video -> `{"clip_embeds": [T, D], "clip_times": [T, 2]}`."""

    def _sanitize_parameters(self, video_fps=None, **kwargs):
        return {"video_fps": video_fps}, {}, {}

    def preprocess(self, video, video_fps=None):
        embeds, times = encode_video_clips(self.model, self.processor, video, video_fps)
        return {"clip_embeds": embeds, "clip_times": times}


class LocVTPGroundingPipeline(_LocVTPPipeline):
    """`pipe(video, sentence=..., top_n=5)` -> `[{"start", "end", "score"}, ...]`, best first."""

    def _sanitize_parameters(self, sentence=None, video_fps=None, top_n=None, nms_threshold=None, **kwargs):
        pre = {"sentence": sentence, "video_fps": video_fps}
        post = {k: v for k, v in (("top_n", top_n), ("nms_threshold", nms_threshold)) if v is not None}
        return pre, {}, post

    def preprocess(self, video, sentence=None, video_fps=None):
        if not isinstance(sentence, str) or not sentence.strip():
            raise ValueError(
                "locvtp-grounding needs a sentence: pipe(video, sentence='a man opens the door')"
            )
        embeds, times = encode_video_clips(self.model, self.processor, video, video_fps)
        text = encode_texts(self.model, self.processor, [sentence])[0]
        return {"clip_scores": (embeds.double() @ text.double()).numpy(), "clip_times": times.numpy()}

    def postprocess(self, model_outputs, top_n: int = 5, nms_threshold: float = 0.5):
        scores = model_outputs["clip_scores"]
        if constant_scores(scores):
            warnings.warn(
                f"locvtp-grounding: all {len(scores)} clips are equally similar to the sentence; the moments' "
                "order says nothing about the video",
                stacklevel=2,
            )
        spans, values = rank_moments(scores, model_outputs["clip_times"], None, nms_threshold, top_n)
        return [
            {"start": float(s), "end": float(e), "score": float(v)}
            for (s, e), v in zip(np.asarray(spans), values)
        ]


class LocVTPRetrievalPipeline(_LocVTPPipeline):
    """`pipe({"videos": [...], "texts": [...]})` -> `{"scores": [texts, videos]}` cosine similarities."""

    def _sanitize_parameters(self, video_fps=None, **kwargs):
        return {"video_fps": video_fps}, {}, {}

    def preprocess(self, inputs, video_fps=None):
        if not isinstance(inputs, dict) or not inputs.get("videos") or not inputs.get("texts"):
            raise ValueError(
                "locvtp-text-video-retrieval needs {'videos': [...], 'texts': [...]}, both non-empty"
            )
        videos = [encode_video_clips(self.model, self.processor, v, video_fps)[0] for v in inputs["videos"]]
        video_embeds = F.normalize(torch.stack([clips.mean(0) for clips in videos]), dim=-1)  # [V, D]
        text_embeds = encode_texts(self.model, self.processor, inputs["texts"])  # [S, D]
        return {"scores": text_embeds @ video_embeds.T}


__all__ = [
    "PIPELINES",
    "LocVTPClipFeaturesPipeline",
    "LocVTPGroundingPipeline",
    "LocVTPRetrievalPipeline",
    "encode_texts",
    "encode_video_clips",
]
