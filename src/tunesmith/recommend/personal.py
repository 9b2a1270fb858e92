"""Personalised generation: generate candidates across models, keys and temperatures and
keep those the listener's taste model scores highest.

A candidate is scored like a catalogue piece nobody has heard yet: its content vector
against the listener's content profile, and — for the collaborative part — the mean ALS
factor of its ten nearest catalogue pieces in content space against the listener's
factor, blended exactly as :meth:`Recommender.scores` blends them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tunesmith.errors import BadInputError, OptionError
from tunesmith.generate.api import (
    check_not_taken,
    check_out_dir,
    load_model,
    output_path,
    parse_formats,
    write_formats,
)
from tunesmith.generate.base import capabilities, check_controls
from tunesmith.mir.features import piece_features
from tunesmith.recommend.model import Recommender
from tunesmith.recommend.service import Service

DEFAULT_MODELS = ("bach-chorales", "folk")
KEYS = ("C major", "G major", "D major", "F major", "A minor", "D minor", "E minor", "G minor")
TEMPERATURES = (0.8, 0.9, 1.0, 1.1)


def candidate_scores(svc: Service, row, x: np.ndarray) -> np.ndarray:
    """Hybrid scores of new pieces (feature rows ``x``) for a listener's interaction row."""
    rec = svc.rec
    emb = rec.space.embed(x)
    near = np.argsort(-(emb @ rec.content.T), axis=1)[:, :10]
    factors = rec.item_factors[near].mean(1)
    med = float(np.median(rec.popularity)) if len(rec.popularity) else 0.0
    aug = Recommender(rec.keys + [f"candidate-{i}" for i in range(len(x))], np.vstack([rec.item_factors, factors]),
                      np.vstack([rec.content, emb]), rec.space,
                      np.concatenate([rec.popularity, np.full(len(x), med, np.float32)]), rec.config)
    aug._als = rec._model()
    import scipy.sparse as sp

    row = sp.hstack([row, sp.csr_matrix((1, len(x)), dtype=np.float32)]).tocsr()
    return aug.scores(row)[0, len(rec.keys):]


def generate_candidates(models: list[str], n: int, *, bars: int = 8, seed: int = 0, progress: bool = True
                        ) -> list[dict]:
    """``n`` pieces across ``models`` (in turn), keys and temperatures each model honours."""
    from tqdm import tqdm

    loaded = {m: load_model(m) for m in models}
    rng = np.random.default_rng(seed)
    out = []
    for j in tqdm(range(n), desc="candidates", unit="piece", disable=not progress):
        name = models[j % len(models)]
        mm = loaded[name]
        caps = capabilities(mm)
        want = {"temperature": float(rng.choice(TEMPERATURES)) if "temperature" in caps else None,
                "key": str(rng.choice(KEYS)) if "key" in caps else None}
        controls = check_controls(mm, want)
        g = mm.generate(bars=bars, seed=seed + j, **controls)
        out.append({"model": name, "seed": seed + j, "bars": bars, "controls": controls, "generated": g,
                    "features": piece_features(g.score)})
    return out


def generate_for(listener: str, out: str | Path, *, models: list[str] | None = None, candidates: int = 12,
                 num: int = 2, bars: int = 8, seed: int = 0, formats: str = "mid,wav,musicxml,png",
                 url: str | None = None, model_dir: str | Path | None = None, force: bool = False,
                 progress: bool = True) -> list[dict]:
    """Generate ``candidates`` pieces, keep the ``num`` the listener's taste scores highest,
    write them (and their settings and taste score) and register them in the store."""
    from tunesmith.fileio import write_json
    from tunesmith.store import db
    from tunesmith.store.events import add_pieces, listener_id

    models = list(models or DEFAULT_MODELS)
    if not 1 <= num <= candidates <= 200:
        raise OptionError("--candidates", f"need 1 ≤ --num ({num}) ≤ --candidates ({candidates}) ≤ 200")
    fmts = parse_formats(formats)
    out = check_out_dir(out)
    bases = [out / f"for-{_safe(listener)}-{seed:03d}-{i + 1}" for i in range(num)]
    check_not_taken(bases, fmts, force)
    svc = Service(url, model_dir)
    row = svc.listener_row(listener)
    if row.nnz == 0:
        raise BadInputError(listener, "has no listening events yet: like or rate a few pieces first")
    cands = generate_candidates(models, candidates, bars=bars, seed=seed, progress=progress)
    scores = candidate_scores(svc, row, np.array([c["features"] for c in cands]))
    order = np.argsort(-scores, kind="stable")[:num]
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for base, j in zip(bases, order):
        c = cands[int(j)]
        g = c["generated"]
        files = write_formats(g.score, base, fmts)
        info = {"files": [str(f) for f in files], "for": listener, "taste_score": round(float(scores[j]), 4),
                "rank_among_candidates": int(np.where(order == j)[0][0]) + 1, "candidates": candidates,
                "key": g.key, "bars": g.bars, "notes": g.score.n_notes,
                "settings": {"model": c["model"], "seed": c["seed"], "bars": c["bars"], **c["controls"]}}
        write_json(output_path(base, ".json"), info)
        results.append(info)
    with db.session(url) as s:
        owner = listener_id(s, listener, create=False)
        add_pieces(s, [{"key": f"generated/{Path(r['files'][0]).stem}", "kind": "generated",
                        "title": f"for {listener}", "owner_id": owner, "model": r["settings"]["model"],
                        "settings": r["settings"], "files": r["files"],
                        "path": next((f for f in r["files"] if f.endswith(".mid")), None),
                        "meta": {"key": r["key"], "bars": r["bars"]}} for r in results])
    return results


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:60]
