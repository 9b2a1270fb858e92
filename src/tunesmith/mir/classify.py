"""Classification: who wrote a piece, which Essen region a folk song comes from, which
collection a tune belongs to.

- **Data.** Each task reads bundled corpora through the dataset layer (prepared once,
  pieces deduplicated by content hash). Long pieces are cut into excerpts of
  :data:`CROP_BARS` bars (at most :data:`MAX_CROPS`, evenly spaced) so that a quartet
  movement and a 16-bar chorale weigh alike and a user's excerpt looks like training
  data; a piece's prediction averages the log-probabilities of its excerpts. The training
  also holds one crop of :data:`SHORT_BARS` bars of each piece (weight :data:`SHORT_WEIGHT`),
  so that a phrase is read by its notes, not by its length.
- **Features.** :data:`tunesmith.mir.features.FEATURES`, the layer shared with search
  and recommendation.
- **Model.** Gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier),
  which beat a logistic regression and a small MLP on every task in cross-validation.
  The fitted trees are saved as arrays, ``model.safetensors`` + ``config.json`` (no
  pickle), and walked in numpy to predict.
- **Evaluation.** Five-fold cross-validation with folds grouped by piece (every excerpt
  of a piece in the same fold; duplicates were merged by content hash), accuracy and
  macro-F1 per piece with bootstrap 95% intervals, beside a majority-class baseline and
  a logistic regression on five global statistics (:data:`~tunesmith.mir.features.SIMPLE`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tunesmith.errors import BadInputError, OptionError
from tunesmith.evaluate.fair import bar_count, crop
from tunesmith.fileio import atomic_write_text, replaced_folder, write_json
from tunesmith.mir.features import FEATURES, N_FEATURES, piece_features, simple_features
from tunesmith.music.corpora import NO_REGION, style_of
from tunesmith.music.io import READABLE_EXTS, Limits, read_pieces
from tunesmith.music.melody import several_voices_heard
from tunesmith.music.score import Score

CROP_BARS = 16
# A user's excerpt is often shorter than CROP_BARS: a phrase of four or eight bars. Trained on
# 16-bar crops and whole short songs alone, the trees learnt that a short piece is an Essen song
# (the Essen songs are 8-16 bars, the Irish tunes' crops 16), and four bars of an O'Neill's jig
# came out "essen 1.00". Every piece longer than one of these lengths gives the training one
# crop of it, from a place drawn from its content hash, so that length says nothing of the class.
SHORT_BARS = (4, 8)
SHORT_WEIGHT = 0.5
MIN_NOTES = 16  # a piece of fewer pitched notes says too little to name a composer, region or collection
MAX_CROPS = 6
CROPS = f"{CROP_BARS}x{MAX_CROPS}+" + "+".join(map(str, SHORT_BARS))  # names the feature cache
FOLDS = 5
MAX_ITER = 200  # boosting iterations (scikit-learn stops early on a 10% validation split when rows > 10,000)
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "assets" / "classifiers"


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    sources: tuple[str, ...]  # corpora read
    min_pieces: int  # classes with fewer pieces are left out


TASKS = {
    t.name: t
    for t in [
        Task("composer", "the composer, among those with at least 15 pieces in music21's corpus: Bach "
             "(chorales), Palestrina, Monteverdi, Beethoven, Mozart",
             ("bach-chorales", "palestrina", "monteverdi", "beethoven", "mozart"), 15),
        Task("region", "the Essen folk song collection's region tag, for regions with at least 60 songs",
             ("folk",), 60),
        Task("collection", "the folk collection a tune comes from: Essen, O'Neill's 1850, Ryan's Mammoth",
             ("folk",), 15),
    ]
}
_COMPOSER = {"bach-chorales": "Bach", "palestrina": "Palestrina", "monteverdi": "Monteverdi",
             "beethoven": "Beethoven", "mozart": "Mozart"}


def task_of(name: str) -> Task:
    if name not in TASKS:
        raise OptionError("--task", f"unknown task '{name}'; known: {', '.join(TASKS)}")
    return TASKS[name]


def label_of(task: Task, source: str, entry: dict) -> str | None:
    """The class of a dataset entry for a task, or None when it has none."""
    if task.name == "composer":
        return _COMPOSER[source]
    corpus, region = style_of(entry, source)
    if task.name == "collection":
        return corpus
    if task.name == "region":
        return region if corpus == "essen" and region != NO_REGION else None
    raise OptionError("--task", f"no labels for task '{task.name}'")


def excerpts(score: Score, *, max_crops: int = MAX_CROPS) -> list[Score]:
    """The piece itself when it is short, else up to ``max_crops`` evenly spaced excerpts of
    :data:`CROP_BARS` bars."""
    n = bar_count(score)
    if n < CROP_BARS * 3 // 2:
        return [score]
    k = min(max_crops, n // CROP_BARS)
    starts = np.linspace(0, n - CROP_BARS, k).round().astype(int)
    out = [c for s in starts if (c := crop(score, int(s), CROP_BARS)) is not None and c.n_notes]
    return out or [score]


def short_excerpts(score: Score, seed: int) -> list[tuple[int, Score]]:
    """For training and for the short-excerpt figures: one crop of each of :data:`SHORT_BARS`
    bars shorter than the piece, from a place drawn with ``seed`` (the piece's content hash),
    each with its length; crops of under :data:`MIN_NOTES` pitched notes are left out, as
    :func:`classify` refuses them."""
    n = bar_count(score)
    rng = np.random.default_rng(seed)
    out = []
    for length in SHORT_BARS:
        if n <= length:
            continue
        c = crop(score, int(rng.integers(0, n - length + 1)), length)
        if c is not None and pitched_notes(c) >= MIN_NOTES:
            out.append((length, c))
    return out


# --------------------------------------------------------------------------- the feature table


@dataclass
class Table:
    """Feature rows of excerpts with the piece (group) and class of each."""

    x: np.ndarray  # (rows, N_FEATURES)
    group: np.ndarray  # (rows,) str: content hash of the piece
    label: np.ndarray  # (rows,) str
    names: dict[str, str] = field(default_factory=dict)  # group -> readable piece name
    kind: np.ndarray | None = None  # (rows,) 0: one of the piece's excerpts; else a short crop's bars

    def __post_init__(self):
        if self.kind is None:
            self.kind = np.zeros(len(self.x), np.int64)


def _cache_dir() -> Path:
    from tunesmith.music.dataset import tunesmith_home

    return tunesmith_home() / "classify" / "features"


def dataset_features(source: str, *, progress: bool = True) -> tuple[list[dict], np.ndarray, np.ndarray, np.ndarray]:
    """Feature rows of every excerpt of every piece of a corpus: (entries, entry index per
    row, rows, kind per row: 0 for the piece's :func:`excerpts`, else the length in bars of a
    :func:`short_excerpts` crop). Cached under ``$TUNESMITH_HOME/classify/features`` by
    dataset content."""
    from tqdm import tqdm

    from tunesmith.music.dataset import open_dataset

    ds = open_dataset(source, progress=progress)
    path = _cache_dir() / f"{ds.name}-{ds.manifest_hash[:16]}-{FEATURES}-{CROPS}.npz"
    if path.is_file():
        with np.load(path) as z:
            return ds.entries, z["entry"], z["x"], z["kind"]
    rows, which, kind = [], [], []
    for i, e in enumerate(tqdm(ds.entries, desc=f"features {source}", unit="piece", disable=not progress)):
        s = ds.load(e)
        seed = int(e["hash"][:12], 16) if e.get("hash") else i  # the content hash (hex), as the splits use it
        for k, c in [(0, c) for c in excerpts(s)] + short_excerpts(s, seed):
            rows.append(piece_features(c))
            which.append(i)
            kind.append(k)
    x = np.asarray(rows, np.float32).reshape(-1, N_FEATURES)
    path.parent.mkdir(parents=True, exist_ok=True)
    from tunesmith.fileio import write_npz

    write_npz(path, compressed=True, x=x, entry=np.asarray(which, np.int64), kind=np.asarray(kind, np.int64))
    return ds.entries, np.asarray(which, np.int64), x, np.asarray(kind, np.int64)


def task_table(task: Task, *, progress: bool = True) -> Table:
    xs, kinds, groups, labels, names = [], [], [], [], {}
    for source in task.sources:
        entries, which, x, kind = dataset_features(source, progress=progress)
        lab = [label_of(task, source, e) for e in entries]
        keep = np.array([lab[i] is not None for i in which], bool)
        xs.append(x[keep])
        kinds.append(kind[keep])
        for i in which[keep]:
            e = entries[i]
            g = e.get("hash") or e["id"]
            groups.append(g)
            labels.append(lab[i])
            names[g] = f"{Path(e['source']).stem}: {(e.get('meta') or {}).get('title', '')}"
    t = Table(np.concatenate(xs), np.asarray(groups), np.asarray(labels), names, np.concatenate(kinds))
    # classes with too few pieces are dropped
    pieces = {}
    for g, y in zip(t.group, t.label):
        pieces.setdefault(y, set()).add(g)
    keep_classes = {y for y, gs in pieces.items() if len(gs) >= task.min_pieces}
    m = np.isin(t.label, sorted(keep_classes))
    return Table(t.x[m], t.group[m], t.label[m], t.names, t.kind[m])


# --------------------------------------------------------------------------- the model


@dataclass
class Linear:
    """A standardised multinomial logistic regression (the simple-feature baseline)."""

    classes: list[str]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # (classes, features)
    intercept: np.ndarray  # (classes,)

    def log_proba(self, x: np.ndarray) -> np.ndarray:
        x = np.where(np.isfinite(x), x, self.mean)
        return _log_softmax(((x - self.mean) / self.scale) @ self.coef.T + self.intercept)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _fit_linear(x: np.ndarray, y: np.ndarray, classes: list[str]) -> Linear:
    from sklearn.linear_model import LogisticRegression

    finite = np.isfinite(x)
    mean = np.where(finite, x, 0.0).sum(axis=0) / np.maximum(finite.sum(axis=0), 1)
    x = np.where(finite, x, mean)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-6, scale, 1.0)
    lr = LogisticRegression(C=1.0, max_iter=3000)
    lr.fit((x - mean) / scale, y)
    coef, icpt = lr.coef_, lr.intercept_
    if len(lr.classes_) == 2:  # scikit-learn keeps one row for two classes
        coef, icpt = np.vstack([-coef[0] / 2, coef[0] / 2]), np.array([-icpt[0] / 2, icpt[0] / 2])
    order = [list(lr.classes_).index(c) for c in classes]
    return Linear(classes, mean, scale, coef[order], icpt[order])


_TREE_FIELDS = ("feature", "threshold", "missing_left", "left", "right", "is_leaf", "value")


@dataclass
class Classifier:
    """Gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier) as flat arrays.

    scikit-learn can only save a fitted model by pickling it, and a pickle is never read
    here; so the fitted trees are copied into arrays (``model.safetensors``) and
    :meth:`log_proba` walks them the way scikit-learn's predictor does for numerical
    features: at a split, a missing value goes the way the tree learnt, else ``x <=
    threshold`` goes left. ``tests/test_mir.py`` checks it agrees with scikit-learn."""

    task: str
    classes: list[str]
    trees: dict[str, np.ndarray]  # _TREE_FIELDS over all nodes, "roots" (iterations, k), "baseline" (k,)
    config: dict = field(default_factory=dict)

    @classmethod
    def from_sklearn(cls, model, classes: list[str], task: str = "") -> Classifier:
        preds = model._predictors  # (iterations) x (trees per iteration) TreePredictor
        cols: dict[str, list] = {k: [] for k in _TREE_FIELDS}
        roots = np.zeros((len(preds), len(preds[0])), np.int64)
        at = 0
        for i, per_iter in enumerate(preds):
            for j, tree in enumerate(per_iter):
                nd = tree.nodes
                if np.any(nd["is_categorical"]):
                    raise ValueError("categorical splits are not exported")
                roots[i, j] = at
                cols["feature"].append(nd["feature_idx"])
                cols["threshold"].append(nd["num_threshold"])
                cols["missing_left"].append(nd["missing_go_to_left"])
                cols["left"].append(nd["left"].astype(np.int64) + at)
                cols["right"].append(nd["right"].astype(np.int64) + at)
                cols["is_leaf"].append(nd["is_leaf"])
                cols["value"].append(nd["value"])
                at += len(nd)
        trees = {k: np.concatenate(v) for k, v in cols.items()}
        trees["roots"] = roots
        trees["baseline"] = np.asarray(model._baseline_prediction, float).ravel()
        order = [list(model.classes_).index(c) for c in classes]
        if len(order) > 2:  # trees per iteration follow model.classes_; reorder to ``classes``
            trees["roots"] = roots[:, order]
            trees["baseline"] = trees["baseline"][order]
        elif order != [0, 1]:
            raise ValueError("two-class models must list classes in scikit-learn's order")
        return cls(task, list(classes), trees)

    def raw(self, x: np.ndarray) -> np.ndarray:
        """Summed leaf values per class, plus the baseline: (rows, k) (k = 1 for two classes)."""
        t = self.trees
        x = np.asarray(x, float)
        roots = t["roots"]
        n_rows = len(x)
        idx = np.broadcast_to(roots.ravel(), (n_rows, roots.size)).copy()
        rows = np.arange(n_rows)[:, None]
        while True:
            leaf = t["is_leaf"][idx].astype(bool)
            if leaf.all():
                break
            v = x[rows, t["feature"][idx]]
            go_left = np.where(np.isnan(v), t["missing_left"][idx].astype(bool), v <= t["threshold"][idx])
            idx = np.where(leaf, idx, np.where(go_left, t["left"][idx], t["right"][idx]))
        vals = t["value"][idx].reshape(n_rows, *roots.shape).sum(axis=1)
        return vals + t["baseline"]

    def log_proba(self, x: np.ndarray) -> np.ndarray:
        z = self.raw(x)
        if z.shape[1] == 1:  # binary: one logit for the second class
            z = np.hstack([np.zeros_like(z), z])
        return _log_softmax(z)

    @property
    def temperature(self) -> float:
        """What a piece's averaged log-probabilities are divided by (:func:`fit_temperature`;
        1 for a classifier trained before calibration)."""
        return float(self.config.get("temperature", 1.0))

    def predict_piece(self, score: Score) -> np.ndarray:
        """Class probabilities of a piece: its excerpts' log-probabilities averaged, then
        calibrated by :attr:`temperature`."""
        x = np.asarray([piece_features(c) for c in excerpts(score, max_crops=32)], float)
        return calibrated(self.log_proba(x).mean(axis=0), self.temperature)

    def save(self, folder: str | Path) -> Path:
        from safetensors.numpy import save_file

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        dtypes = {"feature": np.int32, "threshold": np.float64, "missing_left": np.uint8, "left": np.int32,
                  "right": np.int32, "is_leaf": np.uint8, "value": np.float32, "roots": np.int32,
                  "baseline": np.float64}
        save_file({k: np.ascontiguousarray(v, dtypes[k]) for k, v in self.trees.items()},
                  str(out / "model.safetensors"))
        write_json(out / "config.json", {**self.config, "task": self.task, "classes": self.classes,
                                         "features": FEATURES, "kind": "tunesmith-classifier"})
        return out

    @classmethod
    def load(cls, folder: str | Path) -> Classifier:
        from safetensors.numpy import load_file

        p = Path(folder)
        try:
            cfg = json.loads((p / "config.json").read_text())
            w = load_file(str(p / "model.safetensors"))
        except (OSError, json.JSONDecodeError, ValueError) as e:
            raise BadInputError(p, f"not a tunesmith classifier ({e})") from None
        if cfg.get("kind") != "tunesmith-classifier":
            raise BadInputError(p, "not a tunesmith classifier (config.json has no kind 'tunesmith-classifier')")
        if cfg.get("features") != FEATURES:
            raise BadInputError(p, f"made for features '{cfg.get('features')}', this tunesmith computes "
                                f"'{FEATURES}'; retrain it with 'tunesmith classify train'")
        missing = [k for k in (*_TREE_FIELDS, "roots", "baseline") if k not in w]
        if missing:
            raise BadInputError(p, f"model.safetensors lacks {', '.join(missing)}")
        t = cfg.get("temperature", 1.0)
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.01 <= t <= 100:
            raise BadInputError(p, f"config.json's temperature must be a number from 0.01 to 100, got {t!r}")
        trees = {k: w[k].astype(np.int64) if k in ("feature", "left", "right", "roots") else w[k] for k in w}
        n = len(trees["feature"])
        if (trees["roots"].size == 0 or trees["feature"].max(initial=0) >= N_FEATURES
                or trees["left"].max(initial=0) >= n or trees["right"].max(initial=0) >= n):
            raise BadInputError(p, "model.safetensors holds inconsistent trees")
        return cls(cfg["task"], list(cfg["classes"]), trees, cfg)


SMALL_TABLE = 5000  # rows: fitted on one thread (see _fit)


def _fit(x: np.ndarray, y: np.ndarray, classes: list[str], seed: int = 0,
         weight: np.ndarray | None = None) -> Classifier:
    from sklearn.ensemble import HistGradientBoostingClassifier

    x = np.array(x, np.float64)
    x[:, np.isnan(x).all(axis=0)] = 0.0  # scikit-learn cannot bin a column with no value at all
    m = HistGradientBoostingClassifier(max_iter=MAX_ITER, learning_rate=0.1, random_state=seed)
    # One thread for a small table. The trees' OpenMP threads wait for each other by spinning, and
    # on a machine that is busy with other work (a training run beside it) they crawl: a 90-piece
    # cross-validation took 7 s alone and over 10 minutes beside a training run, 25 s on one thread.
    # On tens of thousands of rows the threads pay for themselves; the trees are the same either way.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1 if len(x) < SMALL_TABLE else None, user_api="openmp"):
        m.fit(x, y, sample_weight=weight)
    return Classifier.from_sklearn(m, classes)


def _row_weights(kind: np.ndarray) -> np.ndarray | None:
    """Training weights: a piece's excerpts 1, its short crops SHORT_WEIGHT each."""
    return None if not (kind != 0).any() else np.where(kind == 0, 1.0, SHORT_WEIGHT)


def _piece_predictions(clf: Classifier, x: np.ndarray, groups: np.ndarray) -> dict[str, np.ndarray]:
    lp = clf.log_proba(x)
    out: dict[str, list] = {}
    for g, row in zip(groups, lp):
        out.setdefault(g, []).append(row)
    return {g: np.mean(r, axis=0) for g, r in out.items()}


def _macro_f1(y: np.ndarray, p: np.ndarray, k: int) -> float:
    f = []
    for c in range(k):
        tp = np.sum((p == c) & (y == c))
        fp = np.sum((p == c) & (y != c))
        fn = np.sum((p != c) & (y == c))
        f.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(f))


def _with_interval(y: np.ndarray, p: np.ndarray, k: int, *, n_boot: int = 1000, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    acc = float(np.mean(y == p))
    f1 = _macro_f1(y, p, k)
    accs, f1s = [], []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        accs.append(np.mean(y[i] == p[i]))
        f1s.append(_macro_f1(y[i], p[i], k))
    return {"accuracy": acc, "accuracy_ci": [float(np.percentile(accs, 2.5)), float(np.percentile(accs, 97.5))],
            "macro_f1": f1, "macro_f1_ci": [float(np.percentile(f1s, 2.5)), float(np.percentile(f1s, 97.5))]}


def calibrated(lp: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Probabilities from (unnormalised) log-probabilities divided by ``temperature``; rows of
    a 2-D array each."""
    z = np.asarray(lp, float) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


def fit_temperature(lp: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of the true classes ``y`` under
    the pieces' log-probabilities ``lp`` (pieces × classes) — temperature scaling (Guo et al.,
    2017). Boosted trees fitted to their training pieces are sure of themselves: out of fold, the
    region classifier gave its first class 0.9 or more for 3,222 of 4,217 pieces, of which 0.78 were
    right (a folk jig came out "Deutschland 0.99"). One scalar keeps the ranking (the accuracy) and
    makes "0.8" mean about 8 in 10: there, expected calibration error 0.228 → 0.012."""
    from scipy.optimize import minimize_scalar

    lp, y = np.asarray(lp, float), np.asarray(y)

    def nll(log_t: float) -> float:
        return negative_log_likelihood(calibrated(lp, float(np.exp(log_t))), y)

    return float(np.exp(minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded").x))


def negative_log_likelihood(p: np.ndarray, y: np.ndarray) -> float:
    """Mean −log probability of the true class (nats)."""
    return float(-np.mean(np.log(np.maximum(p[np.arange(len(y)), y], 1e-12))))


CALIBRATION_BINS = 10


def reliability(p: np.ndarray, y: np.ndarray, bins: int = CALIBRATION_BINS) -> dict:
    """How far the first class's probability is from how often it is right: the expected
    calibration error (the pieces' weighted mean of |accuracy − confidence| over equal-width
    confidence bins) and each bin's (pieces, mean confidence, accuracy)."""
    conf = p.max(axis=1)
    right = p.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            rows.append([int(m.sum()), float(conf[m].mean()), float(right[m].mean())])
            ece += m.mean() * abs(conf[m].mean() - right[m].mean())
        else:
            rows.append([0, None, None])
    return {"ece": float(ece), "nll": negative_log_likelihood(p, y), "bins": rows}


def cross_validate(t: Table, *, folds: int = FOLDS, seed: int = 0, progress: bool = True,
                   short_crops: bool = True) -> dict:
    """Piece-level accuracy and macro-F1 (95% bootstrap intervals) of the model and of the
    two baselines, folds grouped by piece; the confusion matrix of the model. A piece is
    judged by its excerpts (kind 0), as :meth:`Classifier.predict_piece` judges a file; the
    short crops of the held-out pieces (:func:`short_excerpts`) are judged each alone, as a
    user's phrase would be (``short_excerpts`` in the report). ``short_crops``: whether the
    training folds hold them too (as :func:`train_task` fits), or only the excerpts."""
    from sklearn.model_selection import StratifiedGroupKFold
    from tqdm import tqdm

    classes = sorted(set(t.label))
    k = len(classes)
    cidx = {c: i for i, c in enumerate(classes)}
    y_rows = np.array([cidx[c] for c in t.label])
    main = t.kind == 0
    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    truth, pred, pred_simple, pred_major, oof, fold_of = {}, {}, {}, {}, {}, {}
    short: dict[int, list] = {b: [] for b in SHORT_BARS}  # (true class, log-probabilities, fold) per crop
    for f, (tr, te) in enumerate(tqdm(list(cv.split(t.x[main], y_rows[main], t.group[main])), desc="cross-validation",
                                      unit="fold", disable=not progress)):
        held = set(t.group[main][te])
        te = np.flatnonzero(np.isin(t.group, list(held)))
        train = ~np.isin(t.group, list(held))
        tr = np.flatnonzero(train if short_crops else train & main)
        full = _fit(t.x[tr], t.label[tr], classes, seed, weight=_row_weights(t.kind[tr]))
        simple = _fit_linear(simple_features(t.x[tr]), t.label[tr], classes)
        # the majority class by pieces in the training folds
        tr_pieces = dict(zip(t.group[tr], y_rows[tr]))
        major = np.bincount(list(tr_pieces.values()), minlength=k).argmax()
        for b in SHORT_BARS:
            rows = te[t.kind[te] == b]
            if len(rows):
                short[b] += [(int(y), lp, f) for y, lp in zip(y_rows[rows], full.log_proba(t.x[rows]))]
        te = te[main[te]]
        for g, lp in _piece_predictions(full, t.x[te], t.group[te]).items():
            pred[g] = int(lp.argmax())
            oof[g], fold_of[g] = lp, f
        for g, lp in _piece_predictions(simple, simple_features(t.x[te]), t.group[te]).items():
            pred_simple[g] = int(lp.argmax())
        for g, y in zip(t.group[te], y_rows[te]):
            truth[g] = int(y)
            pred_major[g] = int(major)
    gs = sorted(truth)
    y = np.array([truth[g] for g in gs])
    conf = np.zeros((k, k), np.int64)
    for g in gs:
        conf[truth[g], pred[g]] += 1
    counts = np.bincount(y, minlength=k)
    # calibration, out of fold: each fold's pieces scaled by the temperature fitted on the other
    # folds' (so that the figure "after" is not fitted to the pieces it is measured on)
    lp = np.array([oof[g] for g in gs])
    fo = np.array([fold_of[g] for g in gs])
    scaled = np.zeros_like(lp)
    for f in range(folds):
        m = fo == f
        if m.any():
            scaled[m] = calibrated(lp[m], fit_temperature(lp[~m], y[~m]))
    temperature = fit_temperature(lp, y)
    temps = [fit_temperature(lp[fo != f], y[fo != f]) for f in range(folds)]
    by_length = {}
    for b, rows in short.items():
        if rows:  # each crop alone, scaled by the temperature fitted on the other folds' pieces
            ys = np.array([r[0] for r in rows])
            ps = np.array([calibrated(r[1], temps[r[2]]) for r in rows])
            by_length[str(b)] = {"excerpts": len(rows), **_with_interval(ys, ps.argmax(axis=1), k),
                                 "calibration": reliability(ps, ys)}
    return {"classes": classes, "pieces": len(gs), "excerpts": int(main.sum()), "folds": folds,
            "short_crops_in_training": short_crops, "short_excerpts": by_length,
            "training_rows": int(len(t.x) if short_crops else main.sum()),
            "calibration": {"temperature": round(temperature, 4), "before": reliability(calibrated(lp), y),
                            "after": reliability(scaled, y)},
            "pieces_per_class": {c: int(n) for c, n in zip(classes, counts)},
            "model": _with_interval(y, np.array([pred[g] for g in gs]), k),
            "simple_baseline": _with_interval(y, np.array([pred_simple[g] for g in gs]), k),
            "majority_baseline": _with_interval(y, np.array([pred_major[g] for g in gs]), k),
            "confusion": conf.tolist()}


def save_confusion_png(report: dict, path: str | Path, title: str = "") -> Path:
    """The cross-validated confusion matrix, rows normalised, counts written in the cells."""
    import matplotlib

    from tunesmith.music.plot import save_figure

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conf = np.asarray(report["confusion"], float)
    classes = report["classes"]
    norm = conf / np.maximum(conf.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.55 * len(classes) + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(classes)):
        for j in range(len(classes)):
            if conf[i, j]:
                ax.text(j, i, f"{int(conf[i, j])}", ha="center", va="center", fontsize=8,
                        color="white" if norm[i, j] > 0.5 else "black")
    m = report["model"]
    ax.set_title(f"{title}  accuracy {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f}".strip(), fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    fig.tight_layout()
    return save_figure(fig, path)


def save_reliability_png(report: dict, path: str | Path, title: str = "") -> Path:
    """The reliability diagram of the cross-validated pieces: how often the first class is right
    against the probability given it, before and after the temperature (a calibrated
    classifier's points lie on the diagonal), each bin's pieces drawn as its point's size."""
    import matplotlib

    from tunesmith.music.plot import save_figure

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cal = report["calibration"]
    fig, ax = plt.subplots(figsize=(5.2, 5))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="calibrated")
    n = max(sum(b[0] for b in cal["before"]["bins"]), 1)
    for key, color, label in (("before", "tab:red", "averaged log-probabilities"),
                              ("after", "tab:blue", f"temperature {cal['temperature']:.2f}")):
        pts = [b for b in cal[key]["bins"] if b[0]]
        x, y, w = [b[1] for b in pts], [b[2] for b in pts], [b[0] for b in pts]
        ax.plot(x, y, color=color, lw=1.2, label=f"{label} (ECE {cal[key]['ece']:.3f})")
        ax.scatter(x, y, s=[20 + 400 * v / n for v in w], color=color, alpha=0.6, zorder=3)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("probability of the first class")
    ax.set_ylabel("how often it is the true class")
    ax.set_title(f"{title}  calibration, {report['folds']}-fold cross-validation".strip(), fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def _card(task: Task, report: dict, seconds: float) -> str:
    def row(name, r):
        a, f = r["accuracy_ci"], r["macro_f1_ci"]
        return f"| {name} | {r['accuracy']:.3f} [{a[0]:.3f}, {a[1]:.3f}] | {r['macro_f1']:.3f} [{f[0]:.3f}, {f[1]:.3f}] |"

    per = ", ".join(f"{c} {n}" for c, n in report["pieces_per_class"].items())
    return "\n".join([
        f"# tunesmith classifier: {task.name}",
        "",
        f"Predicts {task.description}.",
        "",
        "## Data",
        f"Corpora (music21's, prepared with `tunesmith data prepare`, duplicates merged by content hash): "
        f"{', '.join(task.sources)}. {report['pieces']} pieces ({per}); long pieces cut into up to "
        f"{MAX_CROPS} excerpts of {CROP_BARS} bars, {report['excerpts']} rows in all; and, so that a phrase "
        f"is not read by its length, one crop of {' and one of '.join(map(str, SHORT_BARS))} bars from each "
        f"piece longer than that, weighted {SHORT_WEIGHT} each ({report.get('training_rows', report['excerpts'])} "
        "training rows).",
        "",
        "## Recipe",
        f"Features `{FEATURES}` (tunesmith.mir.features); gradient-boosted trees (scikit-learn's "
        f"HistGradientBoostingClassifier, up to {MAX_ITER} iterations, learning rate 0.1, default leaves). A "
        "piece's probabilities average its excerpts' log-probabilities. Weights: `model.safetensors` (the trees "
        "as arrays; no pickle).",
        f"Cross-validation and final fit took {seconds:.0f} s on CPU.",
        "",
        f"## Figures ({report['folds']}-fold cross-validation grouped by piece, per piece, 95% bootstrap intervals)",
        "",
        "| | accuracy | macro-F1 |",
        "| --- | --- | --- |",
        row("this model", report["model"]),
        row("simple-feature baseline (logistic regression on 5 global statistics)", report["simple_baseline"]),
        row("majority class", report["majority_baseline"]),
        "",
        "Confusion matrix: `confusion.png`.",
        "",
        *_short_lines(report),
        *_calibration_lines(report),
        "",
        "Re-create with `tunesmith classify train --task " + task.name + " --out FOLDER`.",
        "",
    ])


def _short_lines(report: dict) -> list[str]:
    short = report.get("short_excerpts")
    if not short:
        return []
    lines = ["## Short excerpts",
             "One crop of each length from each held-out piece longer than that (a place drawn from its content "
             "hash), classified alone as `tunesmith classify` classifies a phrase:", "",
             "| excerpt | crops | accuracy | macro-F1 | expected calibration error |", "| --- | --- | --- | --- | --- |"]
    for b, r in short.items():
        a, f = r["accuracy_ci"], r["macro_f1_ci"]
        lines.append(f"| {b} bars | {r['excerpts']} | {r['accuracy']:.3f} [{a[0]:.3f}, {a[1]:.3f}] | "
                     f"{r['macro_f1']:.3f} [{f[0]:.3f}, {f[1]:.3f}] | {r['calibration']['ece']:.3f} |")
    return lines + [""]


def _calibration_lines(report: dict) -> list[str]:
    cal = report.get("calibration")
    if not cal:
        return []
    b, a = cal["before"], cal["after"]
    return [
        "## Calibration",
        f"A piece's probabilities are its excerpts' averaged log-probabilities divided by a temperature, "
        f"{cal['temperature']:.2f}, fitted to the cross-validated pieces (the negative log-likelihood of their "
        "true classes at its least). Out of fold — each fold scaled by the temperature fitted on the others:",
        "",
        "| | expected calibration error | negative log-likelihood (nats) |",
        "| --- | --- | --- |",
        f"| averaged log-probabilities | {b['ece']:.3f} | {b['nll']:.3f} |",
        f"| with the temperature | {a['ece']:.3f} | {a['nll']:.3f} |",
        "",
        f"Expected calibration error: the pieces' mean gap between the first class's probability and how "
        f"often it is right, over {CALIBRATION_BINS} bins of probability. Reliability diagram: `reliability.png`.",
    ]


def train_task(task_name: str, out: str | Path, *, force: bool = False, folds: int = FOLDS,
               progress: bool = True) -> dict:
    """Cross-validate, fit on everything and write the classifier folder (model, config,
    card, confusion PNG). Refuses to overwrite an existing classifier unless ``force``."""
    task = task_of(task_name)
    out = Path(out)
    if (out / "model.safetensors").exists() and not force:
        raise OptionError("--out", f"'{out}' already holds a classifier; choose another folder or add --force")
    if folds < 2:
        raise OptionError("--folds", "needs at least 2 folds")
    t0 = time.time()
    t = task_table(task, progress=progress)
    if len(set(t.label)) < 2:
        raise BadInputError(task.name, "fewer than two classes have enough pieces")
    report = cross_validate(t, folds=folds, progress=progress)
    clf = _fit(t.x, t.label, report["classes"], weight=_row_weights(t.kind))
    clf.task = task.name
    seconds = time.time() - t0
    clf.config = {"cv": report, "temperature": report["calibration"]["temperature"], "crop_bars": CROP_BARS,
                  "max_crops": MAX_CROPS, "short_bars": list(SHORT_BARS), "max_iter": MAX_ITER, "sources": list(task.sources),
                  "description": task.description, "seconds": round(seconds, 1),
                  "trained": time.strftime("%Y-%m-%d")}
    with replaced_folder(out) as tmp:  # no half-written classifier, ever
        clf.save(tmp)
        save_confusion_png(report, tmp / "confusion.png", title=task.name)
        save_reliability_png(report, tmp / "reliability.png", title=task.name)
        atomic_write_text(tmp / "README.md", _card(task, report, seconds))
    return report


# --------------------------------------------------------------------------- predicting


def load_classifier(task_or_path: str) -> Classifier:
    """A bundled classifier by task name, or a classifier folder."""
    p = Path(task_or_path)
    if (p / "config.json").is_file():
        return Classifier.load(p)
    if task_or_path in TASKS:
        folder = BUNDLED_DIR / task_or_path
        if not (folder / "model.safetensors").is_file():
            raise OptionError("--task", f"no bundled classifier for '{task_or_path}'; train one with "
                              f"'tunesmith classify train --task {task_or_path} --out FOLDER'")
        return Classifier.load(folder)
    raise OptionError("--task", f"'{task_or_path}' is neither a task ({', '.join(TASKS)}) nor a classifier folder")


@dataclass
class Prediction:
    file: str
    piece: int  # 1-based within the file
    title: str
    probabilities: dict[str, float]

    @property
    def best(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)

    def to_dict(self) -> dict:
        return {"file": self.file, "piece": self.piece, "title": self.title, "best": self.best,
                "probabilities": self.probabilities}


def classify_files(paths: list[Path], clf: Classifier, *, limits: Limits | None = None,
                   errors: list | None = None) -> list[Prediction]:
    """Predictions for every piece of every file; unreadable files and pieces the classifiers
    cannot judge (:func:`not_classifiable`) go to ``errors`` (as (file, message)) when a list is
    given, else raise."""
    out = []
    for f in paths:
        try:
            res = read_pieces(f, limits=limits)
        except BadInputError as e:
            if errors is None:
                raise
            errors.append((str(f), str(e)))
            continue
        for i, s in enumerate(res.scores):
            why = not_classifiable(s)
            if why is not None:
                err = BadInputError(f"{f}" + (f" #{i + 1}" if len(res.scores) > 1 else ""), why)
                if errors is None:
                    raise err
                errors.append((err.path, str(err)))
                continue
            p = clf.predict_piece(s)
            out.append(Prediction(str(f), i + 1, s.meta.title or Path(f).stem,
                                  {c: float(v) for c, v in sorted(zip(clf.classes, p), key=lambda a: -a[1])}))
    return out


def not_classifiable(score: Score) -> str | None:
    """Why the classifiers cannot judge ``score`` (None: they can). The classes are closed sets, so
    a piece of a few notes (or drums alone) would still get a confident-looking nearest class; and
    the classifiers learned scores, while a transcription of several voices carries the overtones and
    octave stops it heard as notes (bwv269 on the piano came out "Mozart 0.62")."""
    voices = several_voices_heard(score)
    if voices is not None:
        return (f"a recording of several voices (two notes at {voices:.0%} of its onsets): its transcription "
                "misleads classifiers that learned scores; classify its score, or a recording of one line")
    n = pitched_notes(score)
    if n < MIN_NOTES:
        return f"{n} pitched note{'s' if n != 1 else ''}: too few to classify (at least {MIN_NOTES})"
    return None


def pitched_notes(score: Score) -> int:
    """How many notes of ``score`` have a pitch (drum tracks' notes do not)."""
    return sum(len(t.notes) for t in score.music.tracks if not t.is_drum)


def files_in(target: str | Path) -> list[Path]:
    p = Path(target)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in READABLE_EXTS)
        if not files:
            raise BadInputError(p, f"no music files in this folder (readable: {', '.join(sorted(READABLE_EXTS))})")
        return files
    if not p.exists():
        raise BadInputError(p, "no such file or folder")
    return [p]


def classify(target: str | Path, *, task: str = "composer", limits: Limits | None = None) -> list[Prediction]:
    """Class probabilities for every piece in a file or folder, from the bundled
    classifier of ``task`` (or a classifier folder given as ``task``)."""
    clf = load_classifier(task)
    return classify_files(files_in(target), clf, limits=limits)

