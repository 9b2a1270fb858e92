"""Evaluation-suite figures: metric speed, and the suite on 200 samples of each bundled model.

    python benchmarks/eval_suite.py [--n 200] [--skip-generation]

Writes benchmarks/results-eval.json (BENCHMARKS.md is rebuilt by benchmarks/run.py).
Samples go to runs/bench-samples/<model>/ (regenerated unless --skip-generation).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "runs" / "bench-samples"


def bench_metric_speed(n: int = 1000) -> dict:
    from tunesmith.evaluate.compare import embedding_extras
    from tunesmith.evaluate.metrics import all_metrics, extract_notes
    from tunesmith.evaluate.theory import voice_leading
    from tunesmith.music.dataset import open_dataset

    pieces = []
    for name in ("bach-chorales", "folk"):
        ds = open_dataset(name, progress=False)
        pieces += [sc for _, (_, sc) in zip(range(n), ds.scores())]
    pieces = pieces[:n]
    t0 = time.perf_counter()
    for s in pieces:
        nt = extract_notes(s)
        all_metrics(nt)
        embedding_extras(nt)
        voice_leading(nt)
    dt = time.perf_counter() - t0
    return {"metrics_pieces": len(pieces), "metrics_seconds": dt, "metrics_ms_per_piece": 1000 * dt / len(pieces)}


def generate(model: str, n: int, bars: int, out: Path, **kw) -> float:
    from tunesmith.generate.api import load_model
    from tunesmith.music.io import save_midi

    out.mkdir(parents=True, exist_ok=True)
    m = load_model(model)
    for old in out.glob("*.mid"):
        old.unlink()
    t0 = time.perf_counter()
    if hasattr(m, "generate_batch"):  # chorale-cnn: Gibbs chains run 50 at a time
        pieces = [g.score for g in m.generate_batch(n, bars=bars, seed=0, **kw)]
    else:
        pieces = [m.generate(bars=bars, seed=i, **kw).score for i in range(n)]
    secs = time.perf_counter() - t0
    for i, s in enumerate(pieces):
        save_midi(s, out / f"{model}-{i:03d}.mid")
    return secs


def evaluate(gen: Path, reference: str, out: Path, model: str | None = None) -> dict:
    from tunesmith.evaluate.suite import run_suite

    # the previous yardstick (whole reference corpus, no crops), kept so that the history in
    # BENCHMARKS.md stays reproducible; benchmarks/quality.py measures on the fair one
    res = run_suite(str(gen), reference, out=out, model=model, progress=False, reference_split="all", fair=False)
    feats = res["features"]
    oa = [v["overlap"] for v in feats.values() if v["overlap"] == v["overlap"]]
    kl = [v["kl"] for v in feats.values() if v["kl"] == v["kl"] and v["kl"] != float("inf")]
    o = res.get("originality", {})
    row = {"pieces": res["generated"]["pieces"], "reference_pieces": res["reference"]["pieces"],
           "mean_overlap": sum(oa) / len(oa), "mean_kl": sum(kl) / len(kl),
           "overlap": {k: v["overlap"] for k, v in feats.items()}, "kl": {k: v["kl"] for k, v in feats.items()},
           "frechet": res["frechet"]["value"], "frechet_ci95": res["frechet"]["ci95"],
           "two_sample_accuracy": res["two_sample_test"]["accuracy"],
           "flagged": o.get("flagged"), "longest_run_bars_median": o.get("longest_run_bars_median"),
           "ngram8_share": (o.get("ngram_share_mean") or {}).get("8"),
           "heldout_flagged": (o.get("held_out_baseline") or {}).get("flagged"),
           "heldout_pieces": (o.get("held_out_baseline") or {}).get("pieces"),
           "theory": res["theory"]["generated"], "theory_reference": res["theory"]["reference"],
           "seconds": res["seconds"]}
    if "nll" in res:
        row["nll_per_token"] = res["nll"]["nll_per_token"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--skip-generation", action="store_true")
    ap.add_argument("--only", default="bach-chorales,folk,chorale-gan,chorale-cnn")
    a = ap.parse_args()
    path = ROOT / "benchmarks" / "results-eval.json"
    res = json.loads(path.read_text()) if path.is_file() else {}
    res.update(bench_metric_speed())
    print(f"metrics: {res['metrics_pieces']} pieces in {res['metrics_seconds']:.2f} s")
    plan = {"bach-chorales": ("bach-chorales", 8, {}), "folk": ("folk", 8, {}),
            "chorale-gan": ("bach-chorales", 8, {}), "chorale-cnn": ("bach-chorales", 8, {"iterations": 96})}
    for model in a.only.split(","):
        reference, bars, kw = plan[model]
        gen = SAMPLES / model
        n = a.n
        if not a.skip_generation:
            secs = generate(model, n, bars, gen, **kw)
            res[f"{model}_generation_seconds"] = secs
            print(f"{model}: generated {n} pieces of {bars} bars in {secs:.0f} s")
        row = evaluate(gen, reference, ROOT / "runs" / f"bench-eval-{model}",
                       model=model if model in ("bach-chorales", "folk") else None)
        row["bars"] = bars
        res[f"eval_{model}"] = row
        print(f"{model}: mean OA {row['mean_overlap']:.3f}, FD {row['frechet']:.2f}, two-sample acc "
              f"{row['two_sample_accuracy']:.3f}, flagged {row['flagged']}")
        path.write_text(json.dumps(res, indent=1))
    if "chorale-cnn" in a.only:
        res["coconet_nll"] = coconet_nll()
        path.write_text(json.dumps(res, indent=1))
        res["harmonize"] = harmonize_test_sopranos()
        path.write_text(json.dumps(res, indent=1))


def coconet_nll(n_crops: int = 32, crop: int = 32, seed: int = 0) -> dict:
    """chorale-cnn's likelihood on the test split of our 16th-note Bach chorales: exact
    −log p of each crop under one random ordering of its cells (chain rule, one forward
    pass per cell), reported per cell and per 16th-note frame (four voices)."""
    import numpy as np
    import torch

    from tunesmith.generate.api import load_model
    from tunesmith.models.rollnets import ordered_nll
    from tunesmith.music.dataset import open_dataset
    from tunesmith.train.roll_trainer import crop_batch, voice_corpus

    data = voice_corpus(open_dataset("bach-chorales", progress=False), progress=False)
    x = crop_batch(data["test"], crop, n_crops, np.random.default_rng(seed), transpose=False)
    m = load_model("chorale-cnn")
    t0 = time.perf_counter()
    with torch.no_grad():
        nll = ordered_nll(m.model, x, seed=seed)
    cells = 4 * crop
    return {"crops": n_crops, "crop_steps": crop, "nll_per_cell": float(nll.mean() / cells),
            "nll_per_frame": float(nll.mean() / crop), "seconds": time.perf_counter() - t0,
            "test_pieces": len(data["test"])}


def harmonize_test_sopranos() -> dict:
    """chorale-cnn harmonizes the soprano of every test-split chorale; the suite compares
    the harmonizations with the real test chorales."""
    from tunesmith.generate.api import load_model
    from tunesmith.music.dataset import open_dataset
    from tunesmith.music.io import save_midi
    from tunesmith.represent.voices import voice_tracks

    ds = open_dataset("bach-chorales", progress=False)
    m = load_model("chorale-cnn")
    out = SAMPLES / "chorale-cnn-harmonize"
    real = SAMPLES / "bach-test"
    out.mkdir(parents=True, exist_ok=True)
    real.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    n = 0
    for e, s in ds.scores("test"):
        order = voice_tracks(s.music)
        if order is None:
            continue
        mel = s.copy()
        keep = mel.music.tracks[order[0]]
        mel.music.tracks.clear()
        mel.music.tracks.append(keep)
        g = m.harmonize(mel, seed=n)
        save_midi(g.score, out / f"{e['id']}.mid")
        save_midi(s, real / f"{e['id']}.mid")
        n += 1
    secs = time.perf_counter() - t0
    row = evaluate(out, str(real), ROOT / "runs" / "bench-eval-harmonize")
    row.update(harmonized=n, seconds_harmonizing=secs)
    print(f"harmonized {n} test sopranos in {secs:.0f} s: mean OA {row['mean_overlap']:.3f}, "
          f"two-sample acc {row['two_sample_accuracy']:.3f}")
    return row


if __name__ == "__main__":
    main()
