"""Recurrent language models over tokens: tanh RNN, GRU and LSTM.

The recurrence runs in PyTorch's fused ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM``
kernels (oneDNN on CPU, cuDNN on GPU); the state carried between calls of
``step`` is the hidden state, so sampling costs O(1) per token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tunesmith.models.base import SequenceModel


@dataclass
class RNNConfig:
    vocab_size: int = 512
    cell: str = "lstm"  # "rnn" (tanh), "gru" or "lstm"
    n_layer: int = 2
    n_embd: int = 256
    n_hidden: int = 512
    dropout: float = 0.1
    tie_weights: bool = False  # needs n_embd == n_hidden

    def check(self) -> None:
        """Refuse a configuration before building it (a user's config.json may say anything)."""
        if self.cell not in ("rnn", "gru", "lstm"):
            raise ValueError(f"cell must be rnn, gru or lstm, got {self.cell!r}")
        if not (1 <= self.vocab_size <= 100_000 and 1 <= self.n_layer <= 16 and 1 <= self.n_embd <= 8192
                and 1 <= self.n_hidden <= 8192 and 0 <= self.dropout < 1):
            raise ValueError(f"implausible sizes: {self}")
        if self.tie_weights and self.n_embd != self.n_hidden:
            raise ValueError("tie_weights needs n_embd == n_hidden")


class RNNModel(SequenceModel):
    def __init__(self, config: RNNConfig):
        super().__init__()
        if config.cell not in ("rnn", "gru", "lstm"):
            raise ValueError(f"unknown cell {config.cell!r}")
        self.config = config
        self.family = config.cell
        self.embed = nn.Embedding(config.vocab_size, config.n_embd)
        rnn_cls = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[config.cell]
        kw = {"nonlinearity": "tanh"} if config.cell == "rnn" else {}
        self.rnn = rnn_cls(config.n_embd, config.n_hidden, num_layers=config.n_layer, batch_first=True,
                           dropout=config.dropout if config.n_layer > 1 else 0.0, **kw)
        self.drop = nn.Dropout(config.dropout)
        self.proj = nn.Linear(config.n_hidden, config.n_embd) if config.tie_weights and config.n_hidden != config.n_embd else None
        self.head = nn.Linear(config.n_embd if config.tie_weights else config.n_hidden, config.vocab_size)
        if config.tie_weights:
            self.head.weight = self.embed.weight

    def step(self, idx: torch.Tensor, state):
        x = self.drop(self.embed(idx))  # (B, T, E)
        h, state = self.rnn(x, state)  # (B, T, H)
        h = self.drop(h)
        if self.proj is not None:
            h = self.proj(h)
        return self.head(h), state  # (B, T, V)

    def flops_per_token(self) -> float:
        """Forward+backward matmul FLOPs per token (6 × weights touched per token)."""
        c = self.config
        gates = {"rnn": 1, "gru": 3, "lstm": 4}[c.cell]
        rec = sum(gates * c.n_hidden * ((c.n_embd if i == 0 else c.n_hidden) + c.n_hidden) for i in range(c.n_layer))
        head = self.head.weight.numel() + (self.proj.weight.numel() if self.proj is not None else 0)
        return 6.0 * (rec + head)
