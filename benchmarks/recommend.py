"""Recommendation figures → benchmarks/results-recommend.json (BENCHMARKS.md via run.py).

    python benchmarks/recommend.py [--listeners 10000] [--events-per-listener 100] [--seed 0]

On a SIMULATED log (tunesmith.recommend.simulate) over every bundled corpus piece, in a
fresh SQLite store under a temporary folder (the user's store is not touched):

- store: add the catalogue, import the simulated CSV (events/s), log single events each
  in its own transaction (events/s);
- the offline evaluation (time-ordered split) of the hybrid and its baselines, cold start;
- fit time of ALS + content on every event; ``recommend for`` latency (p50/p95 over 300
  listeners, reading their events from the store each time);
- personalised generation (:func:`bench_personal`): preference lift for simulated
  listeners, with quality figures of the personalised and unpersonalised pieces.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results-recommend.json"


def bench_personal(n_listeners: int = 2000, n_judged: int = 300, n_pool: int = 24, keep: int = 2,
                   seed: int = 0) -> dict:
    """Preference lift of personalised generation for SIMULATED listeners: one pool of
    generated candidates (bundled chorale and folk models, varied keys and temperatures);
    each listener gets the ``keep`` their taste model ranks highest (personalised) or
    ``keep`` at random (unpersonalised); both are judged by the simulator's own taste
    (the chance the listener likes a piece they play), which the recommender never sees.
    Quality figures of both sets sit beside."""
    from tunesmith.evaluate.metrics import all_metrics
    from tunesmith.recommend.catalogue import DEFAULT_CORPORA, add_corpora
    from tunesmith.recommend.personal import candidate_scores, generate_candidates
    from tunesmith.recommend.service import Service, fit
    from tunesmith.recommend.simulate import (
        affinity,
        attrs_of,
        like_probability,
        simulate_store,
        write_simulation,
    )
    from tunesmith.store import db
    from tunesmith.store.events import import_events

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/p.db"
        db.upgrade(url)
        add_corpora(list(DEFAULT_CORPORA), url=url, progress=False)
        events, taste, world = simulate_store(url, n_listeners, seed=seed, progress=False)
        write_simulation(Path(tmp) / "sim", events, taste, world, seed=seed)
        import_events(Path(tmp) / "sim" / "events.csv", url=url, source=f"simulated:seed={seed}")
        fit(url, Path(tmp) / "model", progress=False)
        svc = Service(url, Path(tmp) / "model")
        pool = generate_candidates(["bach-chorales", "folk"], n_pool, bars=8, seed=seed, progress=False)
        px = np.array([c["features"] for c in pool])
        true_pref = like_probability(affinity(taste, attrs_of(world, px), 0.0))  # (listeners, pool)
        rng = np.random.default_rng(seed)
        pers, unpers, oracle, pers_idx, unpers_idx = [], [], [], [], []
        for u in rng.choice(n_listeners, n_judged, replace=False):
            name = f"sim-{seed}-{int(u):05d}"
            sc = candidate_scores(svc, svc.listener_row(name), px)
            top = np.argsort(-sc)[:keep]
            rnd = rng.choice(n_pool, keep, replace=False)
            pers.append(true_pref[u, top].mean())
            oracle.append(np.sort(true_pref[u])[-keep:].mean())
            unpers.append(true_pref[u, rnd].mean())
            pers_idx += list(top)
            unpers_idx += list(rnd)
        met = [all_metrics(c["generated"].score) for c in pool]

        def quality(idx):
            return {k: round(float(np.nanmean([met[i][k] for i in idx])), 4)
                    for k in ("scale_consistency", "pitch_class_entropy", "groove_consistency", "empty_beat_rate")}

        p, q = float(np.mean(pers)), float(np.mean(unpers))
        return {"listeners_simulated": n_listeners, "listeners_judged": n_judged, "pool": n_pool, "keep": keep,
                "preference_personalised": round(p, 4), "preference_unpersonalised": round(q, 4),
                "lift": round(p / q - 1, 4),
                "oracle_lift": round(float(np.mean(oracle)) / q - 1, 4),  # the best any choice from this pool gets
                "quality_personalised": quality(pers_idx), "quality_unpersonalised": quality(unpers_idx),
                "pool_models": {m: sum(c["model"] == m for c in pool) for m in ("bach-chorales", "folk")},
                "seconds": round(time.perf_counter() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--listeners", type=int, default=10000)
    ap.add_argument("--events-per-listener", type=float, default=100.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="store,personal", help="store (store, evaluation, speed), personal (lift)")
    a = ap.parse_args(argv)
    if a.only == "personal":
        res = json.loads(OUT.read_text()) if OUT.exists() else {}
        res["personal"] = bench_personal(seed=a.seed)
        OUT.write_text(json.dumps(res, indent=1) + "\n")
        print(json.dumps(res["personal"]))
        return 0

    from tunesmith.recommend.catalogue import DEFAULT_CORPORA, add_corpora, content_vectors
    from tunesmith.recommend.evaluate import evaluate
    from tunesmith.recommend.model import Recommender
    from tunesmith.recommend.service import (
        Service,
        fit,
        load_catalogue,
        load_events,
        log_interactions,
    )
    from tunesmith.recommend.simulate import simulate_store, write_simulation
    from tunesmith.store import db
    from tunesmith.store.events import import_events, log_event

    res = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
           "date": date.today().isoformat(), "simulated": True, "seed": a.seed}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        db.upgrade(url)
        t0 = time.perf_counter()
        add_corpora(list(DEFAULT_CORPORA), url=url, progress=False)
        res["catalogue_seconds"] = round(time.perf_counter() - t0, 1)
        cat = load_catalogue(url)
        x = content_vectors(cat.hashes, cat.paths, progress=False)
        t0 = time.perf_counter()
        events, taste, world = simulate_store(url, a.listeners, events_per_listener=a.events_per_listener,
                                              seed=a.seed, progress=False)
        res["simulate_seconds"] = round(time.perf_counter() - t0, 1)
        write_simulation(Path(tmp) / "sim", events, taste, world, seed=a.seed)
        t0 = time.perf_counter()
        rep = import_events(Path(tmp) / "sim" / "events.csv", url=url, source=f"simulated:seed={a.seed}")
        dt = time.perf_counter() - t0
        res["store"] = {"pieces": len(cat.keys), "listeners": a.listeners, "events": rep.events,
                        "import_seconds": round(dt, 1), "import_events_per_s": round(rep.events / dt)}
        print("store", res["store"], flush=True)
        t0 = time.perf_counter()
        n_single = 500
        for i in range(n_single):
            with db.session(url, upgrade_first=False) as s:
                log_event(s, "bench-writer", cat.keys[i % len(cat.keys)], "play", value=30.0)
        res["store"]["single_event_writes_per_s"] = round(n_single / (time.perf_counter() - t0))

        ev = evaluate(url, progress=False)
        res["evaluation"] = ev
        print("evaluation", json.dumps({m: v["ndcg@10"] for m, v in ev["models"].items()}), flush=True)

        log = load_events(url)
        idx = {int(p): i for i, p in enumerate(cat.ids)}
        inter = log_interactions(log, idx, len(cat.keys))
        t0 = time.perf_counter()
        Recommender.fit(cat.keys, x, inter)
        res["fit_seconds_all_events"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        fit(url, Path(tmp) / "model", progress=False)
        res["recommend_fit_command_seconds"] = round(time.perf_counter() - t0, 1)
        svc = Service(url, Path(tmp) / "model")
        rng = np.random.default_rng(a.seed)
        lat = []
        for u in rng.choice(len(log.names), 300, replace=False):
            t1 = time.perf_counter()
            svc.for_listener(log.names[int(u)], 10)
            lat.append(1000 * (time.perf_counter() - t1))
        res["recommend_for_ms_p50"] = round(float(np.percentile(lat, 50)), 1)
        res["recommend_for_ms_p95"] = round(float(np.percentile(lat, 95)), 1)
    if "personal" in a.only:
        res["personal"] = bench_personal(seed=a.seed)
    OUT.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k != "evaluation"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
