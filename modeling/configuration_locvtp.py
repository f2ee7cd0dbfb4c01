"""Configuration of LocVTP (Video-Text Pre-training for Temporal Localization, Cao et al., ECCV 2022)."""

from huggingface_hub.dataclasses import strict
from transformers import (
    AutoConfig,
    BertConfig,
    CLIPVisionConfig,
    DistilBertConfig,
    PreTrainedConfig,
    TimesformerConfig,
)
from transformers.configuration_utils import SubConfigSpec

from .configuration_checks import check_choice, check_positive_int

CORRESPONDENCE_MODES = ("clip_topk", "word_topk", "2d_topk", "random")
TEMPORAL_TARGETS = ("cross_modal", "intra_modal")
VISION_BACKBONES = {"timesformer": "timesformer", "clip": "clip_vision_model"}
# word towers: DistilBERT (the paper's) or a BERT-family encoder such as all-MiniLM-L6-v2 (offline)
TEXT_CONFIGS = (DistilBertConfig, BertConfig)

# [PAD], [CLS], [SEP] of `distilbert-base-uncased`; the processor/tokenizer's `all_special_ids` should be stored here.
DISTILBERT_UNCASED_SPECIAL_IDS = (0, 101, 102)


@strict
class LocVTPConfig(PreTrainedConfig):
    r"""
    Configuration of a [`LocVTPModel`]: a clip-level video tower (TimeSformer, or a per-frame CLIP vision
    tower with temporal pooling per clip), a word-level text tower (DistilBERT, or a BERT-family encoder such as
    all-MiniLM-L6-v2), linear projections to a
    shared space, and the context warping head (`METHODS.md` §2).

    Args:
        vision_config (`dict` or `PreTrainedConfig`, *optional*):
            `TimesformerConfig` (defaults: ViT-B/16, 224, divided space-time, 16 frames per clip) or, with
            `vision_backbone="clip"`, a `CLIPVisionConfig` (defaults: ViT-B/16, 224).
        text_config (`dict`, `DistilBertConfig` or `BertConfig`, *optional*): configuration of the text tower
            (a dict without `model_type` is DistilBERT; `model_type: "bert"` for MiniLM / BERT).
        vision_backbone (`str`, defaults to `"timesformer"`): `"timesformer"` or `"clip"` (per-frame CLIP
            ViT, CLS features averaged over the frames of a clip).
        projection_dim (`int`, defaults to 512): dimension D of the shared embedding space.
        temperature (`float`, defaults to 0.07): temperature τ of every InfoNCE loss.
        num_clips (`int`, defaults to 8): clips sampled per video in pre-training.
        frames_per_clip (`int`, defaults to 16): frames F of one clip (a TimeSformer checkpoint trained
            with another `num_frames` interpolates its time embeddings).
        topk_words (`int`, defaults to 3): K of the correspondence discovery.
        delta_max (`int`, defaults to 4): largest temporal offset of the context warping head.
        coarse_loss_weight / fine_loss_weight / temporal_loss_weight (`float`, defaults to 0.5 / 1 / 1).
        correspondence (`str`, defaults to `"clip_topk"`): `"clip_topk"` (the K words closest to each
            clip), `"word_topk"` (each word picks its K closest clips), `"2d_topk"` (the K·T closest
            clip-word pairs of the video-sentence similarity matrix) or `"random"` (K random real words).
        temporal_target (`str`, defaults to `"cross_modal"`): target of the warped feature z^t: the
            positive words q^t_+ (`"cross_modal"`) or the clip feature v^t (`"intra_modal"`).
        positive_in_denominator (`bool`, defaults to `True`): add the positive q^t_+ to the denominator of
            L_f / L_t (standard InfoNCE, loss >= 0). `False` is §2.2's formula as printed, whose denominator
            holds only the batch's words: q^t_+ (a re-normalised mean of K words) can outscore every word,
            so the loss goes below zero and training can lower it without fitting the data.
        positive_pooling (`str`, defaults to `"mean"`): q^t_+ as the plain average of the K selected
            (unit) words, whose norm <= 1 bounds the positive logit by the words' agreement (the paper's
            average pooling), or `"normalized_mean"` (re-normalised: lets L_f fall with the K words spread
            apart; see `modeling_locvtp.positive_word_embeds`).
        special_token_ids (`list[int]`, defaults to `[0, 101, 102]`): token ids never used as words
            ([PAD]/[CLS]/[SEP] of `distilbert-base-uncased`; set from `tokenizer.all_special_ids`).
        initializer_range (`float`, defaults to 0.02): std of the projections and warping head init.
    """

    model_type = "locvtp"
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(AutoConfig, model_type="timesformer", init_kwargs={"num_frames": 16}),
        "text_config": SubConfigSpec(AutoConfig, model_type="distilbert"),
    }

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None  # DistilBertConfig or BertConfig (validate_towers)
    vision_backbone: str = "timesformer"
    projection_dim: int = 512
    temperature: float | int = 0.07
    num_clips: int = 8
    frames_per_clip: int = 16
    topk_words: int = 3
    delta_max: int = 4
    coarse_loss_weight: float | int = 0.5
    fine_loss_weight: float | int = 1.0
    temporal_loss_weight: float | int = 1.0
    correspondence: str = "clip_topk"
    temporal_target: str = "cross_modal"
    positive_in_denominator: bool = True
    positive_pooling: str = "mean"
    special_token_ids: list[int] | tuple[int, ...] | None = None
    initializer_range: float | int = 0.02

    def __post_init__(self, **kwargs):
        check_choice(self, "vision_backbone", sorted(VISION_BACKBONES))  # needed to pick the default tower
        if self.vision_config is None and self.vision_backbone == "clip":
            self.vision_config = CLIPVisionConfig(patch_size=16, image_size=224)
        elif isinstance(self.vision_config, dict) and "model_type" not in self.vision_config:
            self.vision_config = {**self.vision_config, "model_type": VISION_BACKBONES[self.vision_backbone]}
        if isinstance(self.vision_config, dict) and self.vision_config.get("model_type") == "timesformer":
            self.vision_config = {"num_frames": 16, **self.vision_config}  # the paper's 16-frame clips
        if self.special_token_ids is None:
            self.special_token_ids = list(DISTILBERT_UNCASED_SPECIAL_IDS)
        self.special_token_ids = [int(i) for i in self.special_token_ids]
        super().__post_init__(**kwargs)

    def validate_towers(self) -> None:
        """The vision tower matches `vision_backbone`; the text tower is DistilBERT or BERT-family; the special
        token ids are in its vocabulary."""
        check_choice(self, "vision_backbone", sorted(VISION_BACKBONES))
        expected = VISION_BACKBONES[self.vision_backbone]
        vision_type = getattr(self.vision_config, "model_type", None)
        if vision_type != expected:
            raise ValueError(
                f"LocVTPConfig.vision_config must be a {expected!r} config for vision_backbone="
                f"{self.vision_backbone!r}, got model_type {vision_type!r}"
            )
        if self.vision_backbone == "timesformer" and not isinstance(self.vision_config, TimesformerConfig):
            raise ValueError("LocVTPConfig.vision_config must be a TimesformerConfig")
        if not isinstance(self.text_config, TEXT_CONFIGS):
            raise ValueError(
                f"LocVTPConfig.text_config must be a DistilBertConfig or BertConfig (model_type 'distilbert' or "
                f"'bert'), got {type(self.text_config).__name__}"
            )
        vocab = self.text_config.vocab_size
        bad = [i for i in self.special_token_ids if not 0 <= i < vocab]
        if bad:
            raise ValueError(
                f"LocVTPConfig.special_token_ids must be token ids in [0, {vocab}), got out-of-range {bad}"
            )

    def validate_training(self) -> None:
        """Positive sizes, a non-negative `delta_max`, a positive temperature, non-negative loss weights and
        known correspondence / temporal-target modes."""
        check_positive_int(self, "projection_dim", "num_clips", "frames_per_clip", "topk_words")
        check_positive_int(self, "delta_max", allow_zero=True)
        if not float(self.temperature) > 0:
            raise ValueError(f"LocVTPConfig.temperature must be positive, got {self.temperature!r}")
        for name in ("coarse_loss_weight", "fine_loss_weight", "temporal_loss_weight"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"LocVTPConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        check_choice(self, "correspondence", CORRESPONDENCE_MODES)
        check_choice(self, "temporal_target", TEMPORAL_TARGETS)
        check_choice(self, "positive_pooling", ("mean", "normalized_mean"))


__all__ = ["LocVTPConfig"]
