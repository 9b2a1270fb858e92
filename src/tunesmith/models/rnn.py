"""Recurrent language models over tokens: tanh RNN, GRU and LSTM.

The recurrence runs in PyTorch's fused ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM``
kernels (oneDNN on CPU, cuDNN on GPU); the state carried between calls of
``step`` is the hidden state, so sampling costs O(1) per token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tunesmith.models.base import SequenceModel, int8_linear, int8_pack


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


def _int8_packs(w, head):
    """The LSTM's recurrent and upper-layer weights and the output head as int8 (see
    :func:`int8_pack`). None where this build of PyTorch has no quantized kernels."""
    try:
        hh0 = int8_pack(w[0][1])
        layers = [int8_pack(torch.cat([wih, whh], dim=1), b) for wih, whh, b in w[1:]]
        return hh0, layers, int8_pack(head.weight, head.bias)
    except (RuntimeError, AttributeError):
        return None


class RNNModel(SequenceModel):
    # Sampling one token at a time on a CPU is bound by reading the weights (12 MB a token for
    # the bundled chorale LSTM): with this set (the generation layer sets it), those steps use
    # int8 weights — 7x faster there, and the teacher-forced NLL of 11,000 test-chorale tokens
    # through the step path is 0.29229 against 0.29228 in float32. Training, scoring and the
    # incremental-state tests use float32.
    int8_sampling = False

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
        if (self.config.cell == "lstm" and not self.training and idx.shape == (1, 1) and self.proj is None
                and not torch.is_grad_enabled() and idx.device.type == "cpu"):
            return self._lstm_token(int(idx), state)
        x = self.drop(self.embed(idx))  # (B, T, E)
        h, state = self.rnn(x, state)  # (B, T, H)
        h = self.drop(h)
        if self.proj is not None:
            h = self.proj(h)
        return self.head(h), state  # (B, T, V)

    def _lstm_token(self, tok: int, state):
        """One token through the LSTM in eval mode, as matrix-vector products: the first
        layer's input projection of every token is precomputed (a table lookup), and the
        per-call overhead of the fused kernel (which dominates at one token) is avoided —
        about 1.4× faster when sampling on a CPU. Same state format as ``nn.LSTM``."""
        # the weights' identities and versions (an optimizer step or a load changes them in place);
        # the RNN's own flat list of them, as walking parameters() cost 6% of a sampled chorale
        key = tuple((p.data_ptr(), p._version) for p in (getattr(self.rnn, "_flat_weights", None)
                                                          or list(self.rnn.parameters())))
        if getattr(self, "_fast_key", None) != key:
            L = self.config.n_layer
            w = [(getattr(self.rnn, f"weight_ih_l{i}"), getattr(self.rnn, f"weight_hh_l{i}"),
                  getattr(self.rnn, f"bias_ih_l{i}") + getattr(self.rnn, f"bias_hh_l{i}")) for i in range(L)]
            self._fast = (self.embed.weight @ w[0][0].T + w[0][2], w)
            self._int8 = None
            self._fast_key = key
        table, w = self._fast
        packs = None
        if self.int8_sampling:
            if self._int8 is None:
                self._int8 = _int8_packs(w, self.head) or False
            packs = self._int8 or None
        if packs:  # int8 weights (see int8_sampling)
            lin = int8_linear()
            hh0, layers, head = packs

            def gates_of(i, inp, h):
                if i == 0:
                    return table[tok] + lin(h[None], hh0, True)[0]
                return lin(torch.cat([inp, h])[None], layers[i - 1], True)[0]  # [W_ih W_hh]·[x; h] + b

            def logits_of(inp):
                return lin(inp[None], head, True)[0]
        else:
            def gates_of(i, inp, h):
                wih, whh, b = w[i]
                return (table[tok] if i == 0 else torch.addmv(b, wih, inp)).addmv(whh, h)

            def logits_of(inp):
                return torch.addmv(self.head.bias, self.head.weight, inp)
        H = self.config.n_hidden
        if state is None:
            z = torch.zeros(self.config.n_layer, 1, H)
            state = (z, z.clone())
        h0, c0 = state
        hs, cs = [], []
        inp = None
        for i in range(self.config.n_layer):
            ig, fg, gg, og = gates_of(i, inp, h0[i, 0]).chunk(4)
            c = torch.sigmoid(fg) * c0[i, 0] + torch.sigmoid(ig) * torch.tanh(gg)
            inp = torch.sigmoid(og) * torch.tanh(c)
            hs.append(inp)
            cs.append(c)
        return logits_of(inp).view(1, 1, -1), (torch.stack(hs)[:, None], torch.stack(cs)[:, None])

    def flops_per_token(self) -> float:
        """Forward+backward matmul FLOPs per token (6 × weights touched per token)."""
        c = self.config
        gates = {"rnn": 1, "gru": 3, "lstm": 4}[c.cell]
        rec = sum(gates * c.n_hidden * ((c.n_embd if i == 0 else c.n_hidden) + c.n_hidden) for i in range(c.n_layer))
        head = self.head.weight.numel() + (self.proj.weight.numel() if self.proj is not None else 0)
        return 6.0 * (rec + head)
