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

import numpy as np
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


def bench_generate(pieces: int = 5) -> dict:
    """Generation speed of every bundled model that samples with a cache: the median and the
    slowest of ``pieces`` 8-bar pieces (seeds 1…``pieces``) with the cache, one 2-bar piece
    without. One piece alone is at the mercy of the machine's other load."""
    from tunesmith.generate.api import bundled_models, load_model
    from tunesmith.generate.base import capabilities

    out = {"gen_date": f"{datetime.date.today().isoformat()}, {machine()}", "gen_pieces": pieces}
    for name in bundled_models():
        mm = load_model(name)
        # token rates for the sequence models only — event and SATB tokens alike, the models that
        # sample with a cache (roll models: eval_suite.py)
        if "cache" not in capabilities(mm):
            continue
        for cache in (True, False):
            bars = 8 if cache else 2
            mm.generate(bars=1, seed=0, use_cache=cache)
            rates, per_min = [], []
            for seed in range(1, (pieces if cache else 1) + 1):
                t0 = time.perf_counter()
                g = mm.generate(bars=bars, seed=seed, use_cache=cache)
                dt = time.perf_counter() - t0
                rates.append(g.n_tokens / dt)
                per_min.append(dt / max(g.score.duration_seconds(), 1e-9) * 60)
            tag = "cache" if cache else "no_cache"
            out[f"gen_{name}_{tag}_tokens_per_s"] = float(np.median(rates))
            out[f"gen_{name}_{tag}_s_per_audio_minute"] = float(np.median(per_min))
            if cache:
                out[f"gen_{name}_{tag}_s_per_audio_minute_max"] = max(per_min)
    return out


# Rows of the training-throughput table: (key, family, config overrides, compile, label).
TRAIN_VARIANTS = (
    ("rnn", "rnn", {}, False, "rnn"),
    ("gru", "gru", {}, False, "gru"),
    ("lstm", "lstm", {}, False, "lstm"),
    ("transformer_attn_dropout", "transformer", {"attn_dropout": 0.1}, False,
     "transformer, before: dropout on attention probabilities (math attention path)"),
    ("transformer", "transformer", {}, False, "transformer, after: fused flash attention, dropout on residuals only"),
    ("transformer_compiled", "transformer", {}, True, "transformer, after, + `torch.compile` (Inductor)"),
)


def bench_train() -> dict:
    from profile_train import training_step  # benchmarks/ is on sys.path when this script runs

    out = {}
    T = 512
    for key, fam, over, comp, _ in TRAIN_VARIANTS:
        step, m, tokens = training_step(fam, over, comp, T=T)
        t0 = time.perf_counter()
        for _ in range(4):
            step()
        dt = (time.perf_counter() - t0) / 4
        out[f"train_{key}_tokens_per_s"] = tokens / dt
        out[f"train_{key}_params"] = m.n_params()
        out[f"train_{key}_flops_per_token"] = model_flops_per_token(m, T)
    peak = matmul_peak()
    out["matmul_peak_gflops"] = peak / 1e9
    out["train_threads"] = torch.get_num_threads()
    for key, *_ in TRAIN_VARIANTS:
        out[f"train_{key}_mfu"] = out[f"train_{key}_flops_per_token"] * out[f"train_{key}_tokens_per_s"] / peak
    return out


def model_flops_per_token(m, T: int) -> float:
    """Training FLOPs per token: 6 × the weights used in matrix products per token (the
    embedding lookup is not a product; the output projection is), plus attention scores
    for the Transformer (its own ``flops_per_token``)."""
    if hasattr(m, "flops_per_token"):
        import inspect

        takes_t = len(inspect.signature(m.flops_per_token).parameters) > 0
        return float(m.flops_per_token(T) if takes_t else m.flops_per_token())
    n = sum(p.numel() for name, p in m.named_parameters() if p.dim() >= 2 and not name.startswith("embed"))
    return 6.0 * n


def matmul_peak(n: int = 2048, reps: int = 10) -> float:
    """The machine's fp32 matrix-multiply rate (FLOP/s) with the threads PyTorch uses."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0)


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
    lines += ["", "## Generation (bundled models, one CPU process)", ""]
    if "gen_date" in r:  # measured apart from the rest of this file
        n = r.get("gen_pieces", 1)
        what = f"median of {n} 8-bar pieces (seeds 1–{n}) with the cache" if n > 1 else "one 8-bar piece with the cache"
        lines += [f"Measured {r['gen_date']} ({what}, one 2-bar piece without; default rules).", ""]
    lines += ["| model | KV/hidden-state cache | tokens/s | seconds per minute of music | slowest piece |",
              "| --- | --- | --- | --- | --- |"]
    for k, v in r.items():
        if k.startswith("gen_") and k.endswith("_tokens_per_s"):
            base = k[: -len("_tokens_per_s")]
            name, tag = base[4:].rsplit("_", 1) if not base.endswith("no_cache") else (base[4:-9], "no_cache")
            worst = r.get(base + "_s_per_audio_minute_max")
            lines.append(f"| {name} | {'on' if tag == 'cache' else 'off'} | {v:,.0f} | "
                         f"{r[base + '_s_per_audio_minute']:.2f} | {'' if worst is None else f'{worst:.2f}'} |")
    lines += ["", f"## Training throughput (size `small`, batch 16 × 512 tokens, fp32, {r.get('train_threads', 2)} threads)", ""]
    if "matmul_peak_gflops" in r:
        lines += [f"Model FLOPs utilisation = training FLOPs per token × tokens/s ÷ the fp32 matrix-multiply rate "
                  f"measured in the same run ({r['matmul_peak_gflops']:.0f} GFLOP/s, 2048² `torch.mm`). "
                  "Where the Transformer's time went: `python benchmarks/profile_train.py --model transformer`.", "",
                  "| model | parameters | tokens/s | GFLOP per 1k tokens | MFU |", "| --- | --- | --- | --- | --- |"]
        for key, _, _, _, label in TRAIN_VARIANTS:
            if f"train_{key}_mfu" in r:
                lines.append(f"| {label} | {r[f'train_{key}_params']:,} | {r[f'train_{key}_tokens_per_s']:,.0f} | "
                             f"{r[f'train_{key}_flops_per_token'] / 1e6:.2f} | {100 * r[f'train_{key}_mfu']:.0f}% |")
    else:
        lines += ["| family | parameters | tokens/s |", "| --- | --- | --- |"]
        for fam in ("rnn", "gru", "lstm", "transformer"):
            lines.append(f"| {fam} | {r[f'train_{fam}_params']:,} | {r[f'train_{fam}_tokens_per_s']:,.0f} |")
    lines += profile_section()
    lines += extra_sections()
    path.write_text("\n".join(lines) + "\n")


def profile_section() -> list[str]:
    p = ROOT / "benchmarks" / "results-profile.json"
    if not p.is_file():
        return []
    r = json.loads(p.read_text())
    b, a = r["variants"]["before"], r["variants"]["after"]
    lines = ["", f"Where the Transformer's step time went, before and after (`python benchmarks/profile_train.py "
             f"--save`, torch.profiler, {r['threads']} threads, {r['date']}): share of self CPU time of the top "
             f"operators. Before: {b['s_per_step']:.2f} s/step; after: {a['s_per_step']:.2f} s/step.", "",
             "| before: operator | share | after: operator | share |", "| --- | --- | --- | --- |"]
    for x, y in zip(b["top_ops"], a["top_ops"]):
        lines.append(f"| `{x['op']}` | {100 * x['share']:.1f}% | `{y['op']}` | {100 * y['share']:.1f}% |")
    lines += ["", "With dropout on the attention probabilities, `scaled_dot_product_attention` leaves the fused "
              "CPU flash kernel for the math path: the T×T score matrix is built, softmaxed and masked by a "
              "Bernoulli draw (`bernoulli_`, `bmm`, `_softmax`). tunesmith now applies dropout on the residual "
              "branches only (`TransformerConfig.attn_dropout`, default 0). `torch.compile` (Inductor) fuses the "
              "remaining elementwise work but does not make the step faster on this CPU (row above); batching by "
              "length was already in place (segments sorted by length within pools of 50 batches); data loading "
              "is a NumPy slice per batch."]
    return lines


def _f(v, nd=3) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def polyphonic_notes(rows: list[dict]) -> list[str]:
    """Sentences under the polyphonic table: what is derived from the rows is computed; what is
    told of a particular run (how it was trained) appears only while that run's row is there."""
    notes = []
    beat = [r for r in rows if r["test_nll_per_frame"] < float(r["best_published"].split()[0])]
    notes.append(f"{len(beat)} of {len(rows)} rows beat every published row of the table."
                 + (" JSB rows below 4.74 also beat the SRNN bound (Fraccaro et al. 2016)."
                    if any(r["data"] == "JSB Chorales" and r["test_nll_per_frame"] < 4.74 for r in rows) else ""))
    runs = {r.get("run") for r in rows}
    if "bench-jsb-transformer" in runs:
        notes.append("The Transformer run was stopped at 29.5 min (valid 1.086 nats/token, its learning rate still "
                     "near the peak of a 4,800-step schedule) and continued with `tunesmith bench nll --resume "
                     "--train-minutes 55`, whose time-budget schedule annealed it to valid 1.000 nats/token at 55 min. "
                     "On this small data set (229 training chorales) the recurrent models fit better per minute of CPU.")
    if "bench-jsb-rnn" in runs:
        notes.append("The RNN stopped early (valid no longer improving) before its 20-minute budget.")
    if any(r["data"] == "Nottingham" for r in rows):
        notes.append("Nottingham is trained without transposition: with it (and dropout 0.2) an LSTM still underfit "
                     "after 30 minutes (valid about 2.41 nats/frame).")
    return [" ".join(notes)]


def extra_sections() -> list[str]:
    """Sections from the other benchmark scripts' result files, where present."""
    lines: list[str] = []
    p = ROOT / "benchmarks" / "results-polyphonic.json"
    if p.is_file():
        r = json.loads(p.read_text())
        lines += ["", "## Polyphonic benchmark (Boulanger-Lewandowski 2012), test NLL in nats per frame", "",
                  f"From `python benchmarks/polyphonic.py` ({r['date']}): each shipped checkpoint re-evaluated with "
                  "`tunesmith bench nll --checkpoint` (weights in float16); the other rows are the figures their "
                  "training run wrote (float32 weights, not shipped). Checkpoints chosen on valid; test never "
                  "used for training or tuning.", "",
                  "| data | model | training | shipped as | valid | test | best published row |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for row in r["rows"]:
            ship = f"`{row['checkpoint']}`" if row.get("shipped", True) else "–"
            lines.append(f"| {row['data']} | {row['model']} | {row['training']} | {ship} | "
                         f"{row['valid_nll_per_frame']:.3f} | **{row['test_nll_per_frame']:.3f}** | "
                         f"{row['best_published']} |")
        lines += ["", *polyphonic_notes(r["rows"])]
    p = ROOT / "benchmarks" / "results-quality.json"
    if p.is_file():
        lines += quality_lines(json.loads(p.read_text()))
    p = ROOT / "benchmarks" / "results-mir.json"
    if p.is_file():
        lines += mir_lines(json.loads(p.read_text()))
    p = ROOT / "benchmarks" / "results-recommend.json"
    if p.is_file():
        lines += recommend_lines(json.loads(p.read_text()))
    p = ROOT / "benchmarks" / "results-style.json"
    if p.is_file():
        r = json.loads(p.read_text())
        lines += ["", "## Style control (`generate --style`)", "",
                  f"From `python benchmarks/style.py` ({r['date']}, {r['machine']}; model {r['model']}): for every "
                  f"collection and Essen region the model knows, {r['n']} tunes × {r['bars']} bars generated with that "
                  "style asked for, classified by the bundled collection classifier (regions: the region classifier, "
                  "among Essen songs); beside it, the share classified so among tunes generated without a style.", "",
                  "| asked for | classified as asked | without a style |", "| --- | --- | --- |"]
        for kind in ("collections", "regions"):
            for name, e in r[kind].items():
                lines.append(f"| {kind[:-1]} {name} | {e['asked_and_classified']:.2f} | {e['without_style']:.2f} |")
            m = r.get(f"{kind}_mean")
            if m:
                lines.append(f"| **mean over {kind}** | **{m['asked_and_classified']:.3f}** | {m['without_style']:.3f} |")
        lines += ["", "Collections follow the asked style clearly; regions barely (the region classifier itself is "
                  "0.69 accurate against a 0.58 majority class, and most regions have few songs)."]
    p = ROOT / "benchmarks" / "results-studio.json"
    if p.is_file():
        lines += studio_lines(json.loads(p.read_text()))
    p = ROOT / "benchmarks" / "results-hardening.json"
    if p.is_file():
        lines += hardening_lines(json.loads(p.read_text()))
    p = ROOT / "benchmarks" / "results-eval.json"
    if p.is_file():
        r = json.loads(p.read_text())
        lines += ["", "## Evaluation suite (previous yardstick: samples against whole pieces of the corpus)", "",
                  f"From `python benchmarks/eval_suite.py`. All per-piece metrics (mgeval, MusPy, tonal distance, "
                  f"embedding, voice leading) of {r['metrics_pieces']:,} pieces in one process: "
                  f"**{r['metrics_seconds']:.2f} s** ({r['metrics_ms_per_piece']:.2f} ms/piece).", ""]
        models = [m for m in ("bach-chorales", "chorale-cnn", "chorale-gan", "folk") if f"eval_{m}" in r]
        if models:
            lines += ["Each bundled model's samples against its corpus (`tunesmith evaluate`; reference: the whole "
                      "corpus, originality against its train split). OA = mean overlapping area over the 23 features "
                      "(1 best), KL mean; FD = Fréchet distance in tunesmith-features-v1 [95% bootstrap interval]; "
                      "2-sample = held-out accuracy of a classifier telling generated from real (0.5 best); "
                      "flagged = pieces sharing ≥ 2 bars and ≥ 8 onsets with a training piece (beside it: the same "
                      "check on held-out real pieces).", "",
                      "| model | samples | mean OA | mean KL | FD [95% CI] | 2-sample acc | flagged (held-out real) "
                      "| 8-gram share | NLL/token (test) |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
            for m in models:
                e = r[f"eval_{m}"]
                lines.append(f"| {m} | {e['pieces']} × {e['bars']} bars | {e['mean_overlap']:.3f} | {e['mean_kl']:.3f} | "
                             f"{e['frechet']:.1f} [{e['frechet_ci95'][0]:.1f}, {e['frechet_ci95'][1]:.1f}] | "
                             f"{e['two_sample_accuracy']:.3f} | {_f(e['flagged'])} ({_f(e['heldout_flagged'])}/"
                             f"{_f(e['heldout_pieces'])}) | {_f(e['ngram8_share'])} | {_f(e.get('nll_per_token'))} |")
            feats = list(r[f"eval_{models[0]}"]["overlap"])
            lines += ["", "Overlapping area per feature:", "", "| feature | " + " | ".join(models) + " |",
                      "| --- |" + " --- |" * len(models)]
            for k in feats:
                lines.append(f"| {k} | " + " | ".join(_f(r[f'eval_{m}']['overlap'][k]) for m in models) + " |")
            chor = [m for m in models if m != "folk"]
            if chor:
                from tunesmith.evaluate.theory import CHECKS

                lines += ["", "Four-part writing, per 100 beats (reference: all Bach chorales):", "",
                          "| check | real Bach | " + " | ".join(chor) + (" | harmonized test sopranos |" if "harmonize" in r else " |"),
                          "| --- | --- |" + " --- |" * (len(chor) + ("harmonize" in r))]
                ref = r[f"eval_{chor[0]}"]["theory_reference"]
                for k in CHECKS:
                    row = f"| {k.replace('_', ' ')} | {_f(ref[k], 2)} | " + " | ".join(_f(r[f'eval_{m}']['theory'][k], 2) for m in chor)
                    if "harmonize" in r:
                        row += f" | {_f(r['harmonize']['theory'][k], 2)}"
                    lines.append(row + " |")
        if "harmonize" in r:
            h = r["harmonize"]
            lines += ["", f"chorale-cnn harmonizing the soprano of each of the {h['harmonized']} test-split chorales "
                      f"({h['seconds_harmonizing']:.0f} s), compared with those real chorales: mean OA "
                      f"{h['mean_overlap']:.3f}, FD {h['frechet']:.1f}, two-sample accuracy {h['two_sample_accuracy']:.3f}."]
        if "coconet_nll" in r:
            c = r["coconet_nll"]
            lines += ["", f"chorale-cnn likelihood: exact −log p under one random ordering of the cells (chain rule, "
                      f"one pass per cell) of {c['crops']} random {c['crop_steps']}-step crops of the test split of our "
                      f"16th-note Bach chorales: **{c['nll_per_cell']:.3f} nats per cell** (voice × 16th step), "
                      f"{c['nll_per_frame']:.3f} nats per 16th-note frame of four voices. (Coconet's paper reports "
                      "frame-wise NLL on its own JSB 16th-note split; the data differ, so the figures are not comparable.)"]
    p = ROOT / "benchmarks" / "results-audio.json"
    if p.is_file():
        lines += audio_lines(json.loads(p.read_text()))
    return lines


def audio_lines(r: dict) -> list[str]:
    """The note-GAN section: the DDSP GAN beside the WaveGAN baseline, floors and ceiling."""
    if "models" not in r:
        return []
    m = r["models"]
    lines = ["", "## Notes as raw audio: DDSP GAN (notes-gan) against the WaveGAN baseline (notes-wavegan)", "",
             f"From `python benchmarks/audio.py` ({r['threads']} threads): {r['dataset_clips']} FluidSynth-rendered "
             f"clips (4 instruments × MIDI 36–84 × 3 velocities, rendered in {r['dataset_seconds']:.1f} s); "
             f"each model generates one note per held-out clip ({m['notes-gan']['eval']['generated']['n']} valid + test "
             "clips: same pitch, instrument and velocity), scored against those clips by the in-project classifier "
             "(`notes-classifier`) and by librosa's pYIN (median f0 of the held part within a semitone of the asked "
             "pitch). Floors: the same architecture at initialisation; ceiling: as many real training clips.", "",
             "| set | pitch accuracy (classifier) | pYIN within a semitone | family accuracy | inception score "
             "| Fréchet distance | NDB/k |", "| --- | --- | --- | --- | --- | --- | --- |"]

    def row(name: str, e: dict) -> str:
        return (f"| {name} | {e['pitch_accuracy']:.3f} | {e['pyin_within_semitone']:.3f} | {e['family_accuracy']:.3f} | "
                f"{e['inception_score']:.2f} | {e['frechet_distance']:.1f} | {e['ndb_over_k']:.2f} |")

    names = {"notes-gan": "**notes-gan (DDSP GAN)**", "notes-wavegan": "notes-wavegan (WaveGAN baseline)"}
    for k in ("notes-gan", "notes-wavegan"):
        if k in m:
            lines.append(row(names[k], m[k]["eval"]["generated"]))
    for k in ("notes-gan", "notes-wavegan"):
        if k in m:
            lines.append(row(f"{m[k]['family']} at initialisation (floor)", m[k]["eval"]["at_init"]))
    lines.append(row("real training clips (ceiling)", r["real_heldout"]))
    sweep = m.get("notes-gan", {}).get("seed_sweep")
    if sweep:
        lines += ["", "notes-gan with other latent draws (seeds 1–3 of `audio evaluate --seed`): " + "; ".join(
            f"pitch {e['pitch_accuracy']:.3f}, family {e['family_accuracy']:.3f}, FD {e['frechet_distance']:.1f}, "
            f"NDB/k {e['ndb_over_k']:.2f}" for e in sweep) + "."]
    lines += ["", "| model | parameters (generator) | s per training step (batch) | generation | z variety "
              "(log-spectral distance between latents) | training run |", "| --- | --- | --- | --- | --- | --- |"]
    for k in ("notes-gan", "notes-wavegan"):
        if k not in m:
            continue
        e = m[k]
        t = e.get("card", {}).get("train") or {}
        tr = e.get("training", {})
        lines.append(f"| {k} | {e['params']:,} ({e['generator_params']:,}) | {e['train_seconds_per_step']:.2f} "
                     f"({t.get('batch_size', '?')}) | {e['generate_notes_per_s']:.0f} notes/s, "
                     f"{e['generate_realtime_factor']:.0f}× real time | {e['z_variety']:.3f} | "
                     f"checkpoint of step {tr.get('step', '?')}, {t.get('max_minutes', '?')} min budget |")
    v1 = ROOT / "benchmarks" / "results-audio-classifier-v1.json"
    if v1.is_file():
        h = json.loads(v1.read_text())
        lines += ["", "History of the yardstick: the figures above use `notes-classifier` v2 (8 time segments, family "
                  "loss weighted as pitch; valid family accuracy 0.909). With v1 (4 segments; valid family accuracy "
                  "0.712), from `tunesmith audio evaluate --classifier v1 --no-pyin`:", "",
                  "| set (classifier v1) | pitch accuracy | family accuracy | inception score | Fréchet distance | NDB/k |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for name, e in h.items():
            lines.append(f"| {name} | {e['pitch_accuracy']:.3f} | {e['family_accuracy']:.3f} | "
                         f"{e['inception_score']:.2f} | {e['frechet_distance']:.1f} | {e['ndb_over_k']:.2f} |")
    if r.get("real_velocity_spread") is not None:
        lines += ["", f"For scale, two real notes of one instrument and pitch at neighbouring velocities differ by "
                  f"{r['real_velocity_spread']:.3f} in the same log-spectral distance. "
                  "Spectrograms of generated notes beside real ones: `benchmarks/notes-gan-vs-real.png`; "
                  "training curves: `benchmarks/notes-gan-curves.png`."]
    return lines


def mir_lines(r: dict) -> list[str]:
    """Music information retrieval figures of benchmarks/mir.py (issue #15)."""
    parts = {p: r[p].get("date", r["date"]) for p in ("key", "chords", "search", "audio", "meter", "pickup", "tuning", "robust",
                                                       "classify") if isinstance(r.get(p), dict)}
    when = (r["date"] if len(set(parts.values())) <= 1 else
            "; ".join(f"{', '.join(p for p in parts if parts[p] == d)} {d}" for d in sorted(set(parts.values()))))
    lines = ["", "## Music information retrieval", "",
             f"From `python benchmarks/mir.py` ({when}; {r['machine']}).", ""]
    k = r.get("key")
    if k:
        unstated = k.get("no_stated_key") or []
        lines += [f"**Key** of the {k['pieces']} Bach chorales against the key their scores state (goal ≥ 95% exact)"
                  + (f"; {', '.join(unstated)} states none (the signature most of its parts have gives no mode)"
                     if unstated else "") + ":", "",
                  "| key finder | exact | MIREX weighted |", "| --- | --- | --- |"]
        for name, label in (("ours_notes_only", "tunesmith, notes only: the sounding key (Aarden profile + final/first bass)"),
                            ("ours_notated", "tunesmith, the notated key: the file's key signature, the key chosen by the final (its bass on a tonic, or a close on the minor's dominant), else the mode of the notes"),
                            ("music21_krumhansl", "music21 `analyze('key')` (Krumhansl–Schmuckler)")):
            if name in k:
                lines.append(f"| {label} | {k[name]['exact']:.3f} | {k[name]['mirex_weighted']:.3f} |")
        best = max(v["exact"] for n, v in k.items() if isinstance(v, dict) and n.startswith("ours"))
        lines += ["", f"In {k['stated_minor_ending_a_fourth_higher']} chorales the stated key is a minor key whose music ends "
                  "a fourth higher (a minor tune notated with one flat fewer, a 'Dorian' signature): the score states "
                  "the signature's reading, the notes say the key of the final. Leaving those out, the notes-only "
                  f"finder is exact on {k['ours_notes_only']['exact_excluding_those']:.3f}. The notated-key reading "
                  "takes the pitch collection from the signature and only the mode from the final and the notes; "
                  "where it still disagrees, the file's stated mode mostly contradicts its own first and last bass "
                  "notes (e.g. bwv166.6 states B♭ major and begins and ends on G in a G-minor texture; bwv96.6 states "
                  "D minor in its soprano's signature and F major in the other three parts', and begins and ends on "
                  "F), and the rest are modal closes. A file's stated key is "
                  "the signature most of its parts have: in bwv62.6 and bwv244.15 one part has another signature than "
                  "the other three; in bwv4.8 the soprano has one sharp (and the mode E minor), the other parts none "
                  "and no mode, and the music ends on D (before 2026-11-27 the first part's signature was read; until "
                  "2026-12-08 a signature without a mode was read as the major key, C major, and bwv4.8 was counted, "
                  "a miss, among 349: notated-key exact 0.946). "
                  + ("The 95% goal is met." if best >= 0.95 else f"The 95% goal is not met (best {best:.3f}).")]
    ch = r.get("chords")
    if ch:
        fin = ch["final_cadence"]
        authentic = fin.get("perfect authentic", 0) + fin.get("imperfect authentic", 0)
        lines += ["", f"**Chords and cadences** of the {ch['pieces']} Bach chorales (`tunesmith analyze`): "
                  f"{authentic} end on an authentic cadence ("
                  + ", ".join(f"{v} {k}" for k, v in fin.items()) + " at the last bar); the cadences at phrase ends, "
                  "by type: " + ", ".join(f"{v} {k}" for k, v in ch["cadences_by_type"].items())
                  + f" — {ch['cadences_in_another_key']} of them read in the key their phrase is in rather than the "
                  "piece's. The chords a melody implies (one a bar, major and minor triads and the dominant seventh, a chord on a "
                  "degree of the key preferred): on each chorale's soprano alone, the bar's chord root is the root "
                  f"Bach's four voices hold longest in that bar for {ch['melody_chord_root_agreement']:.3f} of "
                  f"{ch['melody_bars']:,} bars; the four-voice labelling applied to the melody (any triad or seventh "
                  f"chord, the tune's lowest note as its bass) agrees for "
                  f"{ch['melody_chord_root_agreement_four_voice_labelling']:.3f}."]
        mv = ch.get("merged_voices_melody")
        if mv:
            h, a_ = mv["notes_under_hidden"], mv["all_top_notes"]
            lines[-1] += (" The melody of one track of several voices (a pianist's file, a transcription): with each "
                          "chorale's four voices merged into one track, the melody line's notes are the soprano's with "
                          f"precision {h['precision']:.3f} and recall {h['recall']:.3f} (a note struck under a higher "
                          "one that holds through most of it left out), against "
                          f"{a_['precision']:.3f} / {a_['recall']:.3f} for the top note of every onset.")
    a = r.get("audio")
    if a:
        by = ", ".join(f"{i} {v:.3f}" for i, v in a["transcription_f1_by_instrument"].items() if v is not None)
        lines += ["", f"**Audio** ({a['pieces']} held-out chorales and folk tunes rendered with the SoundFont at 70–140 qpm "
                  "on piano, strings, organ, flute and guitar):", "",
                  "| figure | value | goal |", "| --- | --- | --- |",
                  f"| tempo within 4% | {a['tempo_within_4pct']:.3f} (octave errors forgiven: {a['tempo_within_4pct_octave_ok']:.3f}) | ≥ 0.95 |",
                  f"| audio key = symbolic key | {a['audio_key_equals_symbolic']:.3f} | ≥ 0.85 |",
                  f"| transcription note F1 (onset ±50 ms, pitch exact; basic-pitch + the onset refiner) | {a['transcription_f1']:.3f} ({by}) | ≥ 0.85 piano, ≥ 0.7 overall |",
                  *([f"| the same notes with basic-pitch's own onsets (`--raw-onsets`) | {a['transcription_f1_raw_onsets']:.3f} | |"]
                    if "transcription_f1_raw_onsets" in a else []),
                  *([f"| onsets `analyze` reports (the transcription's notes' onsets, a chord's as one): F-measure at 50 ms "
                     f"| {a['onset_f']:.3f} ("
                     + ", ".join(f"{i} {v[0]:.2f}" for i, v in a["onset_f_by_instrument"].items())
                     + ") | |", f"| librosa's onset detector (spectral flux) on the same renders | {a['onset_f_librosa']:.3f} ("
                     + ", ".join(f"{i} {v[1]:.2f}" for i, v in a["onset_f_by_instrument"].items()) + ") | |"]
                    if "onset_f" in a else []),
                  *([f"| one line or several voices, as `analyze` reads a recording (a tune's melody and chords a bar; "
                     f"no melody claimed of several voices): right for the single lines | "
                     f"{a['texture_right']['one_line']:.2f} (the four-voice chorales {a['texture_right']['several_voices']:.2f}) | |"]
                    if "texture_right" in a else []),
                  f"| analysis + transcription time | {a['seconds_per_minute_of_audio']:.2f} s per minute of audio"
                  + (f" (load average {a['load_average_after']:g} on {os.cpu_count()} cores at the end of the run)"
                     if "load_average_after" in a else "") + " | |"]
    tu = r.get("tuning")
    if tu:
        lines += ["", f"**Recordings tuned off A440** (`tunesmith transcribe`, and `analyze`, `search` through it): "
                  f"{tu['pieces']} held-out chorales and folk tunes rendered at 100 qpm on {', '.join(tu['instruments'])} "
                  "(one instrument a piece), each with the synthesizer's pitch bend on every channel so that the whole "
                  "performance is sharp or flat by so many cents, as a choir, a singer or an old instrument may be. "
                  "basic-pitch's notes are semitones of A440: heard as it is, a recording 40 cents off straddles two of "
                  f"them. Where the tuning is read more than {tu['retune_above_cents']:g} cents off, the recording is "
                  "resampled to A440 first and the notes' times put back. Note F1 (onset ±50 ms, the score's nearest "
                  "semitone). And the key from chroma (as `analyze` reads a recording's) against the score's key, "
                  "its chroma computed at the tuning read on semitones, and at librosa's own estimate (on thirds of "
                  "a semitone, which cannot tell 36 cents flat from 3 cents sharp):", "",
                  "| tuned | F1 retuned (as `transcribe` does) | F1 heard as it is | tuning read (mean cents) | read within 10 cents | chroma key right | with librosa's tuning |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for x in tu["rows"]:
            ck = (f" {x['chroma_key_right']:.2f} | {x['chroma_key_right_librosa_tuning']:.2f} |"
                  if "chroma_key_right" in x else " | |")
            lines.append(f"| {x['cents']:+d} cents | {x['f1_retuned']:.3f} | {x['f1_as_heard']:.3f} | "
                         f"{x['tuning_read_mean']:+.1f} | {x['tuning_read_within_10_cents']:.2f} |" + ck)
    rb = r.get("robust")
    if rb:
        lines += ["", "**Recordings that are not clean renders** (`python benchmarks/mir.py --only robust`): every audio "
                  "figure above comes from the SoundFont tunesmith renders with, dry and lossless. Here "
                  f"{rb['pieces']} other held-out chorales and folk tunes, on the same five instruments at 70–140 qpm, "
                  "are heard as rendered; rendered with another SoundFont"
                  + (f" (Debian's {rb['soundfont_other']}: other samples of every instrument)" if rb["soundfont_other"]
                     else " (none installed: that row is empty)")
                  + "; in a reverberant room (the render convolved with a decaying noise tail, RT60 1.5 s, mixed at "
                  "0.7 of the dry level); with pink noise 20 dB below the music; and through an MP3 encoder "
                  f"(libsndfile's). {rb['queries']} recorded search queries (2–4-bar snippets altered as the search "
                  "table's, each played on piano, violin, flute or guitar) are heard the same five ways. Note F1 with "
                  "onsets within 50 ms, with tunesmith's refined onsets and with basic-pitch's own:", "",
                  "| recording | note F1 | F1, basic-pitch's onsets | F1 by instrument | tempo within 4% | "
                  "key from chroma | search top-1 | top-10 |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for x in rb["rows"]:
            if x["f1"] is None:
                continue
            lines.append(f"| {x['condition']} | {x['f1']:.3f} | {x['f1_basic_pitch_onsets']:.3f} | "
                         + ", ".join(f"{i} {v:.2f}" for i, v in x["f1_by_instrument"].items())
                         + f" | {x['tempo_within_4pct']:.2f} | {x['key_from_chroma_right']:.2f} | "
                         + (f"{x['search_top1']:.2f} | {x['search_top10']:.2f} |" if x["search_top1"] is not None
                            else " | |"))
    ct = r.get("continue")
    if ct:
        lines += ["", "**Continuing a recording** (`tunesmith generate --model folk --primer tune.wav`; "
                  "`python benchmarks/mir.py --only continue`): the first 8 bars of "
                  f"{ct['pieces']} held-out folk tunes played on flute, violin, piano or guitar at 70–140 qpm, "
                  "transcribed and continued by 8 bars (the notes begun after the primer's last onset); beside the "
                  "same 8 bars given as a MIDI file on the same instrument, and the tunes' own bars 9–16. *Density* is the continuation's notes "
                  "a bar over its primer's as read (a recording read at twice the tempo has half as many notes a bar "
                  "in its primer too); *two notes at an onset* and *ringing* (a note sounding past the next onset) "
                  "are what a single line never has; *in key*: pitches in the scale of the primer's key. *Tonic*: the "
                  "tonic the continuation is held to (its scale and its last note) is the tune's stated one — the "
                  "primer's key as generation reads it (the key the file states, else the tune reader, "
                  "`music.keys.score_key`), and in brackets Krumhansl–Schmuckler on the same notes, as it read a "
                  "primer that states no key before 2026-12-08 (the MIDI file here states the tune's key). "
                  f"{ct['seconds_per_continuation']:.2f} s a continuation (median, after the transcription).", "",
                  "| primer | notes a bar | density | two notes at an onset | ringing | in key | mean leap (semitones) "
                  "| the primer's notes in the output, per onset | tonic right (Krumhansl–Schmuckler) |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for key, label in (("recorded", "a recording, transcribed"),
                           ("score", "the same bars as a MIDI file on the same instrument"),
                           ("real", "the tune's own bars 9–16")):
            x = ct[key]
            kept = f"{x['primer_kept']:.3f}" if "primer_kept" in x else "–"
            tonic = f"{x['tonic_right']:.2f} ({x['tonic_right_krumhansl']:.2f})" if "tonic_right" in x else "–"
            lines.append(f"| {label} | {x['notes_per_bar']:.2f} | {x['density_ratio']:.2f} | {x['chord_onsets']:.3f} | "
                         f"{x['ringing']:.3f} | {x['in_key']:.3f} | {x['mean_leap']:.2f} | {kept} | {tonic} |")
    nt = r.get("notation")
    if nt:
        w = nt["where_read_right"]
        lines += ["", "**Sheet music from a recording** (`tunesmith transcribe tune.wav --out tune.musicxml`; "
                  "`python benchmarks/mir.py --only notation`): "
                  f"{nt['pieces']} held-out folk tunes of one meter, rendered as a recording begins (with their first "
                  "note) at 70–140 qpm on flute, violin, piano or guitar and transcribed. A note is notated right when "
                  "the transcription has its pitch in the same bar (counted from the first note's) at the same place, "
                  "rounded to a sixteenth as notation rounds it; *and its length* when the lengths so rounded agree too "
                  "(F-measure over the score's and the transcription's notes). A tempo read at twice the notated one "
                  "writes every note in other values, and a 2/4 tune read in 4/4 puts every note in another place, so "
                  "the figure is given over all pieces and over those whose tempo (within 4%), bar and first note's "
                  "place in it were read right:", "",
                  "| pieces | n | notes notated right (F) | and their lengths (F) |", "| --- | --- | --- | --- |",
                  f"| all | {nt['pieces']} | {nt['notes_f']:.3f} | {nt['notes_and_lengths_f']:.3f} |",
                  f"| tempo and bars read right ({nt['tempo_and_bars_read_right']:.0%}) | {w['n']} | "
                  f"{w['notes_f']:.3f} | {w['notes_and_lengths_f']:.3f} |"]
    tk = r.get("tunekey")
    if tk:
        lines += ["", "**A tune's key and mode** (`tunesmith analyze tune.abc`; `python benchmarks/mir.py --only tunekey`): "
                  f"the {tk['tunes']} held-out (valid and test) tunes of O'Neill's and Ryan's collections whose ABC K: "
                  "field states a tonic and a mode (major is ionian, minor aeolian), read as a piece of several voices is "
                  "(the profile, with the signature's bonus) and by the tune reader analyze now uses for one line (where "
                  "the line rests — last note, downbeats, longest notes — within the diatonic scale its notes fill, a "
                  "conditional logit fitted on the train split by `scripts/tune_tonic.py`; a church mode named where "
                  "its scale holds the notes better than major or minor by 3% of them). Generation, `harmonize` and "
                  "`generate --primer` read a melody that states no key by the same reader; before 2026-12-08 they read "
                  "it by Krumhansl–Schmuckler (`music.keys.estimate_key`, the last columns):", "",
                  "| tunes | n | tonic right: profile | tune reader | Krumhansl–Schmuckler | tonic and mode right: profile "
                  "| tune reader | Krumhansl–Schmuckler |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for label in ("all", "stated major or minor", "stated in another mode"):
            x = tk.get(label)
            if x:
                ks = [x.get(f"krumhansl_{w}") for w in ("tonic", "tonic_and_mode")]
                ks = [f"{v:.3f}" if v is not None else "–" for v in ks]
                lines.append(f"| {label} | {x['n']} | {x['profile_tonic']:.3f} | {x['tune_tonic']:.3f} | {ks[0]} | "
                             f"{x['profile_tonic_and_mode']:.3f} | {x['tune_tonic_and_mode']:.3f} | {ks[1]} |")
        lines += ["", "Modes stated: " + ", ".join(f"{m} {v}" for m, v in tk["modes_stated"].items() if v)
                  + "; read: " + ", ".join(f"{m} {v}" for m, v in tk["modes_read"].items() if v) + "."]
    sm = r.get("sheetmusic")
    if sm:
        g, c = sm["generated_folk"], sm["folk_corpus"]
        lines += ["", "**Sheet music read back** (`tunesmith generate` writes MusicXML beside MIDI; `python benchmarks/mir.py "
                  "--only sheetmusic`): the share of pieces whose MusicXML, read back, holds the notes of their MIDI "
                  "(onset and length to a 96th of a quarter, pitch). The generators write thirty-seconds; music21's "
                  "quantizer, on its default grid of sixteenths and eighth triplets, moved them and every note after them. "
                  "The grid is now the simplest the piece's notes lie on:", "",
                  "| pieces | n | the grid chosen per piece | music21's default grid (before) |", "| --- | --- | --- | --- |",
                  f"| folk tunes generated with seeds 0–{g['pieces'] - 1} | {g['pieces']} | {g['chosen_grid']:.3f} | "
                  f"{g['default_grid']:.3f} |",
                  f"| folk corpus pieces (train split) | {c['pieces']} | {c['chosen_grid']:.3f} | {c['default_grid']:.3f} |"]
    m = r.get("meter")
    if m:
        lines += ["", f"**Meter of a recording** (`tunesmith transcribe`, `analyze`): {m['pieces']} held-out chorales and "
                  "folk tunes (another draw than the audio table's) rendered as a recording begins — with their first "
                  "note, not with the rest a pickup bar is padded with — at 70–140 qpm on the same five instruments, "
                  "transcribed, and their bar read from the notes (beats tracked by librosa over the notes' onsets; "
                  "bars of 2, 3 or 4 beats scored by metrical templates learned from the corpora's train scores). A "
                  "reading is right when its bar is the score's bar — its length within 4% and a bar line within "
                  "70 ms of the score's; *or double* also counts a bar of twice or half that length whose bar lines "
                  "fall on the score's (2/4 and 4/4 of one tune differ by where an editor drew the lines). Before, "
                  "a transcription had 4/4 from its first sound:", "",
                  "| pieces | n | bar right | bar or double right | bar's length right | before: bar right | before: bar or double | before: bar's length |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for key in ("all", "chorales", "folk"):
            x = m[key]
            lines.append(f"| {key} | {x['n']} | {x['bar']:.3f} | {x['bar_or_double']:.3f} | {x['bar_length']:.3f} | "
                         f"{x['before_bar']:.3f} | {x['before_bar_or_double']:.3f} | {x['before_bar_length']:.3f} |")
        ts = ", ".join(f"{k} {v}" for k, v in m["time_signatures"].items())
        lines += ["", f"Their meters: {ts}. The reading's confidence averages {m['mean_confidence']:.2f}; where it is over "
                  f"0.6 ({m['share_confidence_over_0.6']:.0%} of the pieces) the bar is right for "
                  f"{m['bar_when_confidence_over_0.6']:.3f}. No goal was set for the meter; told the meter "
                  "(`transcribe --meter 3/4`), only where its bars begin is estimated."]
        tsr = m.get("time_signature_right")
        if tsr:
            lines += ["", "The time signature read is the score's for " + ", ".join(
                f"{v['right']:.3f} of {'all ' + str(v['n']) + ' pieces' if k == 'all' else 'the ' + str(v['n']) + ' in ' + k}"
                for k, v in tsr.items()) + " (a bar of three quarters is 3/4 or 6/8 by where its notes begin: "
                "6/8's second beat falls on the bar's fourth eighth)."]
    u = r.get("pickup")
    if u:
        lines += ["", f"**A MIDI file's upbeat** (the reader: `tunesmith info`, `analyze`, `search`, `harmonize` … of a "
                  f".mid): {u['pieces']} held-out pieces of the bundled corpora (one meter throughout, an upbeat of "
                  "whole eighths or none) written as MIDI writes a piece — its first note at time 0, so that an "
                  "upbeat's bar lines fall off the music's — and read back. The upbeat is read from the notes "
                  "(metrical templates, the first and last notes' places) and the music moved to its place in bar 1; "
                  "a file whose first note does not begin a bar, of several meters or played off the grid is left "
                  "as it is. Before, every such file kept its bars from the first note (*right before*):", "",
                  "| pieces | n | with an upbeat | read right | upbeat found | no upbeat, left alone | right before |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        def f(v):
            return "–" if v is None else f"{v:.3f}"

        for key, x in u.items():
            if isinstance(x, dict) and "right" in x and x["n"]:
                lines.append(f"| {key} | {x['n']} | {x['with_upbeat']} | {f(x['right'])} | {f(x['upbeat_found'])} | "
                             f"{f(x['no_upbeat_left_alone'])} | {f(x['right_before'])} |")
        q = u.get("search")
        if q and q["queries"]:
            lines += ["", f"Searching with a 2–4-bar range (`search FILE.mid --bars A-B`) of such files of chorales and "
                      f"folk tunes with an upbeat ({q['queries']} queries, unaltered, against the whole index): the "
                      f"piece first {q['top1_before']:.3f} → {q['top1_after']:.3f}, in the top ten {q['top10_before']:.3f} "
                      f"→ {q['top10_after']:.3f} (before → with the upbeat placed)."]
    s = r.get("search")
    if s:
        load = f", loaded in {s['index_load_seconds']} s" if "index_load_seconds" in s else ""
        lines += ["", f"**Search** over {s['pieces']:,} indexed pieces ({s['windows']:,} windows; index {s['index_mib']} MiB, "
                  f"built from scratch in {s['index_build_seconds']} s from prepared datasets{load}): snippets of 2–4 bars, randomly transposed, "
                  "tempo changed, one ornament or changed rhythm in every bar; the audio queries were rendered with the "
                  "SoundFont and transcribed. A hit counts when it is the piece or a piece with the identical melody "
                  "in any key (many chorales harmonise one tune, in several keys; since 2026-12-08 a transposed copy "
                  "counts too, as the search is transposition-invariant).", "",
                  "| queries | n | top-1 | top-10 | MRR |", "| --- | --- | --- | --- | --- |"]
        for key, label in (("symbolic", "symbolic"), ("audio", "rendered + transcribed"), ("all", "all"),
                           ("all_counting_the_snippet_elsewhere", "all, also counting a piece that holds the unaltered "
                            "snippet note for note (in the misses we read, mostly the same tune in another collection)"),
                           ("begun_off_the_bar_line", "apart from the others: symbolic snippets begun a beat or more "
                            "into a bar, their bar lines read from their first note (as an ABC snippet typed without "
                            "its upbeat)")):
            if key not in s:
                continue
            x = s[key]
            lines.append(f"| {label} | {x['queries']} | {x['top1']:.3f} | {x['top10']:.3f} | {x['mrr']:.3f} |")
        if "ceiling_top1" in s:
            lines += ["", f"The best top-1 a ranking that goes by the notes alone can expect here is "
                      f"**{s['ceiling_top1']:.3f}**: for {s['snippet_in_other_melodies']:.1%} of the queries the "
                      "unaltered snippet stands note for note in pieces of other melodies too (k of them with the "
                      "source: a ranker that cannot tell them apart is right by chance 1/k; the ceiling is the mean "
                      "of 1/k). The search breaks such ties by how likely each piece is to be the snippet's source "
                      "(how often the passage stands in it, over the places a passage of its bars could begin), "
                      "which can do better than chance. By the query's length (notes, repeats merged, before "
                      "ornaments):", "",
                      "| queries | n | top-1 | top-10 | MRR | top-1 / top-10 ceiling | top-1 / top-10 counting the snippet elsewhere |",
                      "| --- | --- | --- | --- | --- | --- | --- |"]
            for label, x in s.get("by_length", {}).items():
                e = x["counting_the_snippet_elsewhere"]
                c10 = f" / {x['ceiling_top10']:.3f}" if "ceiling_top10" in x else ""
                lines.append(f"| {label} | {x['queries']} | {x['top1']:.3f} | {x['top10']:.3f} | {x['mrr']:.3f} | "
                             f"{x['ceiling_top1']:.3f}{c10} | {e['top1']:.3f} / {e['top10']:.3f} |")
        top1 = s["all"]["top1"]
        api = s.get("api_latency_ms") or {}
        api_text = (f"Through the Python API — the first {api['queries']} symbolic queries each written as a MIDI file, "
                    f"`tunesmith.search(path)` reading it, taking its melody and searching — p50 {api['p50']} ms, "
                    f"p95 {api['p95']} ms, with the index loaded by the process's first call "
                    f"({api['first_call_ms'] / 1000:.2f} s). " if api else "")
        lines += ["", f"Latency per query: p50 {s['latency_ms_p50']} ms, p95 {s['latency_ms_p95']} ms (goal ≤ 50 ms). "
                  + api_text
                  + ("The top-1 goal (≥ 0.90) is met." if top1 >= 0.9 else
                     f"The top-1 goal (≥ 0.90) is not met: {top1:.3f}"
                     + (f", against {s['ceiling_top1']:.3f} for a ranking by the notes alone." if "ceiling_top1" in s else ".")
                     + (f" Of the {round((1 - top1) * s['all']['queries'])} top-1 misses, "
                        f"{round((s['all_counting_the_snippet_elsewhere']['top1'] - top1) * s['all']['queries'])} "
                        "put first another piece that holds the unaltered snippet note for note."
                        if "all_counting_the_snippet_elsewhere" in s else ""))
                  + (f" Top-10: {s['all']['top10']:.3f} (goal ≥ 0.98), against {s['ceiling_top10']:.3f} for a "
                     "ranking by the notes alone (a piece among k it cannot tell apart is in its top ten by chance "
                     "min(1, 10/k))." if "ceiling_top10" in s else "")]
        notes = ROOT / "benchmarks" / "mir-notes.md"  # written by hand: what changed, before and after
        if notes.is_file():
            lines += ["", *notes.read_text().rstrip("\n").split("\n")]
    c = r.get("classify")
    if c:
        lines += ["", "**Classification** (`tunesmith classify`; 5-fold cross-validation with folds grouped by piece, "
                  "figures per piece with bootstrap 95% intervals; long pieces are judged by up to 6 excerpts of 16 bars). "
                  "Model: gradient-boosted trees on the `tunesmith-mir-features-v1` vector; simple-feature baseline: a "
                  "logistic regression on mean pitch, pitch spread, voices, notes per bar and average IOI.", "",
                  "| task | pieces | classes | model accuracy | model macro-F1 | simple baseline accuracy | "
                  "majority accuracy | majority macro-F1 |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]

        def ci(x, key):
            return f"{x[key]:.3f} [{x[key + '_ci'][0]:.3f}, {x[key + '_ci'][1]:.3f}]"

        for task in ("composer", "region", "collection"):
            x = c.get(task)
            if x:
                lines.append(f"| {task} | {x['pieces']:,} | {len(x['classes'])} | {ci(x['model'], 'accuracy')} | "
                             f"{ci(x['model'], 'macro_f1')} | {ci(x['simple_baseline'], 'accuracy')} | "
                             f"{ci(x['majority_baseline'], 'accuracy')} | {ci(x['majority_baseline'], 'macro_f1')} |")
        lines += ["", f"Composer classes: {', '.join(f'{k} {v}' for k, v in c['composer']['pieces_per_class'].items())} "
                  "pieces (Bach: the chorales). Region: the Essen collection's region tags with at least 60 songs. "
                  f"Prediction: {c['ms_per_chorale']} ms per chorale (features + trees)."]
        short = {t: c[t] for t in ("composer", "region", "collection") if c.get(t, {}).get("short_excerpts")}
        if short:
            lines += ["", "**Short excerpts**: a phrase of 4 or 8 bars classified alone, as `tunesmith classify` "
                      "classifies a user's file — one crop of each length from each held-out piece longer than that "
                      "(of at least 16 notes; a place drawn from the piece's content hash), in the same folds. The "
                      "classifiers are trained on these crops too (weight 0.5 each, beside the pieces' excerpts); "
                      "\"before\" is the same folds trained on the excerpts alone, as the classifiers were until "
                      "2026-12-08, when four bars of an O'Neill's jig could come out \"essen 1.00\" (the Essen songs "
                      "are the short pieces). ECE with each fold's temperature fitted on the others' pieces.", "",
                      "| task | excerpt | crops | accuracy | macro-F1 | ECE | before: accuracy | before: macro-F1 | "
                      "before: ECE |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
            for task, x in short.items():
                old_short = x.get("without_short_crops", {}).get("short_excerpts", {})
                for b, y in x["short_excerpts"].items():
                    o = old_short.get(b)
                    lines.append(f"| {task} | {b} bars | {y['excerpts']:,} | {ci(y, 'accuracy')} | {ci(y, 'macro_f1')} | "
                                 f"{y['calibration']['ece']:.3f} | " + (
                                     f"{ci(o, 'accuracy')} | {ci(o, 'macro_f1')} | {o['calibration']['ece']:.3f} |"
                                     if o else "– | – | – |"))
            before = {t: x["without_short_crops"]["model"] for t, x in short.items() if "without_short_crops" in x}
            if before:
                lines += ["", "Whole pieces, the same folds trained without the short crops (before): " + "; ".join(
                    f"{t} accuracy {ci(m, 'accuracy')}, macro-F1 {ci(m, 'macro_f1')}" for t, m in before.items()) + "."]
        cal = {t: c[t]["calibration"] for t in ("composer", "region", "collection") if "calibration" in c.get(t, {})}
        if cal:
            lines += ["", "**Calibration** of the classifiers' probabilities: a piece's probabilities are its excerpts' "
                      "averaged log-probabilities divided by a temperature fitted to the cross-validated pieces (each "
                      "classifier carries its own; `reliability.png` beside its card). Expected calibration error (ECE: "
                      "the pieces' mean gap between the first class's probability and how often it is right, 10 bins) "
                      "and negative log-likelihood of the true class, out of fold (each fold scaled by the temperature "
                      "fitted on the others):", "",
                      "| task | temperature | ECE before | ECE after | NLL before (nats) | NLL after | pieces given ≥ 0.9 "
                      "before: share right | after: share right |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]

            def sure(b):  # the pieces given 0.9 or more: how many, and how often right
                n = b["bins"][-1][0]
                return f"{n:,}: {b['bins'][-1][2]:.2f}" if n else "0"

            for task, x in cal.items():
                lines.append(f"| {task} | {x['temperature']:.2f} | {x['before']['ece']:.3f} | {x['after']['ece']:.3f} | "
                             f"{x['before']['nll']:.3f} | {x['after']['nll']:.3f} | {sure(x['before'])} | "
                             f"{sure(x['after'])} |")
    return lines


def recommend_lines(r: dict) -> list[str]:
    """Recommendation figures of benchmarks/recommend.py (issue #16)."""
    st, ev = r["store"], r["evaluation"]
    lines = ["", "## Recommendation (SIMULATED listeners)", "",
             f"From `python benchmarks/recommend.py` ({r['date']}, {r['machine']}). The listening log is "
             f"**simulated** (`tunesmith recommend simulate`, seed {r['seed']}): {st['listeners']:,} listeners, "
             f"{st['events']:,} events over {st['pieces']:,} bundled corpus pieces, in a fresh SQLite store. "
             f"Time-ordered split: the first {ev['split_quantile']:.0%} of events (by time) train; "
             f"{ev['listeners']:,} listeners have liked pieces after it that they had not heard.", "",
             "| model | P@10 | R@10 | NDCG@10 | MAP@10 | coverage | novelty (bits) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for m, x in ev["models"].items():
        if "ndcg@10" in x:
            lines.append(f"| {m} | {x['precision@10']:.4f} | {x['recall@10']:.4f} | {x['ndcg@10']:.4f} | "
                         f"{x['map@10']:.4f} | {x['coverage']:.3f} | {x['novelty']:.2f} |")
    base = max((v["ndcg@10"] for k, v in ev["models"].items() if k != "hybrid" and "ndcg@10" in v), default=0)
    hyb = ev["models"]["hybrid"]["ndcg@10"]
    lines += ["", f"The hybrid's NDCG@10 is {100 * (hyb / base - 1):+.0f}% against the best other model "
              f"(goal ≥ +20%)."]
    c = ev.get("cold_start", {})
    if c.get("listeners"):
        lines.append(f"Cold start ({c['listeners']} listeners held out of the fit, given their first three likes): "
                     f"NDCG@10 hybrid {c['hybrid']['ndcg@10']:.4f}, content only {c['content']['ndcg@10']:.4f}, "
                     f"popularity {c['popularity']['ndcg@10']:.4f}.")
    lines += ["", f"Fit (ALS + content) on all {st['events']:,} events: {r['fit_seconds_all_events']} s "
              f"(`recommend fit`, which also picks the blend on a validation split: "
              f"{r['recommend_fit_command_seconds']} s); `recommend for` p50 {r['recommend_for_ms_p50']} ms, "
              f"p95 {r['recommend_for_ms_p95']} ms (goal ≤ 20 ms). Store: CSV import {st['import_events_per_s']:,} "
              f"events/s; single events, one transaction each, {st['single_event_writes_per_s']:,} events/s."]
    p = r.get("personal")
    if p:
        qp, qu = p["quality_personalised"], p["quality_unpersonalised"]
        oracle = (f" The best any choice from this pool could do is {100 * p['oracle_lift']:+.1f}%."
                  if "oracle_lift" in p else "")
        lines += ["", f"**Personalised generation** (`generate --for`; {p['listeners_judged']} of {p['listeners_simulated']:,} "
                  f"SIMULATED listeners, one pool of {p['pool']} generated 8-bar pieces: "
                  f"{', '.join(f'{v} {k}' for k, v in p['pool_models'].items())}, random keys and temperatures). Each "
                  f"listener gets the {p['keep']} pieces their taste model ranks highest, or {p['keep']} at random. The "
                  "simulator's own taste, which the recommender never sees, judges both: the chance the "
                  f"listener likes a piece they play is {p['preference_personalised']:.3f} against "
                  f"{p['preference_unpersonalised']:.3f}, a lift of {100 * p['lift']:+.1f}% (goal ≥ +30%).{oracle} "
                  "(The simulator places a generated piece in a corpus with the bundled composer and collection "
                  "classifiers, which read the same feature layer as the recommender.)",
                  "", "| pieces | scale consistency | pitch-class entropy | groove consistency | empty-beat rate |",
                  "| --- | --- | --- | --- | --- |",
                  f"| personalised | {qp['scale_consistency']:.4f} | {qp['pitch_class_entropy']:.4f} | "
                  f"{qp['groove_consistency']:.4f} | {qp['empty_beat_rate']:.4f} |",
                  f"| unpersonalised | {qu['scale_consistency']:.4f} | {qu['pitch_class_entropy']:.4f} | "
                  f"{qu['groove_consistency']:.4f} | {qu['empty_beat_rate']:.4f} |"]
    return lines


def hardening_lines(r: dict) -> list[str]:
    """Hardening (benchmarks/hardening.py, issue #19)."""
    lines = ["", "## Hardening: odd and hostile input, faults, concurrency", "",
             f"From `python benchmarks/hardening.py` ({r['date']}, {r['machine']}); every command in its own process.",
             "", "| figure | measured | goal |", "| --- | --- | --- |"]
    c = r.get("crafted")
    if c:
        lines += [f"| crafted cases × commands that read a file (info, render, data prepare, generate --primer, "
                  f"harmonize, infill, evaluate, audio play-score) | {c['cases']} × 8 = {c['runs']} runs | – |",
                  f"| tracebacks | **{c['tracebacks']}** | 0 |",
                  f"| hangs past {LIMIT_HANG} s | **{c['hangs']}** | 0 |",
                  f"| exit status other than 0 or 2 / errors of more than one line | {c['bad_exit']} / "
                  f"{c['errors_not_one_line']} | 0 / 0 |",
                  f"| refusals where the file must be refused | {c['refused_as_expected']} of {c['expected_refusals']} "
                  "| all |",
                  f"| peak memory, worst case | **{c['peak_rss_mb']:.0f} MB** ({c['peak_case']}) | ≤ 1 GB |",
                  f"| slowest run | {c['slowest_s']:.1f} s | – |"]
    f = r.get("fuzz")
    if f:
        lines.append(f"| coverage-guided fuzzing of the readers (atheris, `make fuzz`) | {f['runs']:,} inputs in "
                     f"{f['seconds']} s, **{f['findings']} findings** | 0 |")
    k = r.get("kill")
    if k:
        lines.append(f"| kill -9 points tried (data prepare, generate, evaluate, audio dataset), runs differing from "
                     f"an uninterrupted one after a rerun | {k['kill_points']} points, **{k['runs_differing']} "
                     "differing** | 0 |")
    cc = r.get("concurrent")
    if cc:
        lines.append(f"| two `data prepare` of one dataset at once | {cc['trials']} trials, **{cc['errors']} errors** "
                     "| 0 |")
    rm = r.get("render")
    if rm:
        lines += ["", "`tunesmith render` of 8 tracks (a note per beat each, 120 qpm), peak resident memory of "
                  "the process; before: the whole-array rendering it replaced (pretty_midi's fluidsynth, one "
                  "float64 array per instrument):", "",
                  "| minutes of music | peak memory | seconds | before: peak memory | before: seconds |",
                  "| --- | --- | --- | --- | --- |"]
        for m, e in rm.items():
            before = (f"{e['before_rss_mb']:.0f} MB | {e['before_seconds']:.1f}" if e.get("before_rss_mb")
                      else "– | –")
            lines.append(f"| {m} | **{e['rss_mb']:.0f} MB** | {e['seconds']:.1f} | {before} |")
    return lines


LIMIT_HANG = 300


def studio_lines(r: dict) -> list[str]:
    """The studio under load (benchmarks/studio_load.py, issue #17)."""
    return ["", "## The studio under load", "",
            f"From `python benchmarks/studio_load.py` ({r['date']}, {r['machine']}): a real `tunesmith studio` on "
            f"loopback (SQLite store, 2 worker processes) and, in one asyncio client process on the same machine, "
            f"{r['listeners']} listeners browsing (discover page, piece page, piece JSON) and rating while "
            f"{r['generators']} others each generate an 8-bar folk tune"
            + (f" and {r['finders']} more each look for three tunes (\"Find a tune\": a few bars typed as ABC, "
               "searched over the bundled corpora)" if r.get("finders") else "")
            + f". {r['requests']:,} page requests in {r['wall_seconds']} s.", "",
            "| figure | measured |", "| --- | --- |",
            f"| page latency p50 / p95 / max | {r['latency_ms_p50']} / **{r['latency_ms_p95']}** / "
            f"{r['latency_ms_max']} ms |",
            f"| job wait (queued → started), median / max | {r['job_wait_s_median']} / {r['job_wait_s_max']} s |",
            f"| job turnaround (submit → done), median / max | {r['job_turnaround_s_median']} / "
            f"{r['job_turnaround_s_max']} s |",
            *([f"| find a tune: turnaround (submit → tunes listed), median / max | {r['find_turnaround_s_median']} / "
               f"{r['find_turnaround_s_max']} s over {r['finds']} searches; the first search, which builds the "
               f"index, {r['find_first_s']} s |",
               f"| find a tune: first hits | {'; '.join(r['find_top_hits'])} |"] if r.get("finds") else []),
            f"| errors | **{r['errors']}** |",
            f"| ratings sent / stored / lost | {r['ratings_sent']} / {r['ratings_stored']} / **{r['ratings_lost']}** |",
            "", "The 2 cores serve the pages, run both workers' generation (niced) and the load client at once; "
            "unloaded, a page takes 5–10 ms."]


def quality_lines(r: dict) -> list[str]:
    """The fair-yardstick table of benchmarks/quality.py (issue #12)."""
    from tunesmith.evaluate.theory import CHECKS

    ents = r["entries"]
    lines = ["", "## Musical quality on the fair yardstick", "",
             f"From `python benchmarks/quality.py` ({r['date']}, {r['machine']}): {r['n']} pieces × {r['bars']} bars per "
             f"model (seeds 0…{r['n'] - 1}; the pieces row says how many each entry has) against as many crops of {r['bars']} bars of held-out real pieces (valid "
             "and test splits; crops start on a bar line, meters in the generated set's proportions). "
             "Harmonizations: the soprano of every held-out chorale harmonized, then as many crops of the harmonizations taken as of the real pieces, in the same way (before 2026-11-27: one random crop per harmonization, 62 in all, whose AUC swung between 0.78 and 0.96 with the crop draw). AUC: cross-validated ROC AUC "
             "of a classifier telling the set from the real crops [bootstrap 95% CI] (0.5: indistinguishable); 'real vs "
             "real' is the same test between two halves of the real crops, split by piece. Voice leading per 100 beats "
             "over the four-voice pieces; chords: share of four-voice beats that form a triad or seventh chord; "
             "OA: overlapping area with the real crops; copies: pieces sharing ≥ 2 bars and ≥ 8 onsets with a "
             "training piece. Rows made by an earlier model stay until re-measured; their generation times come from another day and are not comparable (this shared machine's speed varies several-fold from day to day)."]
    for corpus, title in (("bach-chorales", "Chorales"), ("folk", "Folk")):
        names = sorted((n for n, e in ents.items() if (e["model"] == "folk") == (corpus == "folk")),
                       key=lambda n: ("previous default" in n, "harmonized" in n, n))
        if not names:
            continue
        # the reference and real-vs-real columns come from an entry measured on today's crops
        first = next((ents[n] for n in names if ents[n].get("reference", {}).get("starts") == "full bars"), ents[names[0]])
        cols = names
        old_crops = [n for n in names if ents[n].get("reference", {}).get("starts") != "full bars"]
        heads = [f"{n} †" if n in old_crops else n for n in cols]
        lines += ["", f"### {title}", "", "| figure | " + " | ".join(heads) + " | real crops | real vs real |",
                  "| --- |" + " ---: |" * (len(cols) + 2)]

        def row(label, fn, ref=None, half=None, cols=cols):
            vals = []
            for n in cols:
                try:
                    vals.append(fn(ents[n]))
                except (KeyError, TypeError):
                    vals.append("–")
            return f"| {label} | " + " | ".join(vals) + f" | {ref if ref is not None else '–'} | {half if half is not None else '–'} |"

        ts = lambda e: f"**{_f(e['two_sample']['auc'])}** [{_f(e['two_sample']['auc_ci95'][0], 2)}, {_f(e['two_sample']['auc_ci95'][1], 2)}]"  # noqa: E731
        b = first["two_sample_baseline"]
        lines.append(row("two-sample ROC AUC [95% CI]", ts, None, f"{_f(b['auc'])} [{_f(b['auc_ci95'][0], 2)}, {_f(b['auc_ci95'][1], 2)}]"))
        lines.append(row("two-sample accuracy", lambda e: _f(e["two_sample"]["accuracy"]), None, _f(b["accuracy"])))
        if any("two_sample_mean" in ents[n] for n in cols):
            lines.append(row("AUC / accuracy, mean of draws of pieces (seeds 0, 200, 400 …)",
                             lambda e: f"**{_f(e['two_sample_mean']['auc'])}** / **{_f(e['two_sample_mean']['accuracy'])}** "
                                       f"({e['two_sample_mean']['draws']} draws: "
                                       + ", ".join(f"{_f(d['accuracy'])}" for d in e["draws"]) + ")"))
        fr, fh = first["figures_reference"], first["figures_baseline_half"]
        lines.append(row("pieces (four-voice)", lambda e: f"{e['figures']['pieces']} ({e['figures']['four_voice_pieces']})",
                         f"{fr['pieces']} ({fr['four_voice_pieces']})", f"{fh['pieces']} ({fh['four_voice_pieces']})"))
        if corpus == "bach-chorales":
            lines.append(row("triad/seventh beats", lambda e: _f(e["figures"]["chord_rate"]), _f(fr["chord_rate"]), _f(fh["chord_rate"])))
            for k in CHECKS:
                lines.append(row(f"{k.replace('_', ' ')} /100 beats", lambda e, k=k: _f(e["figures"][k], 2),
                                 _f(fr[k], 2), _f(fh[k], 2)))
        for k in ("pitch_in_scale_rate", "scale_consistency"):
            lines.append(row(f"OA {k.replace('_', ' ')}", lambda e, k=k: _f(e["overlap"][k]["generated"]), None,
                             _f(first["overlap"][k]["baseline"])))
        lines.append(row("copies of training pieces (longest run, bars)",
                         lambda e: f"{e['originality']['flagged']} ({_f(e['originality']['longest_run_bars_max'], 1)})"))
        lines.append(row("rule relaxations per piece", lambda e: _f(e["generation"]["relaxations_per_piece"], 2)
                         if "rules" in e["controls"] or "harmonize" in e["controls"] else "–"))
        lines.append(row("generation s per minute of music", lambda e: _f(e["generation"]["seconds_per_minute_of_music"], 2)))
        if old_crops:
            lines += ["", "† measured before 2026-11-27, against real crops that could begin on a piece's pickup bar "
                      "(mostly silence, then the upbeat) although a generated piece is compared from its first bar "
                      "line; today's crops start on a full bar. Not re-measured since."]
        lines += ["", "Features that give each set away most (a classifier on one feature alone, AUC):", ""]
        for n in cols:
            top = ", ".join(f"{x['feature'].replace('_', ' ')} {_f(x['auc'], 2)}" for x in ents[n]["per_feature"][:4])
            lines.append(f"- {n}: {top}")
        notes = ROOT / "benchmarks" / "quality-notes.md"  # written by hand: candidates measured, what was shipped
        if corpus == "bach-chorales" and notes.is_file():
            lines += ["", *notes.read_text().rstrip("\n").split("\n")]
        pos = [n for n in cols if ents[n].get("by_crop_position")]
        if pos:
            lines += ["", "Where the real crops are taken: the same generated pieces against real openings "
                      "(each held-out piece's first bars) and endings (its last bars) instead of crops at any "
                      "bar — a generated piece begins and ends as a whole piece does:", ""]
            for n in pos:
                parts = []
                for where, r in ents[n]["by_crop_position"].items():
                    top = ", ".join(f"{x['feature'].replace('_', ' ')} {_f(x['auc'], 2)}" for x in r["per_feature"][:2])
                    parts.append(f"{where}s ({r['crops']} crops) AUC {_f(r['auc'], 3)}, accuracy {_f(r['accuracy'], 3)} "
                                 f"(most telling: {top})")
                lines.append(f"- {n}: " + "; ".join(parts))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--md-only", action="store_true", help="rebuild BENCHMARKS.md from the saved results")
    ap.add_argument("--only", choices=("prepare", "render", "generate", "train"),
                    help="re-measure one step and keep the saved figures of the others")
    a = ap.parse_args()
    if a.md_only:
        write_md(json.loads((ROOT / "benchmarks" / "results.json").read_text()), ROOT / "BENCHMARKS.md")
        return
    os.environ.setdefault("TUNESMITH_HOME", tempfile.mkdtemp(prefix="tunesmith-bench-"))
    res = {"machine": machine(), "date": datetime.date.today().isoformat()}
    steps = {"prepare": lambda: bench_prepare(a.quick), "render": bench_render, "generate": bench_generate,
             "train": bench_train}
    if a.only:  # the other steps' figures (and the file's date) stay as the last full run wrote them
        res = json.loads((ROOT / "benchmarks" / "results.json").read_text())
        steps = {a.only: steps[a.only]}
    elif a.quick:  # keep the cold-preparation figures of the last full run
        old = json.loads((ROOT / "benchmarks" / "results.json").read_text())
        res.update({k: v for k, v in old.items() if k.startswith(("cold_", "warm_", "pieces_all", "naive_estimate"))})
    for fn in steps.values():
        r = fn()
        for k, v in r.items():
            print(f"{k:48} {v:,.3f}" if isinstance(v, float) else f"{k:48} {v}")
        res.update(r)
    (ROOT / "benchmarks" / "results.json").write_text(json.dumps(res, indent=1))
    write_md(res, ROOT / "BENCHMARKS.md")
    print(f"wrote {ROOT / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
