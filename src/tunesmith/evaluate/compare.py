"""Comparing a set of generated pieces with a reference set.

- :func:`mgeval_compare`: Yang & Lerch's method per feature — intra-set distances
  (every pair within the reference set: leave-one-out) and inter-set distances
  (every generated piece against every reference piece), each smoothed with a
  Gaussian KDE; the KL divergence KL(intra-reference ‖ inter-set) and the
  overlapping area of the two densities. OA near 1 and KL near 0 mean the
  generated set sits among the reference pieces the way they sit among themselves.
- :func:`frechet` : the Fréchet distance between Gaussians fitted to the two sets
  in the fixed feature embedding :data:`EMBEDDING` (no download, no training), with
  a bootstrap 95% interval.
- :func:`two_sample_test`: a logistic-regression classifier trained to tell
  generated from reference pieces; its cross-validated accuracy (0.5 means the sets
  cannot be told apart) and a binomial test against chance.
"""

from __future__ import annotations

import math

import numpy as np

from tunesmith.evaluate.metrics import SCALAR_METRICS, VECTOR_METRICS

# Features compared one by one (mgeval's table): scalars and flattened vectors.
COMPARED = list(SCALAR_METRICS) + list(VECTOR_METRICS)

# The embedding for the Fréchet distance and the two-sample test. Bump the version
# whenever its definition changes, so that reported distances stay comparable.
EMBEDDING = "tunesmith-features-v1"
EMBEDDING_DOC = (
    "tunesmith-features-v1: 62 numbers per piece — the 12-bin pitch-class histogram rotated "
    "so that the estimated tonic comes first, the 12-bin note-length histogram, the 25-bin "
    "histogram of melodic intervals −12…+12 between consecutive notes of each voice, and 13 "
    "length-independent scalars (pitch range, average pitch interval, average IOI, "
    "pitches and notes per bar, pitch and pitch-class entropy, scale consistency, empty-beat "
    "rate, polyphony, polyphony rate, groove consistency, tonal distance); each dimension "
    "z-scored with the reference set's mean and standard deviation (the latter at least 0.01), "
    "NaN → the reference mean."
)
SD_FLOOR = 0.01
_EMBED_SCALARS = ["pitch_range", "average_pitch_interval", "average_ioi", "bar_pitch_count_mean",
                  "bar_note_count_mean", "pitch_entropy", "pitch_class_entropy", "scale_consistency",
                  "empty_beat_rate", "polyphony", "polyphony_rate", "groove_consistency", "tonal_distance"]


def feature_matrix(per_piece: list[dict], name: str) -> np.ndarray:
    """Stack one feature over pieces: (n, d), vectors flattened."""
    rows = [np.atleast_1d(np.asarray(m[name], float)).ravel() for m in per_piece]
    return np.stack(rows) if rows else np.zeros((0, 1))


def embed(per_piece: list[dict], extra: list[dict]) -> np.ndarray:
    """Raw (un-normalised) embedding rows. ``extra`` holds per piece the tonic-rotated
    pitch-class histogram and the interval histogram (see :func:`embedding_extras`)."""
    rows = []
    for m, e in zip(per_piece, extra):
        rows.append(np.concatenate([e["pch_tonic"], np.nan_to_num(np.asarray(m["note_length_histogram"]), nan=0.0),
                                    e["interval_hist"], [m[k] for k in _EMBED_SCALARS]]))
    return np.asarray(rows, float)


def embedding_extras(notes) -> dict:
    """The two parts of the embedding that are not plain metrics."""
    from tunesmith.evaluate.metrics import _consecutive_pairs
    from tunesmith.music.keys import estimate_key

    p = notes.pitch[notes.pitched]
    h = np.bincount(p % 12, minlength=12).astype(float)
    if h.sum():
        tonic, _, _ = estimate_key(p, (notes.end - notes.start)[notes.pitched].astype(float))
        h = np.roll(h / h.sum(), -tonic)
    i, j = _consecutive_pairs(notes)
    iv = np.clip(notes.pitch[j] - notes.pitch[i], -12, 12) + 12
    ih = np.bincount(iv, minlength=25).astype(float)
    return {"pch_tonic": h, "interval_hist": ih / ih.sum() if ih.sum() else ih}


def standardize(gen: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = np.nanmean(ref, axis=0)
    mu = np.where(np.isfinite(mu), mu, 0.0)
    sd = np.nanstd(ref, axis=0)
    # A floor of 0.01: histogram bins and rates that are almost constant in the reference
    # (a tritone leap in Bach, an empty beat) would otherwise dominate every distance.
    sd = np.where(np.isfinite(sd), np.maximum(sd, SD_FLOOR), 1.0)

    def z(a):
        a = np.where(np.isfinite(a), a, mu)
        return (a - mu) / sd

    return z(gen), z(ref)


# --------------------------------------------------------------------------- mgeval


def _pairwise(a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """Euclidean distances: within ``a`` (each unordered pair once) or between a and b."""
    if b is None:
        d = np.sqrt(np.maximum(((a[:, None, :] - a[None, :, :]) ** 2).sum(-1), 0))
        iu = np.triu_indices(len(a), k=1)
        return d[iu]
    return np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1), 0)).ravel()


def _kde_pdf(samples: np.ndarray, grid: np.ndarray) -> np.ndarray | None:
    from scipy.stats import gaussian_kde

    if len(samples) < 2 or np.ptp(samples) < 1e-12:
        return None
    pdf = gaussian_kde(samples)(grid)
    return pdf / max(np.trapezoid(pdf, grid), 1e-300)


def kl_and_overlap(intra: np.ndarray, inter: np.ndarray, n_grid: int = 256) -> tuple[float, float, dict]:
    """KL(intra ‖ inter) and the overlapping area ∫ min(p, q) of the two KDE densities."""
    both = np.concatenate([intra, inter])
    if not len(intra) or not len(inter):
        return math.nan, math.nan, {}
    lo, hi = both.min(), both.max()
    pad = 0.1 * (hi - lo) + 1e-9
    grid = np.linspace(lo - pad, hi + pad, n_grid)
    p, q = _kde_pdf(intra, grid), _kde_pdf(inter, grid)
    if p is None or q is None:  # a degenerate set (all distances equal): compare the values
        same = np.isclose(np.median(intra), np.median(inter))
        return (0.0 if same else math.inf), (1.0 if same else 0.0), {}
    eps = 1e-12
    kl = float(np.trapezoid(p * np.log((p + eps) / (q + eps)), grid))
    oa = float(np.trapezoid(np.minimum(p, q), grid))
    return max(kl, 0.0), min(oa, 1.0), {"grid": grid, "intra": p, "inter": q}


def mgeval_compare(gen: list[dict], ref: list[dict], *, max_pieces: int = 300, max_distances: int = 5000,
                   seed: int = 0) -> dict[str, dict]:
    """Per feature: mean/std of the feature in each set, intra-set distance summaries,
    KL divergence and overlapping area. Sets larger than ``max_pieces`` are subsampled
    (fixed seed), distance lists larger than ``max_distances`` too, before the KDE."""
    rng = np.random.default_rng(seed)

    def sub(items, k):
        if len(items) <= k:
            return items
        return [items[i] for i in np.sort(rng.choice(len(items), k, replace=False))]

    g, r = sub(gen, max_pieces), sub(ref, max_pieces)
    out = {}
    for name in COMPARED:
        fg, fr = feature_matrix(g, name), feature_matrix(r, name)
        fg = fg[np.isfinite(fg).all(axis=1)]
        fr = fr[np.isfinite(fr).all(axis=1)]
        def stat(f, fn):  # None for a vector feature; NaN for a scalar one undefined on every piece
            return None if f.shape[1] != 1 else float(fn(f)) if f.size else math.nan

        row = {"generated_mean": stat(fg, np.mean), "generated_std": stat(fg, np.std),
               "reference_mean": stat(fr, np.mean), "reference_std": stat(fr, np.std),
               "n_generated": len(fg), "n_reference": len(fr)}
        if len(fg) < 2 or len(fr) < 3:
            row.update(kl=math.nan, overlap=math.nan)
            out[name] = row
            continue
        intra_ref = _pairwise(fr, None)
        intra_gen = _pairwise(fg, None)
        inter = _pairwise(fg, fr)
        pick = [d if len(d) <= max_distances else rng.choice(d, max_distances, replace=False)
                for d in (intra_ref, intra_gen, inter)]
        kl, oa, curves = kl_and_overlap(pick[0], pick[2])
        row.update(kl=kl, overlap=oa, intra_reference_mean=float(intra_ref.mean()),
                   intra_generated_mean=float(intra_gen.mean()), inter_mean=float(inter.mean()))
        row["_curves"] = curves
        row["_intra_generated"] = pick[1]
        out[name] = row
    return out


# --------------------------------------------------------------------------- Fréchet


def _frechet(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    # A small ridge keeps the square root defined: histogram dimensions sum to one and
    # some bins are always empty, so the raw covariances are singular.
    ridge = np.eye(a.shape[1]) * 1e-6
    s1, s2 = np.cov(a, rowvar=False) + ridge, np.cov(b, rowvar=False) + ridge
    # tr √(S1 S2) = Σ √λ over the eigenvalues of S1 S2 (similar to the PSD S1^½ S2 S1^½, so
    # real and ≥ 0 up to rounding): one eigenvalue call instead of a matrix square root.
    lam = np.linalg.eigvals(s1 @ s2).real
    tr_covmean = float(np.sqrt(np.clip(lam, 0, None)).sum())
    return max(0.0, float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_covmean))


def frechet(gen: np.ndarray, ref: np.ndarray, *, n_boot: int = 200, seed: int = 0) -> dict:
    """Fréchet distance between the rows of two standardised embedding matrices with a
    bootstrap 95% percentile interval (both sets resampled with replacement). The
    Fréchet distance is biased upwards in small samples, so the interval can lie above
    the full-sample value; compare systems at equal sample sizes."""
    if len(gen) < 3 or len(ref) < 3:
        return {"value": math.nan, "ci95": [math.nan, math.nan], "embedding": EMBEDDING}
    rng = np.random.default_rng(seed)
    value = _frechet(gen, ref)
    boots = [_frechet(gen[rng.integers(0, len(gen), len(gen))], ref[rng.integers(0, len(ref), len(ref))])
             for _ in range(n_boot)]
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"value": value, "ci95": [float(lo), float(hi)], "n_boot": n_boot, "embedding": EMBEDDING,
            "n_generated": len(gen), "n_reference": len(ref)}


# --------------------------------------------------------------------------- two-sample test


def two_sample_test(gen: np.ndarray, ref: np.ndarray, *, folds: int = 5, seed: int = 0) -> dict:
    """Classifier two-sample test (Lopez-Paz & Oquab 2017): balance the two sets by
    subsampling the larger, fit a standardised logistic regression on ``folds − 1``
    folds, score the held-out fold; report the pooled held-out accuracy and the
    one-sided binomial p-value of doing better than 0.5."""
    from scipy.stats import binomtest
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    k = min(len(gen), len(ref))
    if k < folds:
        return {"accuracy": math.nan, "p_value": math.nan, "n_per_class": k}
    g = gen[rng.choice(len(gen), k, replace=False)]
    r = ref[rng.choice(len(ref), k, replace=False)]
    x = np.concatenate([g, r])
    y = np.concatenate([np.ones(k), np.zeros(k)])
    correct = 0
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        clf.fit(x[tr], y[tr])
        correct += int((clf.predict(x[te]) == y[te]).sum())
    n = len(y)
    return {"accuracy": correct / n, "p_value": float(binomtest(correct, n, 0.5, alternative="greater").pvalue),
            "n_per_class": k, "classifier": "logistic regression on " + EMBEDDING, "folds": folds}
