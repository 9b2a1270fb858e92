"""Speed figures of the foundation and the sequence models; writes BENCHMARKS.md.

    python benchmarks/run.py            # everything (about 8 minutes on 2 cores)
    python benchmarks/run.py --quick    # skip the cold preparation of all corpora

Each figure is printed and written with the machine and the date. Nothing here
is a test: no figure is asserted.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for ln in open("/proc/cpuinfo"):
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}"


def bench_prepare(quick: bool) -> dict:
    from music21 import converter

    from tunesmith.music.corpora import CORPORA, corpus_files
    from tunesmith.music.dataset import prepare

    out: dict = {}
    names = [c for c in CORPORA if not CORPORA[c].members]
    # Naive baseline: music21 converter.parse, one file after another, on the same 100 pieces.
    sample = [f for c in ("bach-chorales", "palestrina", "monteverdi") for f in corpus_files(c)[:25]]
    sample += list(corpus_files("ryans-mammoth")[:25])
    t0 = time.perf_counter()
    for f in sample:
        converter.parse(str(f), forceSource=True)
    naive = (time.perf_counter() - t0) / len(sample)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        for f in sample:
            from tunesmith.music.io import read_pieces
            read_pieces(f)
        ours_serial = (time.perf_counter() - t0) / len(sample)
        out["naive_music21_s_per_piece"] = naive
        out["tunesmith_reader_s_per_piece"] = ours_serial
        out["reader_speedup_same_100"] = naive / ours_serial
        if not quick:
            cold = warm = 0.0
            pieces = 0
            for n in names:
                r = prepare(n, Path(d) / n, progress=False)
                cold += r.seconds
                pieces += r.n_pieces
                out[f"cold_{n}_s"] = r.seconds
            for n in names:
                warm += prepare(n, Path(d) / n, progress=False).seconds
            out.update(cold_all_s=cold, warm_all_s=warm, pieces_all=pieces,
                       naive_estimate_all_s=naive * pieces, cold_speedup_vs_naive=naive * pieces / cold)
    return out


def bench_render() -> dict:
    from tunesmith.music.corpora import corpus_files
    from tunesmith.music.io import load_score
    from tunesmith.music.render import synthesize

    out = {}
    for name, f in (("chorale", corpus_files("bach-chorales")[0]), ("palestrina", corpus_files("palestrina")[0])):
        s = load_score(f)
        synthesize(s)  # warm the SoundFont cache
        t0 = time.perf_counter()
        synthesize(s)
        dt = time.perf_counter() - t0
        out[f"render_{name}_audio_s"] = s.duration_seconds()
        out[f"render_{name}_rtf"] = s.duration_seconds() / dt
    return out


def bench_generate() -> dict:
    from tunesmith.generate.api import bundled_models, load_model

    out = {}
    for name in bundled_models():
        mm = load_model(name)
        for cache in (True, False):
            bars = 8 if cache else 2
            mm.generate(bars=1, seed=0, use_cache=cache)
            t0 = time.perf_counter()
            g = mm.generate(bars=bars, seed=1, use_cache=cache)
            dt = time.perf_counter() - t0
            tag = "cache" if cache else "no_cache"
            out[f"gen_{name}_{tag}_tokens_per_s"] = g.n_tokens / dt
            out[f"gen_{name}_{tag}_s_per_audio_minute"] = dt / max(g.score.duration_seconds(), 1e-9) * 60
    return out


def bench_train() -> dict:
    from tunesmith.models.registry import SEQUENCE_FAMILIES, build_model, make_config

    out = {}
    B, T, V = 16, 512, 490
    for fam in SEQUENCE_FAMILIES:
        torch.manual_seed(0)
        m = build_model(fam, make_config(fam, V, "small"))
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
        x = torch.randint(0, V, (B, T))
        def step(m=m, opt=opt, x=x):
            _, loss = m(x, x)
            opt.zero_grad()
            loss.backward()
            opt.step()

        for _ in range(2):  # warm-up
            step()
        t0 = time.perf_counter()
        for _ in range(3):
            step()
        dt = (time.perf_counter() - t0) / 3
        out[f"train_{fam}_tokens_per_s"] = B * T / dt
        out[f"train_{fam}_params"] = m.n_params()
    return out


def write_md(results: dict, path: Path) -> None:
    r = results
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `python benchmarks/run.py` on {r['machine']}, {r['date']}.",
        "Figures are copied from `benchmarks/results.json`; rerun the script to refresh them.",
        "",
        "## Reading and preparing corpora",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| music21 `converter.parse`, naive loop, same 100 pieces | {r['naive_music21_s_per_piece'] * 1000:.0f} ms/piece |",
        f"| tunesmith reader (one process), same 100 pieces | {r['tunesmith_reader_s_per_piece'] * 1000:.0f} ms/piece ({r['reader_speedup_same_100']:.1f}×) |",
    ]
    if "cold_all_s" in r:
        lines += [
            f"| prepare all bundled corpora, cold (2 processes) | {r['cold_all_s']:.0f} s for {r['pieces_all']:,} pieces |",
            f"| … naive loop estimate for the same pieces | {r['naive_estimate_all_s']:.0f} s ({r['cold_speedup_vs_naive']:.1f}× slower than cold) |",
            f"| prepare all bundled corpora, warm (nothing changed) | {r['warm_all_s']:.1f} s |",
        ]
        for k, v in r.items():
            if k.startswith("cold_") and k.endswith("_s") and k != "cold_all_s":
                lines.append(f"| … cold, `{k[5:-2]}` | {v:.1f} s |")
    lines += ["", "## Rendering (FluidSynth, TimGM6mb.sf2, 44.1 kHz)", "", "| piece | audio | real-time factor |", "| --- | --- | --- |"]
    for name in ("chorale", "palestrina"):
        lines.append(f"| {name} | {r[f'render_{name}_audio_s']:.0f} s | {r[f'render_{name}_rtf']:.0f}× |")
    lines += ["", "## Generation (bundled models, one CPU process)", "",
              "| model | KV/hidden-state cache | tokens/s | seconds per minute of music |", "| --- | --- | --- | --- |"]
    for k, v in r.items():
        if k.startswith("gen_") and k.endswith("_tokens_per_s"):
            base = k[: -len("_tokens_per_s")]
            name, tag = base[4:].rsplit("_", 1) if not base.endswith("no_cache") else (base[4:-9], "no_cache")
            lines.append(f"| {name} | {'on' if tag == 'cache' else 'off'} | {v:,.0f} | {r[base + '_s_per_audio_minute']:.2f} |")
    lines += ["", "## Training throughput (size `small`, batch 16 × 512 tokens, fp32, 2 threads)", "",
              "| family | parameters | tokens/s |", "| --- | --- | --- |"]
    for fam in ("rnn", "gru", "lstm", "transformer"):
        lines.append(f"| {fam} | {r[f'train_{fam}_params']:,} | {r[f'train_{fam}_tokens_per_s']:,.0f} |")
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    os.environ.setdefault("TUNESMITH_HOME", tempfile.mkdtemp(prefix="tunesmith-bench-"))
    res = {"machine": machine(), "date": datetime.date.today().isoformat()}
    for fn in (lambda: bench_prepare(a.quick), bench_render, bench_generate, bench_train):
        r = fn()
        for k, v in r.items():
            print(f"{k:48} {v:,.3f}" if isinstance(v, float) else f"{k:48} {v}")
        res.update(r)
    (ROOT / "benchmarks" / "results.json").write_text(json.dumps(res, indent=1))
    write_md(res, ROOT / "BENCHMARKS.md")
    print(f"wrote {ROOT / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
