"""Where a training step's time goes: torch.profiler over a few steps of one
sequence model at the bundled size (batch 16 × 512 tokens), top operators by
self CPU time.

    python benchmarks/profile_train.py --model transformer [--attn-dropout 0.1] [--compile] [--threads 2]
    python benchmarks/profile_train.py --save    # the Transformer before/after → results-profile.json

With --save the Transformer is profiled with dropout on its attention
probabilities (before) and without (after), and the top operators' shares are
written to benchmarks/results-profile.json, which benchmarks/run.py puts in
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parents[1]


def training_step(family: str, overrides: dict | None = None, compile: bool = False,
                  B: int = 16, T: int = 512, V: int = 490):
    """One AdamW step of a sequence model at the bundled size ("small") on a fixed batch of
    random tokens, after two warm-up steps (and compilation). Returns (step, model, tokens per
    step); shared with benchmarks/run.py so both measure the same step."""
    from tunesmith.models.registry import build_model, make_config

    torch.manual_seed(0)
    m = build_model(family, make_config(family, V, "small", **(overrides or {})))
    m.train()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    x = torch.randint(0, V, (B, T))
    fwd = torch.compile(m, dynamic=False) if compile else m

    def step():
        _, loss = fwd(x, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    return step, m, B * T


def profile_step(family: str, *, attn_dropout: float | None = None, dropout: float | None = None,
                 compile: bool = False, steps: int = 3):
    step, _, tokens = training_step(family, {"dropout": dropout, "attn_dropout": attn_dropout}, compile)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        dt = (time.perf_counter() - t0) / steps
    return dt, tokens / dt, prof


def top_ops(prof, n: int) -> list[dict]:
    avgs = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in avgs)
    return [{"op": e.key, "share": e.self_cpu_time_total / total, "calls": e.count} for e in avgs[:n]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="transformer", choices=("rnn", "gru", "lstm", "transformer"))
    ap.add_argument("--compile", action="store_true", help="profile the torch.compile'd model")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rows", type=int, default=25)
    ap.add_argument("--dropout", type=float, default=None, help="override the preset's dropout")
    ap.add_argument("--attn-dropout", type=float, default=None,
                    help="Transformer: dropout on attention probabilities (0.1 shows the 'before' profile)")
    ap.add_argument("--save", action="store_true", help="Transformer before/after → benchmarks/results-profile.json")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.save:
        out = {"date": datetime.date.today().isoformat(), "threads": torch.get_num_threads(), "variants": {}}
        for tag, p in (("before", 0.1), ("after", 0.0)):
            dt, tps, prof = profile_step("transformer", attn_dropout=p, steps=a.steps)
            out["variants"][tag] = {"attn_dropout": p, "s_per_step": dt, "tokens_per_s": tps,
                                    "top_ops": top_ops(prof, 8)}
            print(f"{tag}: attention dropout {p}: {dt:.3f} s/step, {tps:,.0f} tokens/s")
            for o in out["variants"][tag]["top_ops"]:
                print(f"  {100 * o['share']:5.1f}%  {o['op']}")
        (ROOT / "benchmarks" / "results-profile.json").write_text(json.dumps(out, indent=1))
        return
    t0 = time.perf_counter()
    dt, tps, prof = profile_step(a.model, attn_dropout=a.attn_dropout, dropout=a.dropout, compile=a.compile,
                                 steps=a.steps)
    print(f"{a.model}{' (compiled)' if a.compile else ''}: {dt:.3f} s/step, {tps:,.0f} tokens/s "
          f"({torch.get_num_threads()} threads; {time.perf_counter() - t0:.0f} s in all)")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.rows))


if __name__ == "__main__":
    main()
