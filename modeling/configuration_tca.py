"""Configuration of TCA (Temporal Context Aggregation, Shao et al., WACV 2021)."""

from __future__ import annotations

from transformers import PretrainedConfig
from transformers.activations import ACT2FN

AGGREGATORS = ("transformer", "netvlad", "lstm", "gru")


class TCAConfig(PretrainedConfig):
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

    def __init__(
        self,
        input_size: int = 1024,
        hidden_size: int = 1024,
        num_hidden_layers: int = 1,
        num_attention_heads: int = 8,
        intermediate_size: int = 2048,
        hidden_act: str = "relu",
        hidden_dropout_prob: float = 0.5,
        attention_dropout: float = 0.0,
        layer_norm_eps: float = 1e-5,
        initializer_range: float = 0.02,
        aggregator: str = "transformer",
        netvlad_clusters: int = 64,
        **kwargs,
    ):
        if aggregator not in AGGREGATORS:
            raise ValueError(f"TCAConfig.aggregator must be one of {list(AGGREGATORS)}, got {aggregator!r}")
        if aggregator in ("lstm", "gru") and hidden_size % 2:
            raise ValueError(
                f"TCAConfig.hidden_size must be even for a bidirectional {aggregator}, got {hidden_size}"
            )
        if (
            not isinstance(netvlad_clusters, int)
            or isinstance(netvlad_clusters, bool)
            or netvlad_clusters <= 0
        ):
            raise ValueError(
                f"TCAConfig.netvlad_clusters must be a positive integer, got {netvlad_clusters!r}"
            )
        for name, value in (
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("num_hidden_layers", num_hidden_layers),
            ("num_attention_heads", num_attention_heads),
            ("intermediate_size", intermediate_size),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"TCAConfig.{name} must be a positive integer, got {value!r}")
        if hidden_size % num_attention_heads != 0:
            raise ValueError(
                f"TCAConfig.hidden_size ({hidden_size}) must be divisible by "
                f"num_attention_heads ({num_attention_heads})"
            )
        for name, value in (
            ("hidden_dropout_prob", hidden_dropout_prob),
            ("attention_dropout", attention_dropout),
        ):
            if not 0.0 <= float(value) < 1.0:
                raise ValueError(f"TCAConfig.{name} must be in [0, 1), got {value!r}")
        if hidden_act not in ACT2FN:
            raise ValueError(f"TCAConfig.hidden_act must be one of {sorted(ACT2FN)}, got {hidden_act!r}")
        if layer_norm_eps <= 0:
            raise ValueError(f"TCAConfig.layer_norm_eps must be positive, got {layer_norm_eps!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_dropout = attention_dropout
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self.aggregator = aggregator
        self.netvlad_clusters = netvlad_clusters
        super().__init__(**kwargs)


__all__ = ["AGGREGATORS", "TCAConfig"]
