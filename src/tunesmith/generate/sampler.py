"""The one sampler: temperature, top-k, nucleus (top-p), a grammar mask, and
incremental decoding through the model's ``step`` state (KV cache / hidden state)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tunesmith.errors import OptionError
from tunesmith.progress import report


@dataclass
class SamplingControls:
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def check(self) -> None:
        if not (0 < self.temperature <= 10):
            raise OptionError("--temperature", f"must be in (0, 10], got {self.temperature}")
        if self.top_k < 0:
            raise OptionError("--top-k", f"must be 0 (off) or positive, got {self.top_k}")
        if not (0 < self.top_p <= 1):
            raise OptionError("--top-p", f"must be in (0, 1], got {self.top_p}")


def probabilities(logits: np.ndarray, c: SamplingControls) -> np.ndarray:
    """Logits (n,) → probabilities (n,) after temperature, top-k and top-p, in float64.

    NumPy rather than torch: the vectors are a few hundred numbers long, and one token's
    draw went from about 0.2 ms to 0.03 ms (each torch call costs microseconds of dispatch)."""
    x = np.asarray(logits, np.float64) / c.temperature
    if 0 < c.top_k < x.size:
        kth = np.partition(x, x.size - c.top_k)[x.size - c.top_k]
        x = np.where(x < kth, -np.inf, x)
    p = np.exp(x - x.max())
    p /= p.sum()
    if c.top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        sp = p[order]
        # keep the smallest prefix whose mass reaches top_p: a token goes when the mass before it
        # already does (with a float tolerance, so 0.4 + 0.3 reaches 0.7)
        sp[np.cumsum(sp) - sp >= c.top_p - 1e-6] = 0.0
        p = np.zeros_like(p)
        p[order] = sp
        p /= p.sum()
    return p


def filter_logits(logits: torch.Tensor, c: SamplingControls, allowed: torch.Tensor | None) -> torch.Tensor:
    """logits (V,) → probabilities (V,) after mask, temperature, top-k and top-p."""
    x = logits.detach().float().cpu().numpy()
    if allowed is None:
        return torch.from_numpy(probabilities(x, c).astype(np.float32))
    ids = np.flatnonzero(allowed.cpu().numpy())
    out = np.zeros(x.size, np.float32)
    out[ids] = probabilities(x[ids], c)
    return torch.from_numpy(out)


def draw(logits: np.ndarray, c: SamplingControls, g: torch.Generator) -> int:
    """One index drawn from ``probabilities(logits, c)``, by inverse CDF with a uniform number
    from the seeded generator ``g``."""
    p = probabilities(logits, c)
    cdf = np.cumsum(p)
    u = float(torch.rand((), generator=g, dtype=torch.float64)) * cdf[-1]
    i = int(np.searchsorted(cdf, u, side="right"))
    while i >= p.size or p[i] == 0:  # u at the very top, or (float ties) on a dropped token: the last kept one
        i = (i if i < p.size else p.size) - 1
    return i


def sample(model, prompt: list[int], constraint, controls: SamplingControls, *, seed: int = 0,
           use_cache: bool = True, device: str = "cpu") -> list[int]:
    """Continue ``prompt`` until ``constraint.feed`` says stop; returns the new tokens."""
    with sampling_mode():
        return _sample(model, prompt, constraint, controls, seed=seed, use_cache=use_cache, device=device)


class sampling_mode:
    """How one-token steps run fastest on a CPU, for the duration of a sampling loop:

    - oneDNN's RNN kernels off: they re-pack the weights on every call, which makes an LSTM
      ~40x slower for one token;
    - one intra-op thread: a matrix-vector product is too small to share, and when another
      process holds the other core, waiting for the second thread made a step of the
      bundled chorale LSTM take 24 ms instead of 0.4 ms (measured)."""

    def __enter__(self):
        self.prev = torch._C._get_mkldnn_enabled(), torch.get_num_threads()
        torch._C._set_mkldnn_enabled(False)
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch._C._set_mkldnn_enabled(self.prev[0])
        torch.set_num_threads(self.prev[1])


@torch.inference_mode()
def _sample(model, prompt: list[int], constraint, controls: SamplingControls, *, seed: int = 0,
           use_cache: bool = True, device: str = "cpu") -> list[int]:
    g = torch.Generator().manual_seed(seed)
    model.eval()
    window = getattr(model.config, "block_size", None)
    seq = list(prompt)
    # the context's first token: a Transformer's context slides by half when it is full, the
    # same way whether the keys and values are cached or recomputed every step
    start = max(0, len(seq) - window) if window else 0
    logits, state = model.step(torch.tensor([seq[start:]], device=device), None)
    last = logits[0, -1]
    new: list[int] = []
    reported = 0
    while True:
        # tokens beyond the grammar's (style tokens) are never drawn here
        ids = np.flatnonzero(constraint.allowed()[: last.numel()])
        if not len(ids):  # cannot happen with a consistent grammar; stop rather than emit junk
            break
        if len(ids) == 1:  # the grammar leaves one token: nothing to draw
            t = int(ids[0])
        else:  # the same distribution as masking all V logits, computed over the allowed ones only
            t = int(ids[draw(last.float().cpu().numpy()[ids], controls, g)])
        if not constraint.feed(t):
            break
        new.append(t)
        seq.append(t)
        if t == getattr(constraint.tok, "bar_id", None):
            done, total = constraint.bars_progress()
            if done > reported:  # (the bar after an upbeat's pickup bar is still the first)
                reported = done
                report(done, total, "bars")
        full = window and len(seq) - 1 - start >= window  # the context held before t is full
        if full:
            start = len(seq) - window // 2
        if use_cache and not full:
            logits, state = model.step(torch.tensor([[t]], device=device), state)
        else:  # full recompute (or the context was full: slid by half)
            logits, state = model.step(torch.tensor([seq[start:]], device=device), None)
        last = logits[0, -1]
    return new

