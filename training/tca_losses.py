"""Contrastive losses of TCA (METHODS.md §1.4) on cosine similarities of L2-normalised video embeddings.

Every loss takes `positive_sim` [B] (s_p = cos(anchor, positive)) and `negative_sim` [B, N]
(s_n^j = cos(anchor, negative j), e.g. against every memory-bank entry) and returns the mean over the
batch (or the per-anchor losses with `reduction="none"`). Softmax-type losses are computed with
log-sum-exp, so they stay finite at γ = 256.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check(positive_sim: torch.Tensor, negative_sim: torch.Tensor, name: str) -> None:
    if positive_sim.dim() != 1 or negative_sim.dim() != 2 or negative_sim.shape[0] != positive_sim.shape[0]:
        raise ValueError(
            f"{name}: expected positive_sim [B] and negative_sim [B, N], got {tuple(positive_sim.shape)} "
            f"and {tuple(negative_sim.shape)}"
        )


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _softmax_nll(positive_logit: torch.Tensor, negative_logits: torch.Tensor) -> torch.Tensor:
    """−log(e^{l_p} / (e^{l_p} + Σ_j e^{l_n^j})) per row, via log-sum-exp. [B], [B, N] -> [B]."""
    logits = torch.cat([positive_logit.unsqueeze(1), negative_logits], dim=1)  # [B, 1 + N]
    return torch.logsumexp(logits, dim=1) - positive_logit


def info_nce_loss(
    positive_sim: torch.Tensor, negative_sim: torch.Tensor, temperature: float = 0.07, reduction: str = "mean"
) -> torch.Tensor:
    """InfoNCE: L = −log(e^{s_p/τ} / (e^{s_p/τ} + Σ_j e^{s_n^j/τ}))."""
    _check(positive_sim, negative_sim, "info_nce_loss")
    if temperature <= 0:
        raise ValueError(f"info_nce_loss: temperature must be positive, got {temperature}")
    return _reduce(_softmax_nll(positive_sim / temperature, negative_sim / temperature), reduction)


def circle_loss(
    positive_sim: torch.Tensor,
    negative_sim: torch.Tensor,
    margin: float = 0.25,
    gamma: float = 256.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Circle loss with one positive per anchor (the positive is its own column, as in the paper):

    α_p = [1 + m − s_p]_+, α_n^j = [s_n^j + m]_+, Δ_p = 1 − m, Δ_n = m,
    L = −log(e^{γ α_p (s_p − Δ_p)} / (e^{γ α_p (s_p − Δ_p)} + Σ_j e^{γ α_n^j (s_n^j − Δ_n)})).

    The weights α are treated as constants (no gradient flows through them), as in Sun et al. (CVPR 2020).
    """
    _check(positive_sim, negative_sim, "circle_loss")
    alpha_p = torch.clamp_min(1.0 + margin - positive_sim, 0.0).detach()  # [B]
    alpha_n = torch.clamp_min(negative_sim + margin, 0.0).detach()  # [B, N]
    positive_logit = gamma * alpha_p * (positive_sim - (1.0 - margin))  # [B]
    negative_logits = gamma * alpha_n * (negative_sim - margin)  # [B, N]
    return _reduce(_softmax_nll(positive_logit, negative_logits), reduction)


def triplet_loss(
    positive_sim: torch.Tensor,
    negative_sim: torch.Tensor,
    margin: float = 1.0,
    reduction: str = "mean",
    hardest: bool = False,
) -> torch.Tensor:
    """Triplet baseline on similarities: relu(s_n − s_p + margin) per anchor, averaged over its negatives, or
    with `hardest=True` for its hardest negative only (max s_n: the peers' hard triplets, built per batch)."""
    _check(positive_sim, negative_sim, "triplet_loss")
    if hardest:
        negative_sim = negative_sim.amax(dim=1, keepdim=True)  # [B, 1]
    return _reduce(F.relu(negative_sim - positive_sim.unsqueeze(1) + margin).mean(dim=1), reduction)


def contrastive_similarities(
    anchor_embeds: torch.Tensor, positive_embeds: torch.Tensor, negative_embeds: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """s_p [B] and s_n [B, N] from L2-normalised anchors [B, H], positives [B, H] and negatives [N, H]."""
    positive_sim = (anchor_embeds * positive_embeds).sum(dim=-1)  # [B]
    negative_sim = anchor_embeds @ negative_embeds.to(anchor_embeds.dtype).T  # [B, N]
    return positive_sim, negative_sim


def similarity_regularization(raw_map: torch.Tensor, map_mask: torch.Tensor | None = None) -> torch.Tensor:
    """ViSiL's similarity regularisation of comparator maps [B, n, m] (before the Hardtanh):
    Σ_cells |min(0, S + 1)| + |max(0, S − 1)| per map (valid cells only), averaged over the maps. [B, n, m] -> []."""
    if raw_map.dim() != 3:
        raise ValueError(f"similarity_regularization: raw_map must be [B, n, m], got {tuple(raw_map.shape)}")
    penalty = (raw_map + 1).clamp(max=0).abs() + (raw_map - 1).clamp(min=0)
    if map_mask is not None:
        penalty = penalty * map_mask.to(penalty.dtype)
    return penalty.sum(dim=(1, 2)).mean()


def comparator_loss(
    positive_sim: torch.Tensor,
    negative_sim: torch.Tensor,
    raw_maps: torch.Tensor,
    map_masks: torch.Tensor | None = None,
    margin: float = 1.0,
    regularization_weight: float = 0.5,
    hardest: bool = True,
) -> torch.Tensor:
    """ViSiL's comparator loss (the TCA paper gives none for TCA_v): the triplet loss on video similarities
    (`triplet_loss`, each anchor's hardest negative by default) + `regularization_weight` x
    `similarity_regularization` of every raw map of the step (`raw_maps` [P, n, m], positive and negative)."""
    triplet = triplet_loss(positive_sim.float(), negative_sim.float(), margin=margin, hardest=hardest)
    return triplet + regularization_weight * similarity_regularization(raw_maps.float(), map_masks)


LOSSES = {"circle": circle_loss, "infonce": info_nce_loss, "triplet": triplet_loss}


def compute_loss(name: str, positive_sim: torch.Tensor, negative_sim: torch.Tensor, **kwargs) -> torch.Tensor:
    """Dispatch by name ('circle', 'infonce', 'triplet'); kwargs are that loss's hyper-parameters."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}")
    return LOSSES[name](positive_sim.float(), negative_sim.float(), **kwargs)


__all__ = [
    "LOSSES",
    "circle_loss",
    "comparator_loss",
    "compute_loss",
    "contrastive_similarities",
    "info_nce_loss",
    "similarity_regularization",
    "triplet_loss",
]
