"""Offline evaluation of the recommender on a time-ordered split of the logged events.

Events before the 80th percentile of their timestamps train every model; a listener's
pieces with positive feedback (a summed weight ≥ 2: a like, a completed play, a rating of
4–5) *after* the split, not already heard before it, are what a good recommender should
have put in that listener's top 10. Models: the hybrid, ALS alone, content alone,
item-kNN (cosine between pieces' listener columns), popularity and random. Metrics at 10:
precision, recall, NDCG, MAP; catalogue coverage (share of pieces recommended to anyone)
and novelty (mean self-information −log2 of the share of listeners who heard a
recommended piece).

Cold start: a tenth of the listeners are held out of the fit entirely; each is given only
their first three liked pieces and judged on the rest of their liked pieces.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from tunesmith.recommend.catalogue import content_vectors
from tunesmith.recommend.metrics import K, ranking_metrics, top_k
from tunesmith.recommend.model import POSITIVE, Recommender
from tunesmith.recommend.service import fit_blended, load_catalogue, load_events, log_interactions

MODELS = ("hybrid", "als", "content", "item-knn", "popularity", "random")


def evaluate(url: str | None = None, *, split: float = 0.8, cold_share: float = 0.1, seed: int = 0,
             max_listeners: int | None = None, progress: bool = True) -> dict:
    from tqdm import tqdm

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    cat = load_catalogue(url)
    log = load_events(url)
    n_items = len(cat.keys)
    idx = {int(p): i for i, p in enumerate(cat.ids)}
    cut = float(np.quantile(log.ts, split)) if len(log.ts) else 0.0
    n_users = len(log.names)
    cold = rng.random(n_users) < cold_share
    before = log.ts < cut
    train_mask = before & ~cold[log.listener]
    train = log_interactions(log, idx, n_items, train_mask).matrix
    test = log_interactions(log, idx, n_items, ~before & ~cold[log.listener]).matrix
    x = content_vectors(cat.hashes, cat.paths, progress=progress)
    rec = fit_blended(cat.keys, x, log, idx, train_mask)
    fit_s = rec.config["fit_seconds"]

    # warm listeners: positives after the split that were not heard before it
    train_pos = _pos(train)
    heard = (train != 0).astype(np.float32).tocsr()
    users, relevant = [], []
    for u in range(n_users):
        if cold[u] or heard.indptr[u + 1] == heard.indptr[u]:
            continue
        a, b = test.indptr[u], test.indptr[u + 1]
        rel = {int(i) for i, v in zip(test.indices[a:b], test.data[a:b]) if v >= POSITIVE} - \
            set(heard.indices[heard.indptr[u]:heard.indptr[u + 1]].tolist())
        if rel:
            users.append(u)
            relevant.append(rel)
    if max_listeners and len(users) > max_listeners:
        keep = np.sort(rng.choice(len(users), max_listeners, replace=False))
        users, relevant = [users[i] for i in keep], [relevant[i] for i in keep]
    users = np.array(users, np.int64)
    pop = np.asarray((heard > 0).sum(axis=0)).ravel().astype(float)
    pop_share = np.maximum(pop, 0.5) / max(1, (np.diff(heard.indptr) > 0).sum())
    colnorm = np.sqrt(np.asarray(train_pos.multiply(train_pos).sum(axis=0)).ravel())
    item_n = train_pos @ sp.diags(1 / np.where(colnorm > 0, colnorm, 1))
    results = {m: [] for m in MODELS}
    t_score = {m: 0.0 for m in MODELS}
    batch = 500
    for b0 in tqdm(range(0, len(users), batch), desc="evaluate", unit="batch", disable=not progress):
        ub = users[b0:b0 + batch]
        rows = train[ub]
        seen = heard[ub]
        for m in MODELS:
            t1 = time.perf_counter()
            if m in ("hybrid", "als", "content"):
                s = rec.scores(rows, mode=m)
            elif m == "item-knn":
                s = np.asarray(((item_n[ub] @ item_n.T) @ item_n).todense())
            elif m == "popularity":
                s = np.broadcast_to(pop, (len(ub), n_items))
            else:
                s = rng.random((len(ub), n_items))
            results[m].append(top_k(np.asarray(s), seen))
            t_score[m] += time.perf_counter() - t1
    out = {"listeners": int(len(users)), "items": n_items, "events": int(len(log.ts)),
           "train_events": int(train_mask.sum()), "split_quantile": split, "simulated": log.simulated,
           "fit_seconds": fit_s, "models": {}}
    for m in MODELS:
        top = np.vstack(results[m]) if results[m] else np.zeros((0, K), np.int64)
        met = ranking_metrics(top, relevant) if len(top) else {}
        rec_items = np.unique(top)
        met["coverage"] = float(len(rec_items) / n_items)
        met["novelty"] = float(np.mean(-np.log2(np.minimum(pop_share[top.ravel()], 1.0)))) if len(top) else None
        met["ms_per_listener"] = round(1000 * t_score[m] / max(1, len(users)), 3)
        out["models"][m] = met
    out["cold_start"] = _cold_start(rec, log, idx, n_items, cold, pop, rng)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _pos(m: sp.csr_matrix) -> sp.csr_matrix:
    p = m.copy()
    p.data = np.maximum(p.data, 0)
    p.eliminate_zeros()
    return p


def _cold_start(rec: Recommender, log, idx: dict, n_items: int, cold: np.ndarray, pop: np.ndarray, rng) -> dict:
    """Held-out listeners given their first three liked pieces."""
    full = log_interactions(log, idx, n_items, cold[log.listener]).matrix
    # first time each (listener, piece) became liked: the order of likes
    rows, rel = [], []
    order = np.argsort(log.ts, kind="stable")
    first_likes: dict[int, list[int]] = {}
    for e in order:
        u = int(log.listener[e])
        if not cold[u] or log.kind[e] != "like":
            continue
        i = idx.get(int(log.piece_id[e]))
        if i is not None and i not in first_likes.setdefault(u, []):
            first_likes[u].append(i)
    for u, likes in first_likes.items():
        a, b = full.indptr[u], full.indptr[u + 1]
        liked_all = {int(i) for i, v in zip(full.indices[a:b], full.data[a:b]) if v >= POSITIVE}
        rest = liked_all - set(likes[:3])
        if len(likes) >= 3 and rest:
            r = np.zeros(n_items, np.float32)
            r[likes[:3]] = 4.0
            rows.append(r)
            rel.append(rest)
    if not rows:
        return {"listeners": 0}
    m = sp.csr_matrix(np.vstack(rows))
    out = {"listeners": len(rows)}
    for name, s in (("hybrid", rec.scores(m, mode="hybrid")), ("popularity", np.broadcast_to(pop, m.shape)),
                    ("content", rec.scores(m, mode="content"))):
        out[name] = ranking_metrics(top_k(np.asarray(s), m), rel)
    return out
