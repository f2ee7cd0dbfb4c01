"""TCA_v: the ViSiL-style video comparator of DnS (`VideoComperator`), as a transformers model.

Input: the frame-to-frame similarity matrix of two videos, [B, N, M] (N query frames as rows, M database
frames as columns; for TCA the dot products of L2-normalised frame embeddings). The network (METHODS.md §1.3):
zero-pad 1 -> conv3x3 (32) -> ReLU -> maxpool 2 -> zero-pad 1 -> conv3x3 (64) -> ReLU -> maxpool 2 ->
zero-pad 1 -> conv3x3 (128) -> ReLU -> conv1x1 (1), giving the raw [B, N//4, M//4] map; Hardtanh clamps it
to [-1, 1]; the video similarity is chamfer on that map (max over the database axis, mean over the query
axis). Parameter names are DnS's (`conv1`, `conv2`, `conv3`, `fconv`), so DnS state dicts load unchanged.

Padded batches: with `query_lengths` / `database_lengths` each item is computed exactly as the unpadded
matrix of those lengths would be (the regions a shorter matrix does not have are zeroed before every
convolution, which is what its own zero padding would see). This is the per-pair computation of DnS's
evaluation, not DnS's training-time `mask` argument (which keeps pooled cells that straddle the border).

Self-contained: imports only torch and transformers (travels with a checkpoint, `trust_remote_code=True`).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_checks import check_positive_int


@strict
class TCAComparatorConfig(PreTrainedConfig):
    r"""
    Configuration of a [`TCAComparatorModel`] (TCA_v). Defaults are DnS's `VideoComperator()`.

    Args:
        in_channels (`int`, defaults to 1): channels of the similarity input (1: one similarity matrix).
        conv_channels (`list[int]`, defaults to `[32, 64, 128]`): output channels of the three 3x3 convs.
        min_frames (`int`, always 4): the fewest frames per video the network accepts (two 2x2 pools); a
            consequence of the architecture, not a setting (a saved value is ignored).
    """

    model_type = "tca_comparator"

    in_channels: int = 1
    conv_channels: list[int] | tuple[int, ...] = (32, 64, 128)
    min_frames: int = 4

    def __post_init__(self, **kwargs):
        self.conv_channels = list(self.conv_channels)
        self.min_frames = 4
        super().__post_init__(**kwargs)

    def validate_comparator(self) -> None:
        """A positive channel count, and three positive conv widths."""
        check_positive_int(self, "in_channels")
        channels = self.conv_channels
        if len(channels) != 3 or any(
            isinstance(c, bool) or not isinstance(c, int) or c <= 0 for c in channels
        ):
            raise ValueError(f"TCAComparatorConfig.conv_channels must be 3 positive ints, got {channels!r}")


@dataclass
class TCAComparatorOutput(ModelOutput):
    """
    Outputs of [`TCAComparatorModel`].

    Args:
        similarity_map (`torch.FloatTensor` of shape `(batch_size, N // 4, M // 4)`):
            The comparator's map clamped to [-1, 1] (Hardtanh); zero outside each item's valid region.
        video_similarity (`torch.FloatTensor` of shape `(batch_size,)`):
            Chamfer on `similarity_map`: mean over valid query rows of the max over valid database columns.
        raw_similarity_map (`torch.FloatTensor` of shape `(batch_size, N // 4, M // 4)`):
            The map before clamping (what ViSiL's similarity regularisation penalises).
        map_mask (`torch.BoolTensor` of shape `(batch_size, N // 4, M // 4)`):
            True at the cells that exist for each item's own lengths.
    """

    similarity_map: torch.FloatTensor | None = None
    video_similarity: torch.FloatTensor | None = None
    raw_similarity_map: torch.FloatTensor | None = None
    map_mask: torch.BoolTensor | None = None


def repeat_to_min_frames(frames: torch.Tensor, min_frames: int = 4) -> torch.Tensor:
    """DnS's data-pipeline rule: concatenate a video [F, ...] with itself until it has >= `min_frames` frames."""
    if frames.shape[0] == 0:
        raise ValueError("repeat_to_min_frames: the video has no frames")
    while frames.shape[0] < min_frames:
        frames = torch.cat([frames, frames], dim=0)
    return frames


def _lengths(lengths: torch.Tensor | Sequence[int] | None, size: int, batch: int, name: str, minimum: int):
    if lengths is None:
        if size < minimum:
            raise ValueError(
                f"TCAComparatorModel: the similarity matrix has {size} {name} frames; the comparator needs at "
                f"least {minimum} per video (repeat short videos with `repeat_to_min_frames`, as DnS does)"
            )
        return None
    lengths = torch.as_tensor(lengths, dtype=torch.long).flatten().cpu()
    if lengths.numel() != batch:
        raise ValueError(
            f"TCAComparatorModel: {name}_lengths must have {batch} entries, got {lengths.numel()}"
        )
    short = (lengths < minimum).nonzero().flatten().tolist()
    if short:
        raise ValueError(
            f"TCAComparatorModel: {name} videos at batch positions {short[:10]} have "
            f"{lengths[short[:10]].tolist()} frames; the comparator needs at least {minimum} "
            "(repeat short videos with `repeat_to_min_frames`, as DnS does)"
        )
    if int(lengths.max()) > size:
        raise ValueError(f"TCAComparatorModel: {name}_lengths exceed the matrix size {size}")
    return lengths


def _region(
    rows: torch.Tensor | None, cols: torch.Tensor | None, height: int, width: int, device
) -> torch.Tensor:
    """[B, 1, height, width] float mask of rows < rows[b] and cols < cols[b] (None: all)."""
    batch = (rows if rows is not None else cols).numel()
    r = (
        torch.ones(batch, height, dtype=torch.bool)
        if rows is None
        else torch.arange(height)[None] < rows[:, None]
    )
    c = (
        torch.ones(batch, width, dtype=torch.bool)
        if cols is None
        else torch.arange(width)[None] < cols[:, None]
    )
    return (r[:, :, None] & c[:, None, :]).unsqueeze(1).to(device)


class TCAComparatorPreTrainedModel(PreTrainedModel):
    config_class = TCAComparatorConfig
    config: TCAComparatorConfig
    base_model_prefix = "comparator"
    main_input_name = "similarity_matrix"
    input_modalities = ("video",)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # DnS's reset_parameters: xavier_uniform_ conv weights, zero biases
        if isinstance(module, nn.Conv2d):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)


class TCAComparatorModel(TCAComparatorPreTrainedModel):
    """ViSiL/DnS video comparator: similarity matrices [B, N, M] -> maps [B, N//4, M//4] and scores [B].

    Training (vidtempo.training.train_comparator): the TCA paper gives no loss of its own for TCA_v, so the
    comparator is trained with ViSiL's loss: a triplet loss on video similarities,
    relu(s(a, n) - s(a, p) + margin), plus `r` times the similarity regularisation
    sum |min(0, S + 1)| + |max(0, S - 1)| over the raw maps (`raw_similarity_map`).
    """

    def __init__(self, config: TCAComparatorConfig):
        super().__init__(config)
        c1, c2, c3 = config.conv_channels
        self.conv1 = nn.Conv2d(config.in_channels, c1, 3)
        self.conv2 = nn.Conv2d(c1, c2, 3)
        self.conv3 = nn.Conv2d(c2, c3, 3)
        self.fconv = nn.Conv2d(c3, 1, 1)
        self.post_init()

    def forward(
        self,
        similarity_matrix: torch.Tensor | None = None,
        query_lengths: torch.Tensor | Sequence[int] | None = None,
        database_lengths: torch.Tensor | Sequence[int] | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> TCAComparatorOutput | tuple:
        r"""
        Args:
            similarity_matrix (`torch.FloatTensor` of shape `(batch_size, N, M)` or `(batch_size, 1, N, M)`):
                Frame-to-frame similarities, query frames as rows, database frames as columns.
            query_lengths / database_lengths (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
                Valid rows / columns of each padded item (default: all). Each must be >= 4.
        """
        if similarity_matrix is None:
            raise ValueError("TCAComparatorModel.forward needs `similarity_matrix` of shape [batch, N, M]")
        if similarity_matrix.dim() == 4 and similarity_matrix.shape[1] == self.config.in_channels:
            x = similarity_matrix
        elif similarity_matrix.dim() == 3 and self.config.in_channels == 1:
            x = similarity_matrix.unsqueeze(1)  # [B, 1, N, M]
        else:
            raise ValueError(
                "TCAComparatorModel.forward: `similarity_matrix` must have shape [batch, N, M] (or "
                f"[batch, {self.config.in_channels}, N, M]), got {tuple(similarity_matrix.shape)}"
            )
        batch, _, height, width = x.shape
        minimum = self.config.min_frames
        rows = _lengths(query_lengths, height, batch, "query", minimum)
        cols = _lengths(database_lengths, width, batch, "database", minimum)
        masked = rows is not None or cols is not None
        if masked:  # what an unpadded matrix's zero padding would see
            x = x * _region(rows, cols, height, width, x.device).to(x.dtype)

        x = F.relu(self.conv1(F.pad(x, (1, 1, 1, 1))))
        x = F.max_pool2d(x, 2, 2)
        if masked:
            x = x * _region(_half(rows, 1), _half(cols, 1), x.shape[2], x.shape[3], x.device).to(x.dtype)
        x = F.relu(self.conv2(F.pad(x, (1, 1, 1, 1))))
        x = F.max_pool2d(x, 2, 2)
        if masked:
            x = x * _region(_half(rows, 2), _half(cols, 2), x.shape[2], x.shape[3], x.device).to(x.dtype)
        x = F.relu(self.conv3(F.pad(x, (1, 1, 1, 1))))
        raw = self.fconv(x).squeeze(1)  # [B, N//4, M//4]

        if masked:
            map_mask = _region(_half(rows, 2), _half(cols, 2), raw.shape[1], raw.shape[2], raw.device)[:, 0]
            raw = raw * map_mask.to(raw.dtype)
        else:
            map_mask = torch.ones(raw.shape, dtype=torch.bool, device=raw.device)
        clamped = F.hardtanh(raw)  # [B, n, m] in [-1, 1]
        best = torch.where(map_mask, clamped, torch.finfo(clamped.dtype).min).amax(dim=2)  # [B, n]
        valid_rows = map_mask.any(dim=2).to(clamped.dtype)  # [B, n]
        score = (best * valid_rows).sum(dim=1) / valid_rows.sum(dim=1)  # [B]
        output = TCAComparatorOutput(
            similarity_map=clamped, video_similarity=score, raw_similarity_map=raw, map_mask=map_mask
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    @classmethod
    def from_dns_state_dict(
        cls, state_dict: Mapping[str, torch.Tensor], config: TCAComparatorConfig | None = None
    ) -> "TCAComparatorModel":
        """A comparator with the weights of a DnS `VideoComperator` state dict: its own keys (`conv1.weight`, ...)
        or a `FineGrainedStudent` checkpoint's `visil_head.`-prefixed ones (other keys are ignored)."""
        names = ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "conv3.weight", "conv3.bias",
                 "fconv.weight", "fconv.bias")  # fmt: skip
        prefix = "visil_head." if any(k.startswith("visil_head.") for k in state_dict) else ""
        missing = [prefix + n for n in names if prefix + n not in state_dict]
        if missing:
            raise KeyError(f"from_dns_state_dict: the state dict lacks {missing} (DnS VideoComperator keys)")
        weights = {n: state_dict[prefix + n] for n in names}
        if config is None:
            config = TCAComparatorConfig(
                in_channels=int(weights["conv1.weight"].shape[1]),
                conv_channels=[int(weights[f"conv{i}.weight"].shape[0]) for i in (1, 2, 3)],
            )
        model = cls(config)
        expected = model.state_dict()
        for name, tensor in weights.items():
            if tuple(tensor.shape) != tuple(expected[name].shape):
                raise ValueError(
                    f"from_dns_state_dict: {prefix + name} has shape {tuple(tensor.shape)}, "
                    f"expected {tuple(expected[name].shape)}"
                )
        model.load_state_dict({n: t.to(expected[n].dtype) for n, t in weights.items()}, strict=True)
        return model.eval()

    def score_database(
        self,
        query_frames: torch.Tensor,
        database_frames: Sequence[torch.Tensor],
        batch_size: int = 64,
        repeat_short: bool = False,
    ) -> torch.Tensor:
        """One query [N, H] against many database videos (each [M_i, H], lengths may differ): scores [D].

        Frame embeddings should be L2-normalised (their dot products are the similarity matrix). Videos are
        batched by length and padded; the result equals scoring each pair on its own. A video with fewer than
        4 frames raises a ValueError, or with `repeat_short=True` is repeated as DnS's data pipeline does.
        """
        if query_frames.dim() != 2:
            raise ValueError(
                f"score_database: query_frames must be [frames, dim], got {tuple(query_frames.shape)}"
            )
        minimum = self.config.min_frames
        if repeat_short:
            query_frames = repeat_to_min_frames(query_frames, minimum)
            database_frames = [repeat_to_min_frames(d, minimum) for d in database_frames]
        if query_frames.shape[0] < minimum:
            raise ValueError(
                f"score_database: the query has {query_frames.shape[0]} frames; the comparator needs at least "
                f"{minimum} (pass repeat_short=True to repeat short videos as DnS does)"
            )
        lengths = [int(d.shape[0]) for d in database_frames]
        short = [i for i, n in enumerate(lengths) if n < minimum]
        if short:
            raise ValueError(
                f"score_database: database videos {short[:10]} have {[lengths[i] for i in short[:10]]} frames; "
                f"the comparator needs at least {minimum} (pass repeat_short=True to repeat them as DnS does)"
            )
        param = next(self.parameters())
        query = query_frames.to(param.device, param.dtype)
        scores = torch.empty(len(database_frames), dtype=torch.float32)
        order = sorted(range(len(lengths)), key=lengths.__getitem__)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            longest = max(lengths[i] for i in chunk)
            padded = query.new_zeros(len(chunk), longest, query.shape[1])
            for row, i in enumerate(chunk):
                padded[row, : lengths[i]] = database_frames[i].to(param.device, param.dtype)
            sims = torch.einsum("nh,bmh->bnm", query, padded)  # [b, N, M]
            out = self(sims, database_lengths=[lengths[i] for i in chunk], return_dict=True)
            scores[chunk] = out.video_similarity.float().cpu()
        return scores


def _half(lengths: torch.Tensor | None, times: int) -> torch.Tensor | None:
    return None if lengths is None else lengths // (2**times)


__all__ = [
    "TCAComparatorConfig",
    "TCAComparatorModel",
    "TCAComparatorOutput",
    "TCAComparatorPreTrainedModel",
    "repeat_to_min_frames",
]
