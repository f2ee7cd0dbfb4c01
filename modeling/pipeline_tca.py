"""Pipelines of a published TCA video repo (`config.custom_pipelines`; `pipeline(task, model=repo,
trust_remote_code=True)` loads them without vidtempo):

- `tca-video-embedding`: a video (file path or decoded uint8 frames [N, H, W, 3]) -> `{"video_embeds": [H],
  "frame_embeds": [F, H], "timestamps": [F]}`;
- `tca-video-similarity`: two videos -> one score per mode (`cosine` TCA_c, `chamfer` TCA_f,
  `symmetric_chamfer` TCA_sym, `comparator` TCA_v when the repo holds one), plus `frame_similarity` [F1, F2]
  with `return_frame_similarity=True`.

Imports only torch, transformers and its siblings (it travels with the checkpoint).
"""

import torch
from transformers import Pipeline

from .modeling_tca import chamfer_similarity
from .modeling_tca_comparator import repeat_to_min_frames

# task -> what `config.custom_pipelines` holds for it (publishing writes it and copies this file)
# "feature-extraction" is served by the embedding pipeline too, so the card's `pipeline_tag` is true
PIPELINES = {
    "feature-extraction": {"impl": "pipeline_tca.TCAVideoEmbeddingPipeline", "pt": ["AutoModel"]},
    "tca-video-embedding": {"impl": "pipeline_tca.TCAVideoEmbeddingPipeline", "pt": ["AutoModel"]},
    "tca-video-similarity": {"impl": "pipeline_tca.TCAVideoSimilarityPipeline", "pt": ["AutoModel"]},
}


class TCAVideoEmbeddingPipeline(Pipeline):
    """Video -> `video_embeds` [H], `frame_embeds` [F, H] (None for NetVLAD) and the frames' `timestamps` [F]."""

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def _sanitize_parameters(self, video_fps=None, **kwargs):
        return ({"video_fps": video_fps} if video_fps is not None else {}), {}, {}

    def preprocess(self, video, video_fps=None):
        return dict(self.processor(videos=[video], video_fps=video_fps))

    def _forward(self, model_inputs):
        out = self.model(
            pixel_values=model_inputs["pixel_values"], attention_mask=model_inputs["attention_mask"]
        )
        return {
            "video_embeds": out.video_embeds,
            "frame_embeds": out.frame_embeds,
            "timestamps": model_inputs["timestamps"],
        }

    def postprocess(self, model_outputs):
        keep = model_outputs["timestamps"][0] >= 0
        frames = model_outputs["frame_embeds"]
        return {
            "video_embeds": model_outputs["video_embeds"][0].float().cpu(),
            "frame_embeds": None if frames is None else frames[0][keep.to(frames.device)].float().cpu(),
            "timestamps": model_outputs["timestamps"][0][keep].cpu(),
        }


def video_pair_scores(model, first: dict, second: dict, return_frame_similarity: bool = False) -> dict:
    """Scores of two embedded videos (`TCAVideoEmbeddingPipeline` outputs): cosine of the video embeddings,
    chamfer and symmetric chamfer of the frame embeddings, the comparator's score when `model.comparator`
    exists (videos under 4 frames repeated, as DnS does), and the frame-frame matrix on request."""
    scores = {"cosine": float(first["video_embeds"] @ second["video_embeds"])}
    a, b = first["frame_embeds"], second["frame_embeds"]
    if a is None or b is None:
        return scores  # NetVLAD: video level only
    scores["chamfer"] = float(chamfer_similarity(a[None], None, b[None], None)[0, 0])
    scores["symmetric_chamfer"] = float(
        chamfer_similarity(a[None], None, b[None], None, symmetric=True)[0, 0]
    )
    comparator = getattr(model, "comparator", None)
    if comparator is not None:
        param = next(comparator.parameters())
        qa, qb = repeat_to_min_frames(a, 4), repeat_to_min_frames(b, 4)
        sims = (qa @ qb.T)[None].to(param.device, param.dtype)
        with torch.no_grad():
            scores["comparator"] = float(comparator(sims, return_dict=True).video_similarity[0])
    if return_frame_similarity:
        scores["frame_similarity"] = a @ b.T
    return scores


class TCAVideoSimilarityPipeline(TCAVideoEmbeddingPipeline):
    """Two videos -> `{"cosine", "chamfer", "symmetric_chamfer"[, "comparator"][, "frame_similarity"]}`.

    Call as `pipe(video_a, video_b)` or `pipe({"video": a, "other": b})`."""

    def __call__(self, video, other=None, **kwargs):
        if other is not None:
            video = {"video": video, "other": other}
        if not isinstance(video, dict) or set(video) != {"video", "other"}:
            raise ValueError("tca-video-similarity needs two videos: pipe(video_a, video_b)")
        return super().__call__(video, **kwargs)

    def _sanitize_parameters(self, video_fps=None, return_frame_similarity=None, **kwargs):
        pre = {"video_fps": video_fps} if video_fps is not None else {}
        post = {"return_frame_similarity": bool(return_frame_similarity)} if return_frame_similarity else {}
        return pre, {}, post

    def preprocess(self, pair, video_fps=None):
        return {
            "first": super().preprocess(pair["video"], video_fps),
            "second": super().preprocess(pair["other"], video_fps),
        }

    def _forward(self, model_inputs):
        return {
            "first": super()._forward(model_inputs["first"]),
            "second": super()._forward(model_inputs["second"]),
        }

    def postprocess(self, model_outputs, return_frame_similarity=False):
        first = super().postprocess(model_outputs["first"])
        second = super().postprocess(model_outputs["second"])
        return video_pair_scores(self.model, first, second, return_frame_similarity)


__all__ = ["PIPELINES", "TCAVideoEmbeddingPipeline", "TCAVideoSimilarityPipeline", "video_pair_scores"]
