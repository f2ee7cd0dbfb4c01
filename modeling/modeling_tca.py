"""TCA: Temporal Context Aggregation for video retrieval (Shao et al., WACV 2021).

A Transformer encoder without positional encoding refines a sequence of per-frame descriptors. Its
outputs give frame-level embeddings (compared with chamfer similarity, "TCA_f") and a video-level
embedding, the L2-normalised mean over valid frames (compared with cosine similarity, "TCA_c").

This file imports only `torch`, `transformers` and its sibling configuration file so that it can travel
with a checkpoint (`trust_remote_code=True`). No `from __future__ import annotations`: transformers inspects
the runtime `Unpack[TransformersKwargs]` annotation of `forward` to see that it accepts `output_attentions`.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.processing_utils import Unpack
from transformers.utils import ModelOutput, TransformersKwargs
from transformers.utils.generic import can_return_tuple, merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

from .configuration_tca import TCAConfig


@dataclass
class TCAOutput(ModelOutput):
    """
    Outputs of [`TCAModel`].

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_frames, hidden_size)`):
            Encoder output before normalisation (padding positions hold unspecified values).
        frame_embeds (`torch.FloatTensor` of shape `(batch_size, num_frames, hidden_size)`):
            L2-normalised frame-level embeddings; exactly zero at padded frames.
        video_embeds (`torch.FloatTensor` of shape `(batch_size, hidden_size)`):
            L2-normalised mean of the encoder output over the valid frames.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            Input of the first layer and output of every layer, each `(batch_size, num_frames, hidden_size)`.
        attentions (`tuple(torch.FloatTensor)`, *optional*):
            Attention probabilities of every layer, each `(batch_size, num_heads, num_frames, num_frames)`
            (only with `attn_implementation="eager"`).
    """

    last_hidden_state: torch.FloatTensor | None = None
    frame_embeds: torch.FloatTensor | None = None
    video_embeds: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    # query/key/value: [B, heads, F, head_dim]; attention_mask: additive [B, 1, F, F] or None
    attn_weights = torch.matmul(query, key.transpose(-1, -2)) * scaling  # [B, heads, F, F]
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = F.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value)  # [B, heads, F, head_dim]
    attn_output = attn_output.transpose(1, 2).contiguous()  # [B, F, heads, head_dim]
    return attn_output, attn_weights


class TCAAttention(nn.Module):
    """Multi-head self-attention over the frames of a video."""

    def __init__(self, config: TCAConfig):
        super().__init__()
        self.config = config
        self.embed_dim = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = self.embed_dim // self.num_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = config.attention_dropout
        self.is_causal = False
        self.q_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.k_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.v_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.out_proj = nn.Linear(self.embed_dim, self.embed_dim)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch_size, num_frames, _ = hidden_states.shape  # [B, F, H]
        shape = (batch_size, num_frames, self.num_heads, self.head_dim)
        query = self.q_proj(hidden_states).view(shape).transpose(1, 2)  # [B, heads, F, head_dim]
        key = self.k_proj(hidden_states).view(shape).transpose(1, 2)
        value = self.v_proj(hidden_states).view(shape).transpose(1, 2)

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            scaling=self.scaling,
            dropout=self.dropout if self.training else 0.0,
            **kwargs,
        )
        attn_output = attn_output.reshape(batch_size, num_frames, self.embed_dim)  # [B, F, H]
        return self.out_proj(attn_output), attn_weights


class TCAFeedForward(nn.Module):
    def __init__(self, config: TCAConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation_fn = ACT2FN[config.hidden_act]
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(self.activation_fn(self.fc1(hidden_states))))


class TCAEncoderLayer(GradientCheckpointingLayer):
    """Post-LayerNorm Transformer layer (as `nn.TransformerEncoderLayer(norm_first=False)`)."""

    def __init__(self, config: TCAConfig):
        super().__init__()
        self.self_attn = TCAAttention(config)
        self.dropout1 = nn.Dropout(config.hidden_dropout_prob)
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = TCAFeedForward(config)
        self.dropout2 = nn.Dropout(config.hidden_dropout_prob)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs
    ) -> torch.Tensor:
        attn_output, _ = self.self_attn(hidden_states, attention_mask=attention_mask, **kwargs)
        hidden_states = self.layer_norm1(hidden_states + self.dropout1(attn_output))
        hidden_states = self.layer_norm2(hidden_states + self.dropout2(self.mlp(hidden_states)))
        return hidden_states  # [B, F, H]


class TCAEncoder(nn.Module):
    def __init__(self, config: TCAConfig):
        super().__init__()
        self.layers = nn.ModuleList([TCAEncoderLayer(config) for _ in range(config.num_hidden_layers)])
        self.gradient_checkpointing = False

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs):
        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask, **kwargs)
        return hidden_states


class TCARecurrentLayer(GradientCheckpointingLayer):
    """One bidirectional LSTM / GRU layer over the valid frames (padding packed away): [B, F, H] -> [B, F, H]."""

    def __init__(self, config: TCAConfig, dropout: bool):
        super().__init__()
        cell = nn.LSTM if config.aggregator == "lstm" else nn.GRU
        self.rnn = cell(config.hidden_size, config.hidden_size // 2, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(config.hidden_dropout_prob if dropout else 0.0)

    def forward(
        self, hidden_states: torch.Tensor, lengths: torch.Tensor | None = None, **kwargs
    ) -> torch.Tensor:
        num_frames = hidden_states.shape[1]
        packed = pack_padded_sequence(hidden_states, lengths, batch_first=True, enforce_sorted=False)
        output, _ = self.rnn(packed)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=num_frames)  # zeros at padding
        return self.dropout(output)


class TCARecurrentEncoder(nn.Module):
    def __init__(self, config: TCAConfig):
        super().__init__()
        last = config.num_hidden_layers - 1
        self.layers = nn.ModuleList(
            [TCARecurrentLayer(config, i < last) for i in range(config.num_hidden_layers)]
        )
        self.gradient_checkpointing = False

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor, **kwargs) -> torch.Tensor:
        lengths = attention_mask.sum(dim=1).clamp(min=1).cpu()  # a video without frames: masked out later
        for layer in self.layers:
            hidden_states = layer(hidden_states, lengths)
        return hidden_states


class TCANetVLAD(GradientCheckpointingLayer):
    """NetVLAD pooling: soft-assign each valid frame to K learned centres, sum the residuals per centre,
    L2-normalise each centre's vector (intra-normalisation), then the whole [K·H] vector, and project it
    linearly to `hidden_size`. [B, F, H], [B, F] -> [B, H]."""

    def __init__(self, config: TCAConfig):
        super().__init__()
        dim, clusters = config.hidden_size, config.netvlad_clusters
        self.assignment = nn.Linear(dim, clusters)
        self.centroids = nn.Parameter(torch.empty(clusters, dim))
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.projection = nn.Linear(clusters * dim, dim, bias=False)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        valid = attention_mask.to(hidden_states.dtype).unsqueeze(-1)  # [B, F, 1]
        soft = F.softmax(self.assignment(hidden_states), dim=-1) * valid  # [B, F, K]
        residuals = (
            torch.einsum("bfk,bfh->bkh", soft, hidden_states) - soft.sum(dim=1).unsqueeze(-1) * self.centroids
        )
        vlad = F.normalize(residuals, dim=-1).flatten(1)  # intra-normalised, [B, K·H]
        vlad = F.normalize(vlad, dim=-1)
        return self.projection(self.dropout(vlad))  # [B, H]


class TCAPreTrainedModel(PreTrainedModel):
    config_class = TCAConfig
    config: TCAConfig
    base_model_prefix = "tca"
    main_input_name = "frame_features"
    input_modalities = ("video",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["TCAEncoderLayer"]
    _supports_sdpa = True
    _supports_flash_attn = False
    _supports_flex_attn = False
    _supports_attention_backend = True
    _can_record_outputs = {"hidden_states": [TCAEncoderLayer, TCARecurrentLayer], "attentions": TCAAttention}

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, nn.GRU):  # (nn.LSTM is handled by the base class the same way)
            for name, param in module.named_parameters():
                if "weight" in name:
                    init.xavier_uniform_(param)
                elif "bias" in name:
                    init.zeros_(param)
        elif isinstance(module, TCANetVLAD):
            # centres on the scale of the inputs: far-away centres make every residual ≈ -c_k (constant output)
            init.normal_(module.centroids, mean=0.0, std=self.config.initializer_range)


def _additive_padding_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[B, F] (1 = frame, 0 = padding) -> additive [B, 1, F, F] mask hiding padded keys."""
    num_frames = attention_mask.shape[1]
    hidden = (attention_mask[:, None, None, :] == 0).expand(-1, 1, num_frames, -1)
    return torch.zeros(hidden.shape, dtype=dtype, device=attention_mask.device).masked_fill(
        hidden, torch.finfo(dtype).min
    )


def masked_mean(hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over valid frames: [B, F, H], [B, F] -> [B, H] (zeros for a video without valid frames)."""
    weights = attention_mask.to(hidden_states.dtype).unsqueeze(-1)  # [B, F, 1]
    count = weights.sum(dim=1).clamp(min=1.0)  # [B, 1]
    return (hidden_states * weights).sum(dim=1) / count


class TCAModel(TCAPreTrainedModel):
    """TCA encoder: frame descriptors [B, F, input_size] -> frame embeddings [B, F, H] and video embeddings [B, H].

    `config.aggregator` picks the temporal model: the Transformer (TCA), or the paper's ablation baselines
    NetVLAD (video embeddings only: `frame_embeds` and `last_hidden_state` are None), bidirectional LSTM or GRU.
    """

    def __init__(self, config: TCAConfig):
        super().__init__(config)
        self.input_proj = (
            nn.Identity()
            if config.input_size == config.hidden_size
            else nn.Linear(config.input_size, config.hidden_size)
        )
        self.aggregator = config.aggregator
        if config.aggregator == "transformer":
            self.encoder = TCAEncoder(config)
        elif config.aggregator == "netvlad":
            self.netvlad = TCANetVLAD(config)
        else:
            self.encoder = TCARecurrentEncoder(config)
        self.post_init()

    @merge_with_config_defaults
    @capture_outputs(tie_last_hidden_states=False)
    def forward(
        self,
        frame_features: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> TCAOutput:
        r"""
        Args:
            frame_features (`torch.FloatTensor` of shape `(batch_size, num_frames, input_size)`):
                Per-frame descriptors (PCA-whitened, L2-normalised iMAC / L3-iRMAC for the paper's models).
            attention_mask (`torch.LongTensor` of shape `(batch_size, num_frames)`, *optional*):
                1 for real frames, 0 for padding. Padded frames are hidden from attention, excluded from
                the video mean and set to zero in `frame_embeds`.
        """
        if frame_features is None:
            raise ValueError("TCAModel.forward needs `frame_features` of shape [batch, frames, input_size]")
        if frame_features.dim() != 3 or frame_features.shape[-1] != self.config.input_size:
            raise ValueError(
                "TCAModel.forward: `frame_features` must have shape [batch, frames, "
                f"{self.config.input_size}], got {tuple(frame_features.shape)}"
            )
        batch_size, num_frames, _ = frame_features.shape
        if attention_mask is None:
            attention_mask = torch.ones(
                batch_size, num_frames, dtype=torch.long, device=frame_features.device
            )
        elif attention_mask.shape != (batch_size, num_frames):
            raise ValueError(
                f"TCAModel.forward: `attention_mask` must have shape {(batch_size, num_frames)}, "
                f"got {tuple(attention_mask.shape)}"
            )

        hidden_states = self.input_proj(frame_features)  # [B, F, H]
        if self.aggregator == "netvlad":  # video-level only: no refined frames
            video_embeds = F.normalize(self.netvlad(hidden_states, attention_mask), dim=-1)  # [B, H]
            return TCAOutput(video_embeds=video_embeds)
        if self.aggregator == "transformer":
            additive_mask = _additive_padding_mask(attention_mask, hidden_states.dtype)  # [B, 1, F, F]
            hidden_states = self.encoder(hidden_states, additive_mask, **kwargs)  # [B, F, H]
        else:
            hidden_states = self.encoder(hidden_states, attention_mask)  # [B, F, H], zero at padding

        valid = attention_mask.to(hidden_states.dtype).unsqueeze(-1)  # [B, F, 1]
        frame_embeds = F.normalize(hidden_states, dim=-1) * valid  # [B, F, H]
        video_embeds = F.normalize(masked_mean(hidden_states, attention_mask), dim=-1)  # [B, H]
        return TCAOutput(
            last_hidden_state=hidden_states, frame_embeds=frame_embeds, video_embeds=video_embeds
        )

    @can_return_tuple
    def get_video_features(
        self,
        frame_features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple | BaseModelOutputWithPooling:
        """Video-level embeddings (TCA_c) in the transformers `get_*_features` layout.

        Returns a `BaseModelOutputWithPooling` whose `pooler_output` [B, H] holds the L2-normalised video
        embeddings and `last_hidden_state` [B, F, H] the encoder output; `hidden_states`/`attentions` as
        in `forward`. Call it under `torch.no_grad()` for inference.
        """
        outputs = self(frame_features, attention_mask=attention_mask, return_dict=True, **kwargs)
        return BaseModelOutputWithPooling(
            last_hidden_state=outputs.last_hidden_state,
            pooler_output=outputs.video_embeds,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def get_frame_features(
        self, frame_features: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Frame-level embeddings [B, F, H] (TCA_f), zero at padding. Call under `torch.no_grad()` for inference."""
        if self.config.aggregator == "netvlad":
            raise ValueError("a NetVLAD TCAModel has no frame-level embeddings (aggregator='netvlad')")
        return self(frame_features, attention_mask=attention_mask).frame_embeds


# ----------------------------------------------------------------------------------------------------
# Similarities (METHODS.md §1.3). Batched over queries and database, chunked over the database.
# ----------------------------------------------------------------------------------------------------


def _check_mask(frames: torch.Tensor, mask: torch.Tensor | None, name: str) -> torch.Tensor:
    if frames.dim() != 3:
        raise ValueError(f"{name} must have shape [videos, frames, dim], got {tuple(frames.shape)}")
    if mask is None:
        return torch.ones(frames.shape[:2], dtype=torch.bool, device=frames.device)
    if mask.shape != frames.shape[:2]:
        raise ValueError(f"{name} mask must have shape {tuple(frames.shape[:2])}, got {tuple(mask.shape)}")
    mask = mask.to(device=frames.device, dtype=torch.bool)
    empty = (~mask.any(dim=1)).nonzero().flatten()
    if empty.numel():
        raise ValueError(f"{name}: videos {empty[:10].tolist()} have no valid frame (mask is all zero)")
    return mask


def _compute_dtype(tensor: torch.Tensor) -> torch.dtype:
    # Half-precision matmul is slow (or missing) on CPU: compute there in float32.
    if tensor.device.type == "cpu" and tensor.dtype in (torch.float16, torch.bfloat16):
        return torch.float32
    return tensor.dtype


def cosine_similarity(query_embeds: torch.Tensor, database_embeds: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of video-level embeddings: [Q, H], [D, H] -> [Q, D]."""
    dtype = _compute_dtype(query_embeds)
    query = F.normalize(query_embeds.to(dtype), dim=-1)
    database = F.normalize(database_embeds.to(device=query.device, dtype=dtype), dim=-1)
    return query @ database.T


def _chamfer_both_ways(
    query_frames: torch.Tensor,
    query_mask: torch.Tensor | None,
    database_frames: torch.Tensor,
    database_mask: torch.Tensor | None,
    chunk_bytes: int,
    need_reverse: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    query_mask = _check_mask(query_frames, query_mask, "query_frames")
    database_mask = _check_mask(database_frames, database_mask, "database_frames")
    num_queries, query_len, dim = query_frames.shape
    num_database, database_len, database_dim = database_frames.shape
    if dim != database_dim:
        raise ValueError(f"query dim {dim} != database dim {database_dim}")
    dtype = _compute_dtype(query_frames)
    device = query_frames.device
    query = query_frames.to(dtype).reshape(num_queries * query_len, dim)  # [Q*Fq, H]
    query_valid = query_mask.to(dtype)  # [Q, Fq]
    query_count = query_valid.sum(dim=1, keepdim=True)  # [Q, 1]
    neg_inf = torch.tensor(float("-inf"), dtype=dtype, device=device)

    per_video = num_queries * query_len * database_len * torch.finfo(dtype).bits // 8
    chunk = max(1, min(num_database, chunk_bytes // max(per_video, 1)))
    forward = torch.empty(num_queries, num_database, dtype=dtype, device=device)
    reverse = torch.empty(num_queries, num_database, dtype=dtype, device=device) if need_reverse else None
    for start in range(0, num_database, chunk):
        stop = min(start + chunk, num_database)
        database = database_frames[start:stop].to(device=device, dtype=dtype)  # [Dc, Fd, H]
        database_valid = database_mask[start:stop].to(device)  # [Dc, Fd]
        sims = (query @ database.reshape(-1, dim).T).view(num_queries, query_len, stop - start, database_len)
        # sims: [Q, Fq, Dc, Fd]
        best_for_query = torch.where(database_valid[None, None], sims, neg_inf).amax(dim=3)  # [Q, Fq, Dc]
        forward[:, start:stop] = (best_for_query * query_valid[:, :, None]).sum(dim=1) / query_count
        if reverse is not None:
            best_for_database = torch.where(query_mask[:, :, None, None], sims, neg_inf).amax(
                dim=1
            )  # [Q, Dc, Fd]
            database_count = database_valid.to(dtype).sum(dim=1)  # [Dc]
            reverse[:, start:stop] = (best_for_database * database_valid[None].to(dtype)).sum(
                dim=2
            ) / database_count
    return forward, reverse


def chamfer_similarity(
    query_frames: torch.Tensor,
    query_mask: torch.Tensor | None,
    database_frames: torch.Tensor,
    database_mask: torch.Tensor | None,
    chunk_bytes: int = 256 * 2**20,
    symmetric: bool = False,
) -> torch.Tensor:
    """Chamfer similarity (TCA_f): sim(x, y) = mean_i max_j x_i · y_j over valid frames; with `symmetric`,
    TCA_sym: (chamfer(x, y) + chamfer(y, x)) / 2.

    Shapes: query_frames [Q, Fq, H] with mask [Q, Fq]; database_frames [D, Fd, H] with mask [D, Fd]
    (masks may be None: all frames valid). Returns [Q, D]. The database is processed in chunks whose
    similarity block stays under `chunk_bytes`.
    """
    forward, reverse = _chamfer_both_ways(
        query_frames, query_mask, database_frames, database_mask, chunk_bytes, symmetric
    )
    return (forward + reverse) / 2 if symmetric else forward


def symmetric_chamfer_similarity(*args, **kwargs) -> torch.Tensor:
    """Symmetric chamfer (TCA_sym): `chamfer_similarity(..., symmetric=True)`, same arguments and shapes."""
    return chamfer_similarity(*args, **kwargs, symmetric=True)


__all__ = [
    "TCAModel",
    "TCAOutput",
    "TCAPreTrainedModel",
    "chamfer_similarity",
    "cosine_similarity",
    "masked_mean",
    "symmetric_chamfer_similarity",
]
