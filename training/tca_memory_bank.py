"""The distractor memory bank of TCA (METHODS.md §1.4) and the optional MoCo key encoder.

Each step, that step's negatives are encoded without gradient (by the current model, or by a momentum
copy of it), gathered from every process and pushed into a FIFO queue, so every process holds the same
bank. The anchors are then scored against their positive and every filled bank entry.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class MemoryBank:
    """A FIFO queue of `size` L2-normalised embeddings of dimension `dim` (float32, on `device`).
    With ``size=0`` there is no memory: `negatives()` are the keys of the latest `enqueue` only (in-batch).

    `gather_fn` (e.g. `accelerator.gather`) concatenates the keys of all processes before they are
    enqueued; with it every process enqueues the same keys in the same order. Has `state_dict` /
    `load_state_dict`, so `accelerator.register_for_checkpointing(bank)` saves it with the training state.
    """

    def __init__(
        self,
        size: int,
        dim: int,
        device: torch.device | str = "cpu",
        gather_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        if size < 0 or dim <= 0:
            raise ValueError(f"MemoryBank: size must be >= 0 and dim positive, got size={size}, dim={dim}")
        self.size = int(size)
        self.dim = int(dim)
        self.gather_fn = gather_fn
        self.queue = torch.zeros(self.size, self.dim, dtype=torch.float32, device=device)  # [size, dim]
        self.pointer = 0  # next slot to write
        self.num_filled = 0

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> torch.Tensor:
        """Normalise, gather across processes and push `keys` [n, dim]; returns the gathered keys.
        When more keys arrive than fit, only the newest `size` are kept."""
        if keys.dim() != 2 or keys.shape[1] != self.dim:
            raise ValueError(f"MemoryBank.enqueue: keys must be [n, {self.dim}], got {tuple(keys.shape)}")
        keys = F.normalize(keys.detach().float(), dim=-1)
        if self.gather_fn is not None:
            keys = self.gather_fn(keys.contiguous())
        if self.size == 0:  # in-batch only: the bank is exactly this step's keys
            self.queue = keys.to(self.queue.device)
            self.num_filled = keys.shape[0]
            return keys
        keys = keys.to(self.queue.device)[-self.size :]  # [n', dim]
        n = keys.shape[0]
        first = min(n, self.size - self.pointer)
        self.queue[self.pointer : self.pointer + first] = keys[:first]
        if first < n:  # wrap around
            self.queue[: n - first] = keys[first:]
        self.pointer = (self.pointer + n) % self.size
        self.num_filled = min(self.size, self.num_filled + n)
        return keys

    def negatives(self) -> torch.Tensor:
        """The filled entries [num_filled, dim] (order is irrelevant to the losses)."""
        return self.queue if self.size == 0 or self.num_filled >= self.size else self.queue[: self.num_filled]

    def fingerprint(self) -> str:
        """SHA-256 of the queue's bytes and pointers (to check that processes agree)."""
        digest = hashlib.sha256(self.queue.detach().cpu().numpy().tobytes())
        digest.update(f"{self.pointer}/{self.num_filled}".encode())
        return digest.hexdigest()

    def state_dict(self) -> dict:
        return {
            "queue": self.queue.detach().cpu().clone(),
            "pointer": self.pointer,
            "num_filled": self.num_filled,
        }

    def load_state_dict(self, state: dict) -> None:
        queue = state["queue"]
        if self.size == 0 and queue.dim() == 2 and queue.shape[1] == self.dim:
            self.queue = queue.to(self.queue.device).clone()
            self.pointer, self.num_filled = int(state["pointer"]), int(state["num_filled"])
            return
        if tuple(queue.shape) != (self.size, self.dim):
            raise ValueError(
                f"MemoryBank.load_state_dict: saved queue has shape {tuple(queue.shape)}, "
                f"this bank is ({self.size}, {self.dim}); use the same bank_size and hidden size"
            )
        self.queue.copy_(queue.to(self.queue.device))
        self.pointer = int(state["pointer"])
        self.num_filled = int(state["num_filled"])


class MomentumKeyEncoder(nn.Module):
    """MoCo key encoder: a copy of the model updated as θ_k ← m θ_k + (1 − m) θ_q after each optimizer
    step. With m = 0 it always equals the current weights (the authors' setting)."""

    def __init__(self, model: nn.Module, momentum: float):
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"MomentumKeyEncoder: momentum must be in [0, 1), got {momentum}")
        self.momentum = float(momentum)
        self.encoder = copy.deepcopy(model)
        for parameter in self.encoder.parameters():
            parameter.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for key_param, param in zip(self.encoder.parameters(), model.parameters(), strict=True):
            key_param.mul_(self.momentum).add_(param.detach(), alpha=1.0 - self.momentum)

    def forward(self, *args, **kwargs):
        return self.encoder(*args, **kwargs)


__all__ = ["MemoryBank", "MomentumKeyEncoder"]
