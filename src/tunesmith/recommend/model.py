"""The hybrid recommender: implicit-feedback ALS (the ``implicit`` library) blended with
content similarity from the MIR feature layer.

- **Feedback → confidence.** Per listener and piece the events add up to a weight
  (:data:`WEIGHTS`): a like 4, a complete 2, a play up to 1 (by minutes listened), a
  rating (r − 2.5) × 2, a skip −1.5, an A/B choice +2 for the chosen piece and −1 for the
  other. Positive sums are the implicit confidences ALS factorises; a piece with a
  positive sum of at least :data:`POSITIVE` counts as liked.
- **Content.** Each piece's ``tunesmith-mir-features-v1`` vector, standardised (the
  hashed melodic n-grams down-weighted so that they do not drown the musical
  statistics), reduced by PCA to :data:`CONTENT_DIM` dimensions and normalised. A
  listener's content profile is the confidence-weighted mean of their pieces' vectors
  (skipped pieces pull away).
- **Blend.** Both scores are standardised over the catalogue and mixed with weight
  ``n / (n + SHRINK)`` on ALS for a listener with ``n`` liked pieces: a new listener with
  three likes leans on content, a regular one on collaborative filtering. A piece nobody
  has heard has no ALS signal and is ranked by its content score.
- **Incremental.** ``recommend for`` reads the listener's events from the store at
  request time and recomputes their ALS factor (``recalculate_user``): a new event
  changes the next recommendation without a refit; new pieces enter with their content.

Everything is saved as safetensors + JSON (no pickle).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from tunesmith.errors import BadInputError, OptionError
from tunesmith.fileio import replaced_folder, tunesmith_home, write_json
from tunesmith.mir.features import GROUPS, N_FEATURES

WEIGHTS = {"like": 4.0, "complete": 2.0, "skip": -1.5, "choice": 2.0, "choice_other": -1.0}
POSITIVE = 2.0
CONTENT_DIM = 48
SHRINK = 8.0
POP_WEIGHT = 1.0  # the popularity prior beside the content score (new listeners, new pieces)
BLEND_GRID = {"shrink": (3.0, 10.0, 30.0, 100.0), "pop_weight": (0.5, 1.0, 2.0, 4.0)}
NGRAM_WEIGHT = 0.35
FACTORS = 64
REGULARIZATION = 0.05
ALPHA = 2.0
ITERATIONS = 15
FORMAT = "tunesmith-recommender-v1"


def event_weight(kind: str, value: float | None) -> float:
    if kind == "play":
        return 0.5 if value is None else min(float(value) / 60.0, 1.0)
    if kind == "rating":
        return (float(value) - 2.5) * 2.0
    return WEIGHTS.get(kind, 0.0)


def default_dir() -> Path:
    return tunesmith_home() / "recommender"


# --------------------------------------------------------------------------- interactions


@dataclass
class Interactions:
    """Summed event weights: rows are listeners, columns catalogue items."""

    listeners: list[str]
    matrix: sp.csr_matrix  # float32, may hold negative sums

    def positive(self) -> sp.csr_matrix:
        m = self.matrix.copy()
        m.data = np.maximum(m.data, 0)
        m.eliminate_zeros()
        return m


def interactions(ev_listener: np.ndarray, ev_item: np.ndarray, ev_kind: np.ndarray, ev_value: np.ndarray,
                 ev_other: np.ndarray, n_items: int, listeners: list[str] | None = None) -> Interactions:
    """Sum events into a listener × item matrix (``ev_listener`` are row indices)."""
    w = np.array([event_weight(k, None if np.isnan(v) else v) for k, v in zip(ev_kind, ev_value)], np.float32)
    rows, cols, vals = [ev_listener], [ev_item], [w]
    has_other = ev_other >= 0
    if has_other.any():
        rows.append(ev_listener[has_other])
        cols.append(ev_other[has_other])
        vals.append(np.full(int(has_other.sum()), WEIGHTS["choice_other"], np.float32))
    n_rows = int(ev_listener.max()) + 1 if len(ev_listener) else 0
    if listeners is not None:
        n_rows = len(listeners)
    m = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n_rows, n_items), dtype=np.float32)
    m.sum_duplicates()
    return Interactions(listeners or [str(i) for i in range(n_rows)], m)


# --------------------------------------------------------------------------- content


@dataclass
class ContentSpace:
    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray  # (CONTENT_DIM, N_FEATURES)

    @classmethod
    def fit(cls, x: np.ndarray, dim: int = CONTENT_DIM) -> ContentSpace:
        from sklearn.decomposition import PCA

        finite = np.isfinite(x)
        mean = np.where(finite, x, 0).sum(0) / np.maximum(finite.sum(0), 1)
        xs = np.where(finite, x, mean)
        scale = xs.std(0)
        scale = np.where(scale > 1e-6, scale, 1.0)
        weights = np.ones(N_FEATURES)
        weights[N_FEATURES - GROUPS["ngrams"]:] = NGRAM_WEIGHT
        scale = scale / weights
        z = (xs - mean) / scale
        pca = PCA(n_components=min(dim, z.shape[0], z.shape[1]), random_state=0).fit(z[np.isfinite(x).any(1)])
        return cls(mean, scale, pca.components_.astype(np.float32))

    def embed(self, x: np.ndarray) -> np.ndarray:
        """Unit vectors (zero for an unreadable piece)."""
        x = np.atleast_2d(x)
        empty = ~np.isfinite(x).any(1)
        z = (np.where(np.isfinite(x), x, self.mean) - self.mean) / self.scale
        e = z @ self.components.T
        e[empty] = 0
        n = np.linalg.norm(e, axis=1, keepdims=True)
        return (e / np.where(n > 0, n, 1)).astype(np.float32)


def _z(s: np.ndarray) -> np.ndarray:
    sd = s.std(axis=-1, keepdims=True)
    return (s - s.mean(axis=-1, keepdims=True)) / np.where(sd > 1e-9, sd, 1.0)


# --------------------------------------------------------------------------- the model


@dataclass
class Recommender:
    keys: list[str]  # catalogue piece keys, in item order
    item_factors: np.ndarray  # (items, FACTORS)
    content: np.ndarray  # (items, CONTENT_DIM) unit vectors
    space: ContentSpace
    popularity: np.ndarray  # (items,) listeners who liked each piece in the fit
    config: dict = field(default_factory=dict)
    _als: object = None
    _index: dict | None = None

    # ----------------------------------------------------------------- fitting
    @classmethod
    def fit(cls, keys: list[str], content_x: np.ndarray, inter: Interactions, *, factors: int = FACTORS,
            iterations: int = ITERATIONS, seed: int = 0, progress: bool = False, threads: int = 0) -> Recommender:
        from implicit.cpu.als import AlternatingLeastSquares

        t0 = time.perf_counter()
        pos = inter.positive()
        from threadpoolctl import threadpool_limits

        # implicit runs its own threads; BLAS threads on top of them only contend
        with threadpool_limits(1, "blas"):
            als = AlternatingLeastSquares(factors=factors, regularization=REGULARIZATION, alpha=ALPHA,
                                          iterations=iterations, random_state=seed, num_threads=threads)
            if pos.nnz:
                als.fit(pos, show_progress=progress)
        if pos.nnz:
            item_f = np.asarray(als.item_factors, np.float32)
        else:
            item_f = np.zeros((len(keys), factors), np.float32)
        space = ContentSpace.fit(content_x)
        popularity = np.asarray((pos >= POSITIVE).sum(axis=0)).ravel().astype(np.float32)
        cfg = {"format": FORMAT, "factors": factors, "iterations": iterations, "regularization": REGULARIZATION,
               "alpha": ALPHA, "shrink": SHRINK, "pop_weight": POP_WEIGHT, "content_dim": int(space.components.shape[0]),
               "listeners": int(pos.shape[0]), "items": len(keys), "nonzeros": int(pos.nnz),
               "fit_seconds": round(time.perf_counter() - t0, 2), "fitted": time.strftime("%Y-%m-%dT%H:%M:%S")}
        return cls(list(keys), item_f, space.embed(content_x), space, popularity, cfg)

    def choose_blend(self, early: sp.csr_matrix, late: sp.csr_matrix, *, max_listeners: int = 1000,
                     seed: int = 0) -> dict:
        """Pick the blend (:data:`SHRINK`, :data:`POP_WEIGHT`) by NDCG@10 on held-out later
        events of the training listeners (this model must be fitted on ``early`` only);
        the choice is stored in the config. Never sees the evaluation's test events."""
        from tunesmith.recommend.metrics import held_out, ranking_metrics, top_k

        users, rel = held_out(early, late, POSITIVE)
        if len(users) < 20:
            return {"shrink": SHRINK, "pop_weight": POP_WEIGHT, "validation_listeners": int(len(users))}
        if len(users) > max_listeners:
            keep = np.sort(np.random.default_rng(seed).choice(len(users), max_listeners, replace=False))
            users, rel = users[keep], [rel[i] for i in keep]
        rows = early[users]
        uf = self.user_factors(rows)
        best = None
        for shrink in BLEND_GRID["shrink"]:
            for pw in BLEND_GRID["pop_weight"]:
                self.config.update(shrink=shrink, pop_weight=pw)
                ndcg = ranking_metrics(top_k(self.scores(rows, user_f=uf), rows), rel)["ndcg@10"]
                if best is None or ndcg > best[0]:
                    best = (ndcg, shrink, pw)
        choice = {"shrink": best[1], "pop_weight": best[2], "validation_ndcg@10": round(best[0], 4),
                  "validation_listeners": int(len(users))}
        self.config.update(choice)
        return choice

    @property
    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {k: i for i, k in enumerate(self.keys)}
        return self._index

    def _model(self):
        if self._als is None:
            from implicit.cpu.als import AlternatingLeastSquares
            from threadpoolctl import threadpool_limits

            with threadpool_limits(1, "blas"):
                als = AlternatingLeastSquares(factors=self.item_factors.shape[1], regularization=REGULARIZATION,
                                              alpha=ALPHA, num_threads=1)
            als.item_factors = self.item_factors
            als.user_factors = np.zeros((1, self.item_factors.shape[1]), np.float32)
            self._als = als
        return self._als

    # ----------------------------------------------------------------- scoring
    def user_factors(self, rows: sp.csr_matrix) -> np.ndarray:
        """ALS factors of listeners from their (positive) interaction rows, recomputed
        with the fitted item factors."""
        rows = sp.csr_matrix(rows, dtype=np.float32)
        rows.data = np.maximum(rows.data, 0)
        rows.eliminate_zeros()
        if not np.any(self.item_factors):
            return np.zeros((rows.shape[0], self.item_factors.shape[1]), np.float32)
        return np.atleast_2d(self._model().recalculate_user(np.arange(rows.shape[0]), rows))

    def profiles(self, rows: sp.csr_matrix) -> np.ndarray:
        """Content profiles: weighted means of the listeners' pieces (negative weights pull away)."""
        rows = sp.csr_matrix(rows, dtype=np.float32)
        w = rows.copy()
        w.data = np.where(w.data > 0, w.data, 0.5 * w.data)
        p = w @ self.content
        n = np.linalg.norm(p, axis=1, keepdims=True)
        return p / np.where(n > 0, n, 1)

    def scores(self, rows: sp.csr_matrix, *, mode: str = "hybrid", user_f: np.ndarray | None = None) -> np.ndarray:
        """Scores of every catalogue piece for each listener row: ``hybrid``, ``als`` or ``content``."""
        rows = sp.csr_matrix(rows, dtype=np.float32)
        out = np.zeros((rows.shape[0], len(self.keys)), np.float32)
        if mode in ("hybrid", "als"):
            uf = self.user_factors(rows) if user_f is None else user_f
            cf = uf @ self.item_factors.T
            if mode == "als":
                return cf
            n_liked = np.asarray((rows >= POSITIVE).sum(axis=1)).ravel()[:, None]
            shrink = self.config.get("shrink", SHRINK)
            a = n_liked / (n_liked + shrink)
            out += a * _z(cf)
        else:
            a = 0.0
        content = self.profiles(rows) @ self.content.T
        if mode == "content":
            return content
        return out + (1 - a) * (_z(content) + self.config.get("pop_weight", POP_WEIGHT) * self._pop_z())

    def _pop_z(self) -> np.ndarray:
        return _z(np.log1p(self.popularity))

    # ----------------------------------------------------------------- saving
    def save(self, folder: str | Path) -> Path:
        from safetensors.numpy import save_file

        out = Path(folder)
        with replaced_folder(out) as tmp:
            arrays = {"item_factors": self.item_factors, "content": self.content, "popularity": self.popularity,
                      "space_mean": self.space.mean.astype(np.float64), "space_scale": self.space.scale.astype(np.float64),
                      "space_components": self.space.components}
            # safetensors writes the raw buffer: a Fortran-ordered array (PCA's components) must be made
            # C-contiguous first, or it loads transposed
            save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp / "model.safetensors"))
            write_json(tmp / "config.json", self.config)
            write_json(tmp / "items.json", self.keys, indent=None)
        return out

    @classmethod
    def load(cls, folder: str | Path | None = None) -> Recommender:
        from safetensors.numpy import load_file

        p = Path(folder) if folder else default_dir()
        if not (p / "model.safetensors").is_file():
            raise OptionError("--model", f"no recommender in '{p}'; run 'tunesmith recommend fit' first")
        try:
            cfg = json.loads((p / "config.json").read_text())
            keys = json.loads((p / "items.json").read_text())
            w = load_file(str(p / "model.safetensors"))
        except (OSError, ValueError) as e:
            raise BadInputError(p, f"not a tunesmith recommender ({e})") from None
        if cfg.get("format") != FORMAT:
            raise BadInputError(p, f"not a {FORMAT} recommender; refit it with 'tunesmith recommend fit'")
        return cls(keys, w["item_factors"], w["content"],
                   ContentSpace(w["space_mean"], w["space_scale"], w["space_components"]), w["popularity"], cfg)
