"""A decoder-only Transformer: pre-norm, rotary positions, causal attention
through ``scaled_dot_product_attention``, and a KV cache for sampling."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tunesmith.models.base import SequenceModel, int8_linear, int8_pack


@dataclass
class TransformerConfig:
    vocab_size: int = 512
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 256
    block_size: int = 1024  # longest context (rotary tables are built for this many positions)
    dropout: float = 0.1  # embedding and residual branches
    # Dropout on the attention probabilities. Off by default: with it PyTorch's CPU
    # backend leaves the fused (flash) attention kernel for the math path, which builds
    # the T×T matrix and draws a Bernoulli mask over it — 1.5× slower training steps
    # (benchmarks/profile_train.py; before/after in BENCHMARKS.md).
    attn_dropout: float = 0.0
    tie_weights: bool = True

    def check(self) -> None:
        """Refuse a configuration before building it (a user's config.json may say anything)."""
        if not (1 <= self.vocab_size <= 100_000 and 1 <= self.n_layer <= 64 and 1 <= self.n_head <= 128
                and 1 <= self.n_embd <= 8192 and 1 <= self.block_size <= 65_536
                and 0 <= self.dropout < 1 and 0 <= self.attn_dropout < 1):
            raise ValueError(f"implausible sizes: {self}")
        if self.n_embd % self.n_head or (self.n_embd // self.n_head) % 2:
            raise ValueError(f"n_embd {self.n_embd} must split into {self.n_head} heads of even size")


def _rope_tables(block_size: int, head_dim: int, base: float = 10000.0):
    inv = 1.0 / (base ** (torch.arange(0, head_dim, 2).float() / head_dim))
    t = torch.arange(block_size).float()
    freqs = torch.outer(t, inv)  # (T, hd/2)
    return freqs.cos(), freqs.sin()


def _apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x: (B, nh, T, hd); cos/sin: (T, hd/2) — rotate pairs (x1, x2) of the two halves.
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Attention(nn.Module):
    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.n_head, self.head_dim = c.n_head, c.n_embd // c.n_head
        self.qkv = nn.Linear(c.n_embd, 3 * c.n_embd, bias=False)
        self.out = nn.Linear(c.n_embd, c.n_embd, bias=False)
        self.attn_dropout = c.attn_dropout

    def forward(self, x, cos, sin, cache):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, nh, T, hd)
        k = k.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        v = v.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        q, k = _apply_rope(q, cos, sin), _apply_rope(k, cos, sin)
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        past = k.size(2) - T
        if past == 0:
            p = self.attn_dropout if self.training else 0.0  # see TransformerConfig.attn_dropout
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
        elif T == 1:
            y = F.scaled_dot_product_attention(q, k, v)  # one new query sees everything cached
        else:  # several new tokens after a cache: causal within the new block
            mask = torch.ones(T, k.size(2), dtype=torch.bool, device=x.device).tril(diagonal=past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.out(y), (k, v)


class Block(nn.Module):
    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(c.n_embd, bias=False)
        self.attn = Attention(c)
        self.ln2 = nn.LayerNorm(c.n_embd, bias=False)
        self.mlp = nn.Sequential(nn.Linear(c.n_embd, 4 * c.n_embd, bias=False), nn.GELU(),
                                 nn.Linear(4 * c.n_embd, c.n_embd, bias=False), nn.Dropout(c.dropout))
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x, cos, sin, cache):
        a, cache = self.attn(self.ln1(x), cos, sin, cache)
        x = x + self.drop(a)
        x = x + self.mlp(self.ln2(x))
        return x, cache


class TransformerModel(SequenceModel):
    family = "transformer"

    def __init__(self, config: TransformerConfig):
        super().__init__()
        if config.n_embd % config.n_head or (config.n_embd // config.n_head) % 2:
            raise ValueError("n_embd must be a multiple of n_head with an even head size")
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=False)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            self.head.weight = self.embed.weight
        cos, sin = _rope_tables(config.block_size, config.n_embd // config.n_head)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("out.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / (2 * config.n_layer) ** 0.5)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    # Set by the generation layer: one-token steps on a CPU without gradients read int8
    # weights (one scale per output row, fbgemm's dynamic-quantized linear) in a fused loop
    # that calls the kernels directly. At one token the model is bound by reading its weights
    # and by the per-module Python overhead, which this avoids. Measured on 9,653 tokens of
    # 40 test tunes through the step path (the bundled folk model of 2026-11-27): NLL
    # 0.61284 against 0.61279 in float32.
    # Training, scoring and prompts of several tokens use float32.
    int8_sampling = False

    def _int8_packs(self):
        # an optimizer step or a load changes every weight in place: three of them tell
        key = tuple((p.data_ptr(), p._version) for p in (self.embed.weight, self.blocks[0].attn.qkv.weight,
                                                         self.blocks[-1].mlp[2].weight))
        cached = self.__dict__.get("_int8_cache")  # kept out of the module tree (and checkpoints)
        if cached is None or cached[0] != key:
            try:
                layers = [(b.ln1.weight.detach(), int8_pack(b.attn.qkv.weight), int8_pack(b.attn.out.weight),
                           b.ln2.weight.detach(), int8_pack(b.mlp[0].weight), int8_pack(b.mlp[2].weight))
                          for b in self.blocks]
                # rotary tables for x·cos + roll(x)·sin, the halves' rotation in one multiply-add
                cos2 = torch.cat([self.rope_cos, self.rope_cos], dim=-1)
                sin2 = torch.cat([-self.rope_sin, self.rope_sin], dim=-1)
                packs = (layers, (self.ln_f.weight.detach(), int8_pack(self.head.weight)), cos2, sin2)
            except (RuntimeError, AttributeError):
                packs = None
            self.__dict__["_int8_cache"] = cached = (key, packs)
        return cached[1]

    def _int8_token(self, tok: torch.Tensor, state, packs):
        """One token (shape (1, 1)) through the model with int8 weights; same state format
        as :meth:`step`. Written out op by op: at one token the per-module and per-call
        Python overhead of the module tree was half the step."""
        lin = int8_linear()
        layers, (lnf, head), cos2, sin2 = packs
        c = self.config
        C, nh, hd = c.n_embd, c.n_head, c.n_embd // c.n_head
        shape, eps = (C,), self.ln_f.eps
        pos = 0 if state is None else state["pos"]
        cos, sin = cos2[pos], sin2[pos]
        x = self.embed.weight[tok[0]]  # (1, C)
        kvs = []
        for i, (ln1, qkv_w, out_w, ln2, fc1, fc2) in enumerate(layers):
            qkv = lin(torch.layer_norm(x, shape, ln1, None, eps, False), qkv_w, True).view(3, 1, nh, 1, hd)
            qk = qkv[:2]
            q, k = torch.addcmul(qk * cos, qk.roll(hd // 2, -1), sin).unbind(0)  # each (1, nh, 1, hd)
            v = qkv[2]
            if state is not None:
                pk, pv = state["kv"][i]
                k, v = torch.cat([pk, k], dim=2), torch.cat([pv, v], dim=2)
            x = x + lin(F.scaled_dot_product_attention(q, k, v).view(1, C), out_w, True)
            h = lin(torch.layer_norm(x, shape, ln2, None, eps, False), fc1, True)
            x = x + lin(F.gelu(h), fc2, True)
            kvs.append((k, v))
        logits = lin(torch.layer_norm(x, shape, lnf, None, eps, False), head, True)
        return logits.view(1, 1, -1), {"pos": pos + 1, "kv": kvs}

    def step(self, idx: torch.Tensor, state):
        """state: None or {"pos": int, "kv": [(k, v) per layer]}."""
        B, T = idx.shape
        pos = 0 if state is None else state["pos"]
        if pos + T > self.config.block_size:
            raise ValueError(f"sequence of {pos + T} tokens exceeds block_size {self.config.block_size}")
        if (self.int8_sampling and B == T == 1 and not self.training and not torch.is_grad_enabled()
                and idx.device.type == "cpu"):
            packs = self._int8_packs()
            if packs is not None:
                return self._int8_token(idx, state, packs)
        cos, sin = self.rope_cos[pos : pos + T], self.rope_sin[pos : pos + T]
        x = self.drop(self.embed(idx))  # (B, T, C)
        kvs = []
        for i, blk in enumerate(self.blocks):
            x, kv = blk(x, cos, sin, None if state is None else state["kv"][i])
            kvs.append(kv)
        logits = self.head(self.ln_f(x))  # (B, T, V)
        return logits, {"pos": pos + T, "kv": kvs}

    def logits(self, idx: torch.Tensor) -> torch.Tensor:
        # Training and scoring never need the cache: skip building it.
        B, T = idx.shape
        cos, sin = self.rope_cos[:T], self.rope_sin[:T]
        x = self.drop(self.embed(idx))
        for blk in self.blocks:
            x, _ = blk(x, cos, sin, None)
        return self.head(self.ln_f(x))

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Forward+backward FLOPs per token: 6N for the weight matrices (the tied output
        projection included, the embedding lookup not) plus the attention
        scores, 12·L·C·T (PaLM appendix B convention), with T the mean context."""
        c = self.config
        n = sum(p.numel() for n_, p in self.named_parameters() if p.dim() == 2 and not n_.startswith("embed"))
        if c.tie_weights:  # the tied output projection is a matrix product; the lookup is not
            n += self.head.weight.numel()
        T = seq_len or c.block_size
        return 6.0 * n + 12.0 * c.n_layer * c.n_embd * T / 2
