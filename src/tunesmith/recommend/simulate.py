"""A listener simulator: SIMULATED listening logs over the real catalogue.

No public listening log can be fetched here, so the recommender is developed and measured
on simulated listeners, always labelled as such (the events' ``source`` is
``simulated:seed=S``, and every report says so). Each listener has a latent taste over
real content attributes of the pieces, read from their MIR features:

- the corpus a piece belongs to (Bach chorales, Essen, O'Neill's, Ryan's, Palestrina,
  Monteverdi, Beethoven, Mozart) — log-weights from a Dirichlet(0.4), so most listeners
  love one or two styles; for a piece outside the catalogue (a generated one) the
  corpus comes from the bundled collection and composer classifiers;
- major versus minor, triple versus duple meter, compound meter, note density (notes per
  bar) and register (mean pitch): one Gaussian preference each.

A listener's affinity for a piece is taste · attributes + the piece's own appeal
(shared by everyone) + per-listener noise. Listeners pick what to play with probability
∝ exp(affinity) × popularity^0.8 (a Zipf popularity skew); how long they listen follows
the affinity; plays lead to completes, skips, likes and sometimes ratings, at times spread
over 90 days (each listener joins in the first month and comes back until the
end). The output is the events CSV of ``tunesmith db import-events``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from tunesmith.errors import OptionError
from tunesmith.fileio import atomic_write_text
from tunesmith.mir.features import MAJOR, MEAN_PITCH, METER, METERS, NOTES_PER_BAR, VOICES

CORPORA = ("bach-chorales", "essen", "oneills-1850", "ryans-mammoth", "palestrina", "monteverdi", "beethoven",
           "mozart")
ATTRS = (*CORPORA, "major", "triple", "compound", "density", "register")
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass
class World:
    """What the simulator knows of the catalogue: attributes per piece, appeal, popularity."""

    keys: list[str]
    attrs: np.ndarray  # (items, len(ATTRS))
    appeal: np.ndarray  # (items,)
    popularity: np.ndarray  # (items,) prior weights (sum 1)
    seconds: np.ndarray  # (items,)
    density_stats: tuple[float, float]
    register_stats: tuple[float, float]


def _raw_attrs(x: np.ndarray) -> np.ndarray:
    """major, triple, compound, log notes per bar, mean pitch (octaves) of feature rows."""
    x = np.atleast_2d(x)
    meters = x[:, METER:METER + len(METERS)]
    triple = meters[:, [METERS.index(m) for m in ("3/4", "3/8", "3/2")]].sum(1)
    compound = meters[:, [METERS.index(m) for m in ("6/8", "9/8", "12/8")]].sum(1)
    density = np.log1p(np.nan_to_num(x[:, NOTES_PER_BAR], nan=8.0))
    return np.stack([np.nan_to_num(x[:, MAJOR]), triple, compound, density, np.nan_to_num(x[:, MEAN_PITCH], nan=5.5)], 1)


def build_world(keys: list[str], corpora: list[str | None], features: np.ndarray, seconds: np.ndarray,
                seed: int) -> World:
    rng = np.random.default_rng(seed + 1)
    n = len(keys)
    onehot = np.zeros((n, len(CORPORA)))
    for i, c in enumerate(corpora):
        if c in CORPORA:
            onehot[i, CORPORA.index(c)] = 1.0
    raw = _raw_attrs(features)
    dstat = (float(raw[:, 3].mean()), float(raw[:, 3].std() or 1))
    rstat = (float(raw[:, 4].mean()), float(raw[:, 4].std() or 1))
    attrs = np.hstack([onehot, raw[:, :3], ((raw[:, 3] - dstat[0]) / dstat[1])[:, None],
                       ((raw[:, 4] - rstat[0]) / rstat[1])[:, None]])
    rank = rng.permutation(n) + 1
    pop = rank ** -0.8
    return World(list(keys), attrs, rng.normal(0, 0.3, n), pop / pop.sum(), np.nan_to_num(seconds, nan=60.0),
                 dstat, rstat)


def corpus_probabilities(x: np.ndarray) -> np.ndarray:
    """How much a piece outside the catalogue belongs to each of :data:`CORPORA`, from the
    bundled classifiers (independent of the recommender's content space): a single line is
    a folk tune, split by the collection classifier; anything else is split by the composer
    classifier (Bach → the chorales)."""
    from tunesmith.mir.classify import load_classifier

    x = np.atleast_2d(x)
    out = np.zeros((len(x), len(CORPORA)))
    coll, comp = load_classifier("collection"), load_classifier("composer")
    composer_corpus = {"Bach": "bach-chorales", "Palestrina": "palestrina", "Monteverdi": "monteverdi",
                       "Beethoven": "beethoven", "Mozart": "mozart"}
    single = np.nan_to_num(x[:, VOICES], nan=1.0) * 4 <= 1.5  # the register block stores voices / 4
    for rows, clf, names in ((single, coll, coll.classes), (~single, comp, [composer_corpus[c] for c in comp.classes])):
        if rows.any():
            p = np.exp(clf.log_proba(x[rows]))
            for j, name in enumerate(names):
                out[rows, CORPORA.index(name)] = p[:, j]
    return out


def attrs_of(world: World, x: np.ndarray) -> np.ndarray:
    """Attributes of pieces outside the catalogue (e.g. generated): the corpus from
    :func:`corpus_probabilities`, the rest from their features as for catalogue pieces."""
    x = np.atleast_2d(x)
    raw = _raw_attrs(x)
    return np.hstack([corpus_probabilities(x), raw[:, :3],
                      ((raw[:, 3] - world.density_stats[0]) / world.density_stats[1])[:, None],
                      ((raw[:, 4] - world.register_stats[0]) / world.register_stats[1])[:, None]])


def tastes(n_listeners: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    corp = np.log(rng.dirichlet(np.full(len(CORPORA), 0.4), n_listeners) + 1e-3)
    corp = corp - corp.mean(1, keepdims=True)
    rest = rng.normal(0, [0.8, 0.6, 0.6, 0.5, 0.4], (n_listeners, 5))
    return np.hstack([0.6 * corp, rest])


def affinity(taste: np.ndarray, attrs: np.ndarray, appeal: np.ndarray | float = 0.0) -> np.ndarray:
    """Expected affinity (no noise) of listeners (rows of ``taste``) for pieces."""
    return np.atleast_2d(taste) @ attrs.T + appeal


def like_probability(aff: np.ndarray) -> np.ndarray:
    """How likely a listener is to like a piece they play through."""
    return 1 / (1 + np.exp(-(2 * aff - 1)))


def simulate(world: World, n_listeners: int, *, events_per_listener: float = 100.0, seed: int = 0,
             progress: bool = True) -> tuple[list[tuple], np.ndarray]:
    """Events (timestamp, listener, piece key, event, value, other) and the tastes."""
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    taste = tastes(n_listeners, seed)
    logpop = 0.8 * np.log(world.popularity)
    out = []
    for u in tqdm(range(n_listeners), desc="simulate listeners", unit="listener", disable=not progress):
        aff = affinity(taste[u], world.attrs, world.appeal)[0] + rng.normal(0, 0.5, len(world.keys))
        n_ev = max(3, int(rng.lognormal(np.log(events_per_listener), 0.6)))
        n_plays = max(2, int(n_ev / 2.2))
        logits = aff + logpop
        p = np.exp(logits - logits.max())
        p /= p.sum()
        picks = rng.choice(len(world.keys), size=n_plays, p=p)
        # a listener joins in the first month and comes back until the end of the 90 days
        first = rng.uniform(0, 30)
        days = np.sort(rng.uniform(first, 90, n_plays))
        name = f"sim-{seed}-{u:05d}"
        for i, day in zip(picks, days):
            t = START + timedelta(days=float(day))
            a = aff[i]
            frac = 1 / (1 + np.exp(-(1.5 * a + rng.normal(0, 0.5))))
            secs = float(world.seconds[i]) * frac
            key = world.keys[i]
            ts = t.strftime("%Y-%m-%dT%H:%M:%SZ")
            out.append((ts, name, key, "play", round(secs, 1), ""))
            if frac > 0.85:
                out.append((ts, name, key, "complete", "", ""))
                if rng.random() < like_probability(a):
                    out.append((ts, name, key, "like", "", ""))
            elif frac < 0.25:
                out.append((ts, name, key, "skip", "", ""))
            if rng.random() < 0.08:
                r = int(np.clip(np.round(3 + 1.2 * a + rng.normal(0, 0.5)), 1, 5))
                out.append((ts, name, key, "rating", r, ""))
    out.sort(key=lambda r: r[0])
    return out, taste


def simulate_store(url: str | None, n_listeners: int, *, events_per_listener: float = 100.0, seed: int = 0,
                   progress: bool = True) -> tuple[list[tuple], np.ndarray, World]:
    """Simulate listeners over every piece in the store: (events, tastes, world)."""
    from tunesmith.recommend.catalogue import content_vectors
    from tunesmith.recommend.service import load_catalogue

    cat = load_catalogue(url)
    if not cat.keys:
        raise OptionError("--db-url", "the store has no pieces; run 'tunesmith db add-corpus' first")
    x = content_vectors(cat.hashes, cat.paths, progress=progress)
    secs = np.array([m.get("seconds", np.nan) for m in cat.meta], float)
    world = build_world(cat.keys, cat.corpus, x, secs, seed)
    events, taste = simulate(world, n_listeners, events_per_listener=events_per_listener, seed=seed,
                             progress=progress)
    return events, taste, world


def write_simulation(out_dir: str | Path, events: list[tuple], taste: np.ndarray, world: World, *, seed: int,
                     force: bool = False) -> list[Path]:
    from safetensors.numpy import save_file

    out = Path(out_dir)
    if (out / "events.csv").exists() and not force:
        raise OptionError("--out", f"'{out / 'events.csv'}' exists; choose another folder or add --force")
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("timestamp", "listener", "piece", "event", "value", "other_piece"))
    w.writerows(events)
    paths = [atomic_write_text(out / "events.csv", buf.getvalue())]
    save_file({"taste": taste.astype(np.float32), "attrs": world.attrs.astype(np.float32),
               "appeal": world.appeal.astype(np.float32)}, str(out / "tastes.safetensors"))
    info = {"simulated": True, "seed": seed, "listeners": int(len(taste)), "events": len(events),
            "attributes": list(ATTRS), "items": len(world.keys),
            "density_stats": world.density_stats, "register_stats": world.register_stats,
            "note": "SIMULATED listeners (tunesmith.recommend.simulate); not real listening data"}
    paths.append(atomic_write_text(out / "simulation.json", json.dumps(info, indent=1)))
    paths.append(out / "tastes.safetensors")
    return paths
