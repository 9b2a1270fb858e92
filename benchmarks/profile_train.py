"""Where a training step's time goes: torch.profiler over a few steps of one
sequence model at the bundled size (batch 16 × 512 tokens), top operators by
self CPU time. The figures of BENCHMARKS.md come from run.py; this script is the
magnifying glass used to find what to fix.

    python benchmarks/profile_train.py --model transformer [--compile] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="transformer", choices=("rnn", "gru", "lstm", "transformer"))
    ap.add_argument("--compile", action="store_true", help="profile the torch.compile'd step")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rows", type=int, default=25)
    ap.add_argument("--dropout", type=float, default=None, help="override the preset's dropout")
    ap.add_argument("--attn-dropout", type=float, default=None,
                    help="Transformer: dropout on attention probabilities (0.1 shows the 'before' profile)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)

    from tunesmith.models.registry import build_model, make_config

    B, T, V = 16, 512, 490
    torch.manual_seed(0)
    m = build_model(a.model, make_config(a.model, V, "small", dropout=a.dropout,
                                                attn_dropout=a.attn_dropout))
    m.train()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    x = torch.randint(0, V, (B, T))
    fwd = torch.compile(m, dynamic=False) if a.compile else m

    def step():
        _, loss = fwd(x, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    for _ in range(2):
        step()
    print(f"warm-up (2 steps, including any compilation): {time.perf_counter() - t0:.1f} s")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        dt = (time.perf_counter() - t0) / a.steps
    print(f"{a.model}{' (compiled)' if a.compile else ''}: {dt:.3f} s/step, {B * T / dt:,.0f} tokens/s "
          f"({torch.get_num_threads()} threads)")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.rows))


if __name__ == "__main__":
    main()
