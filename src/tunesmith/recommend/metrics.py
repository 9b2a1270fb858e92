"""Top-k ranking metrics shared by the evaluation and the blend selection."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

K = 10


def top_k(scores: np.ndarray, seen: sp.csr_matrix, k: int = K) -> np.ndarray:
    """The ``k`` best items per row, excluding each row's already-heard items."""
    s = np.array(scores, np.float32)
    for r in range(s.shape[0]):
        s[r, seen.indices[seen.indptr[r]:seen.indptr[r + 1]]] = -np.inf
    part = np.argpartition(-s, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(s, part, 1), axis=1, kind="stable")
    return np.take_along_axis(part, order, 1)


def ranking_metrics(top: np.ndarray, relevant: list[set], k: int = K) -> dict:
    prec, rec, ndcg, ap = [], [], [], []
    disc = 1 / np.log2(np.arange(2, k + 2))
    for row, rel in zip(top, relevant):
        hits = np.array([i in rel for i in row[:k]], float)
        prec.append(hits.sum() / k)
        rec.append(hits.sum() / len(rel))
        ndcg.append((hits * disc).sum() / disc[:min(len(rel), k)].sum())
        cum = np.cumsum(hits)
        ap.append(((cum / np.arange(1, k + 1)) * hits).sum() / min(len(rel), k))
    return {f"precision@{k}": float(np.mean(prec)), f"recall@{k}": float(np.mean(rec)),
            f"ndcg@{k}": float(np.mean(ndcg)), f"map@{k}": float(np.mean(ap))}


def held_out(early: sp.csr_matrix, late: sp.csr_matrix, positive: float) -> tuple[np.ndarray, list[set]]:
    """Listeners with a history in ``early`` and pieces liked in ``late`` they had not heard."""
    users, rel = [], []
    for u in range(early.shape[0]):
        a, b = early.indptr[u], early.indptr[u + 1]
        if a == b:
            continue
        c, d = late.indptr[u], late.indptr[u + 1]
        r = {int(i) for i, v in zip(late.indices[c:d], late.data[c:d]) if v >= positive} - \
            set(early.indices[a:b].tolist())
        if r:
            users.append(u)
            rel.append(r)
    return np.array(users, np.int64), rel
