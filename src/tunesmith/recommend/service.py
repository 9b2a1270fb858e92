"""The recommender against the store: fit from the logged events, recommend for a listener
(with reasons), find similar pieces."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sqlalchemy import select

from tunesmith.errors import BadInputError, OptionError
from tunesmith.recommend.catalogue import content_vectors
from tunesmith.recommend.model import POSITIVE, Interactions, Recommender, default_dir, interactions
from tunesmith.store import db
from tunesmith.store.models import Event, Listener, Piece

MAX_NEW_PIECES = 500  # pieces added since the fit that are embedded at request time


@dataclass
class Catalogue:
    ids: np.ndarray
    keys: list[str]
    meta: list[dict]
    corpus: list[str | None]
    hashes: list[str | None]
    paths: list[str | None]
    titles: list[str]


def load_catalogue(url: str | None = None) -> Catalogue:
    db.check_schema(url)
    with db.new_session(url) as s:
        rows = s.execute(select(Piece.id, Piece.key, Piece.meta, Piece.corpus, Piece.content_hash, Piece.path,
                                Piece.title).order_by(Piece.id)).all()
    return Catalogue(np.array([r[0] for r in rows], np.int64), [r[1] for r in rows], [r[2] or {} for r in rows],
                     [r[3] for r in rows], [r[4] for r in rows], [r[5] for r in rows], [r[6] or "" for r in rows])


@dataclass
class EventLog:
    listener: np.ndarray  # row index into names
    names: list[str]
    piece_id: np.ndarray
    kind: np.ndarray
    value: np.ndarray  # NaN where none
    other_id: np.ndarray  # -1 where none
    ts: np.ndarray  # float seconds since the epoch
    simulated: bool


def load_events(url: str | None = None, *, listener: str | None = None) -> EventLog:
    db.check_schema(url)
    with db.new_session(url) as s:
        q = select(Event.listener_id, Event.piece_id, Event.kind, Event.value, Event.other_piece_id, Event.ts,
                   Event.source)
        if listener is not None:
            q = q.join(Listener, Listener.id == Event.listener_id).where(Listener.name == listener)
        rows = s.execute(q.order_by(Event.ts, Event.id)).all()
        lids = sorted({r[0] for r in rows})
        names = dict(s.execute(select(Listener.id, Listener.name).where(Listener.id.in_(lids))).all()) \
            if len(lids) < 30000 else dict(s.execute(select(Listener.id, Listener.name)).all())
    pos = {lid: i for i, lid in enumerate(lids)}
    from datetime import timezone

    def epoch(t):
        return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()

    return EventLog(np.array([pos[r[0]] for r in rows], np.int64), [names[i] for i in lids],
                    np.array([r[1] for r in rows], np.int64), np.array([r[2] for r in rows], object),
                    np.array([np.nan if r[3] is None else r[3] for r in rows], float),
                    np.array([-1 if r[4] is None else r[4] for r in rows], np.int64),
                    np.array([epoch(r[5]) for r in rows], float),
                    any((r[6] or "").startswith("simulated") for r in rows))


def log_interactions(log: EventLog, id_to_item: dict[int, int], n_items: int, mask: np.ndarray | None = None
                     ) -> Interactions:
    m = np.ones(len(log.piece_id), bool) if mask is None else mask
    item = np.array([id_to_item.get(int(p), -1) for p in log.piece_id[m]], np.int64)
    other = np.array([id_to_item.get(int(p), -1) if p >= 0 else -1 for p in log.other_id[m]], np.int64)
    ok = item >= 0
    return interactions(log.listener[m][ok], item[ok], log.kind[m][ok], log.value[m][ok], other[ok], n_items,
                        listeners=log.names)


def fit_blended(keys: list[str], x: np.ndarray, log, idx: dict, mask: np.ndarray, *, progress: bool = False
                ) -> Recommender:
    """Fit on the events in ``mask``: first on their earlier 90% (by time) to choose the
    blend on the later 10%, then on all of them with that blend."""
    n = len(keys)
    ts = log.ts[mask]
    t_val = float(np.quantile(ts, 0.9)) if len(ts) else 0.0
    early = mask & (log.ts < t_val)
    late = mask & (log.ts >= t_val)
    probe = Recommender.fit(keys, x, log_interactions(log, idx, n, early), progress=False)
    choice = probe.choose_blend(log_interactions(log, idx, n, early).matrix, log_interactions(log, idx, n, late).matrix)
    t0 = time.perf_counter()
    rec = Recommender.fit(keys, x, log_interactions(log, idx, n, mask), progress=progress)
    rec.config.update(choice)
    rec.config["fit_seconds"] = round(probe.config["fit_seconds"] + time.perf_counter() - t0, 2)
    return rec


def fit(url: str | None = None, out: str | Path | None = None, *, progress: bool = True, threads: int = 0
        ) -> tuple[Recommender, dict]:
    """Fit on every event in the store and save (default ``$TUNESMITH_HOME/recommender``)."""
    cat = load_catalogue(url)
    if not len(cat.keys):
        raise BadInputError(db.shown_url(url), "the store has no pieces; add some with 'tunesmith db add-corpus'")
    log = load_events(url)
    idx = {int(p): i for i, p in enumerate(cat.ids)}
    x = content_vectors(cat.hashes, cat.paths, progress=progress)
    rec = fit_blended(cat.keys, x, log, idx, np.ones(len(log.ts), bool), progress=progress)
    rec.config["simulated_events"] = log.simulated
    rec.config["events"] = int(len(log.piece_id))
    rec.save(out or default_dir())
    return rec, rec.config


# --------------------------------------------------------------------------- recommending


@dataclass
class Recommendation:
    key: str
    score: float
    reason: str

    def to_dict(self) -> dict:
        return {"piece": self.key, "score": round(self.score, 4), "reason": self.reason}


def _mode(meta: dict) -> str | None:
    k = meta.get("key") or ""
    return "minor" if k.endswith("minor") else "major" if k.endswith("major") else None


def shared_features(a: dict, b: dict, corpus_a: str | None, corpus_b: str | None) -> list[str]:
    out = []
    if corpus_a and corpus_a == corpus_b:
        out.append(corpus_a)
    if a.get("region") and a.get("region") == b.get("region"):
        out.append(f"region {a['region']}")
    if _mode(a) and _mode(a) == _mode(b):
        out.append(_mode(a))
    if a.get("meter") and a.get("meter") == b.get("meter"):
        out.append(a["meter"])
    if a.get("voices") and a.get("voices") == b.get("voices"):
        out.append("one melody" if a["voices"] == 1 else f"{a['voices']} voices")
    return out


class Service:
    """A fitted recommender with the store's current catalogue (pieces added since the fit
    are embedded on demand and ranked by content)."""

    def __init__(self, url: str | None = None, model_dir: str | Path | None = None):
        self.url = url
        self.rec = Recommender.load(model_dir)
        self.cat = load_catalogue(url)
        self.meta = dict(zip(self.cat.keys, self.cat.meta))
        self.corpus = dict(zip(self.cat.keys, self.cat.corpus))
        new = [i for i, k in enumerate(self.cat.keys) if k not in self.rec.index]
        if len(new) > MAX_NEW_PIECES:
            raise OptionError("recommend", f"{len(new)} pieces were added since the fit; run 'tunesmith recommend fit'")
        if new:
            x = content_vectors([self.cat.hashes[i] for i in new], [self.cat.paths[i] for i in new], progress=False)
            self.rec.keys = self.rec.keys + [self.cat.keys[i] for i in new]
            self.rec.item_factors = np.vstack([self.rec.item_factors,
                                               np.zeros((len(new), self.rec.item_factors.shape[1]), np.float32)])
            self.rec.content = np.vstack([self.rec.content, self.rec.space.embed(x)])
            # unknown is not unpopular: a piece added since the fit gets the median popularity
            med = float(np.median(self.rec.popularity)) if len(self.rec.popularity) else 0.0
            self.rec.popularity = np.concatenate([self.rec.popularity, np.full(len(new), med, np.float32)])
            self.rec._index = None
        in_store = set(self.cat.keys)
        self.available = np.array([k in in_store for k in self.rec.keys])  # pieces deleted since the fit: never
        self.id_to_item = {int(p): self.rec.index[k] for p, k in zip(self.cat.ids, self.cat.keys)}

    def listener_row(self, listener: str) -> sp.csr_matrix:
        log = load_events(self.url, listener=listener)
        if not len(log.piece_id):
            with db.new_session(self.url) as s:
                known = s.scalar(select(Listener.id).where(Listener.name == listener))
            if known is None:
                raise BadInputError(listener, "no such listener in the store")
        inter = log_interactions(log, self.id_to_item, len(self.rec.keys))
        return inter.matrix[:1] if inter.matrix.shape[0] else sp.csr_matrix((1, len(self.rec.keys)), dtype=np.float32)

    def for_listener(self, listener: str, n: int = 10) -> list[Recommendation]:
        row = self.listener_row(listener)
        heard = set(row.indices)
        if row.nnz == 0:  # no events yet: the most liked pieces
            s = np.log1p(self.rec.popularity)
            reason_pop = True
        else:
            s = self.rec.scores(row)[0]
            reason_pop = False
        s = np.where(self.available, s, -np.inf)
        if heard:
            s[list(heard)] = -np.inf
        top = np.argsort(-s, kind="stable")[:n]
        liked = [i for i, v in zip(row.indices, row.data) if v >= POSITIVE] or \
            [i for i, v in zip(row.indices, row.data) if v > 0]
        out = []
        for i in top:
            if not np.isfinite(s[i]):
                break
            key = self.rec.keys[i]
            if reason_pop:
                k = int(self.rec.popularity[i])
                why = f"popular: liked by {k} listener{'s' if k != 1 else ''}" if k else "from the catalogue"
            elif liked:
                sims = self.rec.content[liked] @ self.rec.content[i] + \
                    0.5 * _cos(self.rec.item_factors[liked], self.rec.item_factors[i])
                j = liked[int(np.argmax(sims))]
                other = self.rec.keys[j]
                shared = shared_features(self.meta.get(key, {}), self.meta.get(other, {}), self.corpus.get(key),
                                         self.corpus.get(other))
                why = f"because you liked {other}" + (f" (shared: {', '.join(shared)})" if shared else "")
            else:
                why = "unlike the pieces you skipped"
            out.append(Recommendation(key, float(s[i]), why))
        return out

    def similar(self, key: str, n: int = 10) -> list[Recommendation]:
        if key not in self.rec.index:
            raise BadInputError(key, "no such piece in the store")
        i = self.rec.index[key]
        content = self.rec.content @ self.rec.content[i]
        cf = _cos(self.rec.item_factors, self.rec.item_factors[i])
        heard = self.rec.popularity[i] > 0
        s = 0.5 * _zs(content) + (0.5 * _zs(cf) if heard else 0)
        s = np.where(self.available, s, -np.inf)
        s[i] = -np.inf
        top = np.argsort(-s, kind="stable")[:n]
        out = []
        for j in top:
            k = self.rec.keys[j]
            shared = shared_features(self.meta.get(k, {}), self.meta.get(key, {}), self.corpus.get(k),
                                     self.corpus.get(key))
            why = (f"sounds alike (content {content[j]:.2f}" + (f", listeners {cf[j]:.2f}" if heard else "") + ")"
                   + (f"; shared: {', '.join(shared)}" if shared else ""))
            out.append(Recommendation(k, float(s[j]), why))
        return out


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.linalg.norm(a, axis=-1)
    nb = np.linalg.norm(b)
    return (a @ b) / np.where(na * nb > 0, na * nb, 1.0)


def _zs(s: np.ndarray) -> np.ndarray:
    sd = s.std()
    return (s - s.mean()) / (sd if sd > 1e-9 else 1.0)
