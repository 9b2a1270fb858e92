"""The small interface every sequence-model family implements.

``forward(idx, targets)`` → ``(logits, loss)`` as in nanoGPT; ``step(idx, state)``
runs new tokens through the model with a carried state (the RNN's hidden
state, the Transformer's KV cache) so that one sampler serves every family.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def int8_pack(weight: torch.Tensor, bias: torch.Tensor | None = None):
    """A linear layer's weight as int8, one scale per output row, packed for PyTorch's
    dynamic-quantized linear (fbgemm; ``torch.ops.quantized.linear_dynamic``). Sampling one
    token at a time on a CPU is bound by reading the weights, and int8 reads a quarter of the
    memory. Raises RuntimeError or AttributeError where this build has no quantized kernels."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantized tensors are deprecated in PyTorch; 2.13 (pinned) has them
        amax = weight.detach().abs().amax(dim=1).clamp(min=1e-8)
        q = torch.quantize_per_channel(weight.detach().float().contiguous(), (amax / 127).double(),
                                       torch.zeros(weight.shape[0], dtype=torch.long), 0, torch.qint8)
        return torch.ops.quantized.linear_prepack(q, None if bias is None else bias.detach().float().contiguous())


def int8_linear():
    """The dynamic-quantized linear kernel for :func:`int8_pack`'s weights, called as
    ``lin(x, packed, True)``: the kernel itself rather than its overload, whose Python
    dispatch wrapper cost 0.4 ms a token for the folk model's 17 calls (a third of its step)."""
    op = torch.ops.quantized.linear_dynamic.default
    return getattr(op, "_op", op)


class SequenceModel(nn.Module):
    family: str = ""
    config: Any

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                ignore_index: int = -100, allowed: torch.Tensor | None = None):
        """idx (B, T) → logits (B, T, V); loss is the mean NLL of ``targets`` (B, T).

        ``allowed`` (V, V) bool, optional: row ``prev`` lists the tokens a
        grammar allows after ``prev``; disallowed logits are masked so the
        model is a proper distribution over valid sequences."""
        logits = self.logits(idx)
        if allowed is not None:
            logits = logits.masked_fill(~allowed[idx], float("-inf"))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1),
                                   ignore_index=ignore_index)
        return logits, loss

    def logits(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) of a whole sequence from scratch (training and scoring)."""
        return self.step(idx, None)[0]

    def step(self, idx: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Run ``idx`` (B, T) after ``state`` (None = start); returns logits (B, T, V) and the new state."""
        raise NotImplementedError

    @torch.no_grad()
    def log_prob(self, idx: torch.Tensor, pad_id: int | None = None,
                 allowed: torch.Tensor | None = None) -> torch.Tensor:
        """Sum of log p(x_t | x_<t) over t ≥ 1 for each row of ``idx`` (B, T) → (B,)."""
        logits, _ = self.forward(idx[:, :-1], allowed=allowed)
        lp = torch.log_softmax(logits.float(), dim=-1)
        tgt = idx[:, 1:]
        tok = lp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
        if pad_id is not None:
            tok = tok.masked_fill(tgt == pad_id, 0.0)
        return tok.sum(dim=1)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
