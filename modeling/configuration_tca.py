"""Configuration of TCA (Temporal Context Aggregation, Shao et al., WACV 2021)."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.activations import ACT2FN

from .configuration_checks import check_choice, check_positive_int

AGGREGATORS = ("transformer", "netvlad", "lstm", "gru")


@strict
class TCAConfig(PreTrainedConfig):
    r"""
    Configuration of a [`TCAModel`]: a Transformer encoder without positional encoding that refines
    a sequence of per-frame descriptors (PCA-whitened iMAC / L3-iRMAC, 1024-d) into frame-level and
    video-level embeddings for video retrieval.

    Defaults follow the paper and the authors' code (`METHODS.md` §1.2): one post-LayerNorm layer,
    `d_model` 1024, 8 heads, feed-forward 2048, ReLU, dropout 0.5.

    Args:
        input_size (`int`, defaults to 1024): dimension of the input frame descriptors.
        hidden_size (`int`, defaults to 1024): dimension of the encoder (and of the embeddings).
            When it differs from `input_size` a linear input projection is added.
        num_hidden_layers (`int`, defaults to 1): number of encoder layers.
        num_attention_heads (`int`, defaults to 8): attention heads per layer.
        intermediate_size (`int`, defaults to 2048): feed-forward dimension.
        hidden_act (`str`, defaults to `"relu"`): feed-forward activation (any key of `ACT2FN`).
        hidden_dropout_prob (`float`, defaults to 0.5): dropout after attention and feed-forward.
        attention_dropout (`float`, defaults to 0.0): dropout on attention probabilities.
        layer_norm_eps (`float`, defaults to 1e-5): LayerNorm epsilon.
        initializer_range (`float`, defaults to 0.02): std of the normal initialiser of linear layers.
        aggregator (`str`, defaults to `"transformer"`): the temporal aggregator (the paper's ablation,
            METHODS.md §1.2): `"transformer"` (TCA), `"netvlad"` (soft-assignment to `netvlad_clusters`
            learned centres, intra-normalised, projected to `hidden_size`; video-level only), `"lstm"` or
            `"gru"` (bidirectional, `num_hidden_layers` layers, `hidden_size // 2` per direction, padding
            packed away).
        netvlad_clusters (`int`, defaults to 64): NetVLAD's number of clusters K.
    """

    model_type = "tca"

    input_size: int = 1024
    hidden_size: int = 1024
    num_hidden_layers: int = 1
    num_attention_heads: int = 8
    intermediate_size: int = 2048
    hidden_act: str = "relu"
    hidden_dropout_prob: float | int = 0.5
    attention_dropout: float | int = 0.0
    layer_norm_eps: float | int = 1e-5
    initializer_range: float | int = 0.02
    aggregator: str = "transformer"
    netvlad_clusters: int = 64

    def validate_tca_sizes(self) -> None:
        """Positive sizes; heads divide the width; an even width for the bidirectional recurrent aggregators."""
        check_positive_int(
            self,
            "input_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "netvlad_clusters",
        )
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"TCAConfig.hidden_size ({self.hidden_size}) must be divisible by "
                f"num_attention_heads ({self.num_attention_heads})"
            )
        if self.aggregator in ("lstm", "gru") and self.hidden_size % 2:
            raise ValueError(
                f"TCAConfig.hidden_size must be even for a bidirectional {self.aggregator}, got {self.hidden_size}"
            )

    def validate_tca_choices(self) -> None:
        """The aggregator, the activation, dropouts in [0, 1) and a positive LayerNorm epsilon."""
        check_choice(self, "aggregator", AGGREGATORS)
        check_choice(self, "hidden_act", sorted(ACT2FN))
        for name in ("hidden_dropout_prob", "attention_dropout"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                raise ValueError(f"TCAConfig.{name} must be in [0, 1), got {getattr(self, name)!r}")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"TCAConfig.layer_norm_eps must be positive, got {self.layer_norm_eps!r}")


__all__ = ["AGGREGATORS", "TCAConfig"]
