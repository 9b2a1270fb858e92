"""A fair yardstick: compare generated pieces with real pieces of the same shape.

- **Like with like.** :func:`reference_crops` cuts held-out real pieces into crops of
  the generated pieces' length in bars, each starting on a bar line, in the same
  meters and in the same proportions (an 8-bar 4/4 sample is never compared with a
  whole 3/4 chorale).
- **A test that does not saturate.** :func:`auc_test` fits a classifier to tell the
  two sets apart and reports the cross-validated ROC AUC with a bootstrap 95% interval
  (0.5: indistinguishable, 1: always told apart) beside the accuracy. Folds keep all
  crops of one real piece together, so the classifier cannot win by recognising a
  piece it saw in training. :func:`per_feature_tests` does the same with one feature
  at a time, so a user sees *which* features give the set away.
- **A baseline.** :func:`split_half` compares real crops with real crops (two halves
  of the held-out pieces, split by piece): what every figure is for real music.
- :func:`chord_rate`: the share of four-voice beats whose pitch classes form a triad
  or a seventh chord (complete, or without its fifth).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import symusic

from tunesmith.music.score import Meta, Score

# --------------------------------------------------------------------------- crops


def downbeats(score: Score) -> np.ndarray:
    return np.asarray(score.music.get_downbeats(), dtype=np.int64)


def bar_count(score: Score) -> int:
    """Bars that hold notes (a last bar the music only starts counts)."""
    down = downbeats(score)
    end = score.music.end()
    return int(np.searchsorted(down, end, side="left")) if len(down) else 0


def crop(score: Score, start_bar: int, n_bars: int) -> Score | None:
    """Bars ``start_bar .. start_bar + n_bars − 1`` (0-based) moved to time 0; notes that
    ring past the end are cut there. None when the piece has fewer bars."""
    down = list(downbeats(score))
    if start_bar + n_bars >= len(down):
        ts = score.music.time_signatures
        if not len(ts) or start_bar + n_bars > len(down):
            return None
        t = ts[-1]
        down.append(down[-1] + score.music.ticks_per_quarter * 4 * t.numerator // t.denominator)
    a, b = int(down[start_bar]), int(down[start_bar + n_bars])
    m = score.music
    out = symusic.Score(m.ticks_per_quarter)
    t0 = m.time_signatures[0] if len(m.time_signatures) else symusic.TimeSignature(0, 4, 4)
    for ts in m.time_signatures:
        if ts.time <= a:
            t0 = ts
    out.time_signatures.append(symusic.TimeSignature(0, t0.numerator, t0.denominator))
    qpm = m.tempos[0].qpm if len(m.tempos) else 90.0
    out.tempos.append(symusic.Tempo(0, qpm=float(qpm)))
    for tr in m.tracks:
        nt = symusic.Track(name=tr.name, program=tr.program, is_drum=tr.is_drum)
        for n in tr.notes:
            if a <= n.time < b:
                nt.notes.append(symusic.Note(n.time - a, min(n.duration, b - n.time), n.pitch, n.velocity))
        out.tracks.append(nt)  # an empty voice stays: four voices remain four
    meta = Meta.from_dict(score.meta.to_dict())
    meta.title = f"{score.meta.title or 'piece'} (bars {start_bar + 1}–{start_bar + n_bars})"
    return Score(out, meta)


def meter_of(score: Score) -> str:
    ts = score.music.time_signatures
    return f"{ts[0].numerator}/{ts[0].denominator}" if len(ts) else "4/4"


POSITIONS = ("any", "opening", "ending")


def first_full_bar(score: Score) -> int:
    """0, or 1 where the piece begins with an upbeat (its first note comes after the first
    bar's first sixteenth: a pickup bar)."""
    from tunesmith.evaluate.metrics import extract_notes

    n = extract_notes(score)
    if not n.pitched.any():
        return 0
    return int(n.start[n.pitched].min() >= n.tpq // 4)


def from_first_bar_line(score: Score, bars: int) -> Score:
    """A generated piece as the real crops are taken: from a bar line. A tune that begins with
    an upbeat has its pickup bar before the bars asked for; it is compared from its first full
    bar (the real crops at any bar miss their upbeats too)."""
    if first_full_bar(score) and bar_count(score) > bars:
        c = crop(score, 1, bars)
        if c is not None:
            return c
    return score


def reference_crops(scores: list[Score], names: list[str], *, bars: int, meters: Counter, n: int,
                    seed: int = 0, position: str = "any") -> tuple[list[Score], list[str], dict]:
    """``n`` crops of ``bars`` bars from ``scores``, in the meters of ``meters`` and in its
    proportions, spread evenly over the pieces (each piece's crops at random bar offsets,
    distinct where it is long enough). ``position``: ``any`` full bar (a pickup bar is not
    one of a piece's bars, as in notation, and a crop never starts with it), or only each piece's
    ``opening`` (its first bars) or ``ending`` (its last bars) — one crop per piece, for
    comparing pieces that begin and end as a whole piece does. Returns the crops, the name of
    each crop's piece (the group for cross-validation) and a description."""
    if position not in POSITIONS:
        raise ValueError(f"position must be one of {POSITIONS}, got {position!r}")
    rng = np.random.default_rng(seed)
    total = sum(meters.values()) or 1
    crops: list[Score] = []
    groups: list[str] = []
    per_meter = {}
    for meter, count in meters.most_common():
        want = int(round(n * count / total))
        pool = [(s, nm) for s, nm in zip(scores, names) if meter_of(s) == meter and bar_count(s) >= bars]
        per_meter[meter] = {"pieces": len(pool), "crops": 0}
        if not pool or want == 0:
            continue
        # every start bar of every piece, taken round-robin over pieces in random order
        if position == "any":  # any full bar: a pickup bar is not one of the bars (nor is a generated piece's)
            starts = [list(first_full_bar(s) + rng.permutation(max(0, bar_count(s) - bars + 1 - first_full_bar(s))))
                      for s, _ in pool]
        else:  # an opening starts at the first full bar: a pickup bar is not counted, as in notation
            starts = [[first_full_bar(s) if position == "opening" else bar_count(s) - bars] for s, _ in pool]
            starts = [st if st[0] + bars <= bar_count(s) else [] for st, (s, _) in zip(starts, pool)]
        order = list(rng.permutation(len(pool)))
        got = 0
        while got < want and any(starts):
            for i in order:
                if got >= want:
                    break
                if not starts[i]:
                    continue
                c = crop(pool[i][0], int(starts[i].pop()), bars)
                if c is not None and c.n_notes:
                    crops.append(c)
                    groups.append(pool[i][1])
                    got += 1
        per_meter[meter]["crops"] = got
    desc = {"bars": bars, "crops": len(crops), "pieces": len(set(groups)), "meters": per_meter, "position": position,
            "starts": "full bars"}  # (before 2026-11-27 a crop at any bar could begin on a pickup bar)
    return crops, groups, desc


# --------------------------------------------------------------------------- two-sample tests


def _cv_scores(x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Held-out probability of class 1 for every row, folds grouped by piece."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    p = np.zeros(len(y))
    cv = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
    for tr, te in cv.split(x, y, groups):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        clf.fit(x[tr], y[tr])
        p[te] = clf.predict_proba(x[te])[:, 1]
    return p


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(set(y)) == 2 else math.nan


def auc_test(gen: np.ndarray, ref: np.ndarray, *, gen_groups: list[str] | None = None,
             ref_groups: list[str] | None = None, folds: int = 5, seed: int = 0, n_boot: int = 1000) -> dict:
    """Classifier two-sample test: cross-validated ROC AUC (bootstrap 95% interval over
    pieces) and accuracy at 0.5, both sets balanced by subsampling the larger."""
    rng = np.random.default_rng(seed)
    k = min(len(gen), len(ref))
    if k < folds * 2:
        return {"auc": math.nan, "auc_ci95": [math.nan, math.nan], "accuracy": math.nan, "n_per_class": k}
    gi = np.sort(rng.choice(len(gen), k, replace=False))
    ri = np.sort(rng.choice(len(ref), k, replace=False))
    gg = [f"g:{gen_groups[i]}" if gen_groups else f"g:{i}" for i in gi]
    rg = [f"r:{ref_groups[i]}" if ref_groups else f"r:{i}" for i in ri]
    x = np.concatenate([gen[gi], ref[ri]])
    y = np.concatenate([np.ones(k), np.zeros(k)])
    groups = np.array(gg + rg)
    n_groups = len(set(groups))
    folds = max(2, min(folds, n_groups // 2))
    p = _cv_scores(x, y, groups, folds, seed)
    auc = _auc(y, p)
    boots = []
    for _ in range(n_boot):
        b = rng.integers(0, len(y), len(y))
        if len(set(y[b])) == 2:
            boots.append(_auc(y[b], p[b]))
    lo, hi = np.percentile(boots, [2.5, 97.5]) if boots else (math.nan, math.nan)
    acc = float(((p >= 0.5) == (y == 1)).mean())
    return {"auc": auc, "auc_ci95": [float(lo), float(hi)], "accuracy": acc, "n_per_class": k, "folds": folds,
            "classifier": "logistic regression, folds grouped by piece"}


def per_feature_tests(gen_parts: dict[str, np.ndarray], ref_parts: dict[str, np.ndarray], *,
                      gen_groups: list[str] | None = None, ref_groups: list[str] | None = None,
                      seed: int = 0) -> list[dict]:
    """:func:`auc_test` on each feature alone (no bootstrap), most telling first."""
    rows = []
    for name, g in gen_parts.items():
        r = ref_parts[name]
        res = auc_test(np.nan_to_num(g), np.nan_to_num(r), gen_groups=gen_groups, ref_groups=ref_groups,
                       seed=seed, n_boot=0)
        rows.append({"feature": name, "auc": res["auc"], "accuracy": res["accuracy"]})
    return sorted(rows, key=lambda r: -(r["auc"] if r["auc"] == r["auc"] else 0))


def split_half(ref_groups: list[str], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of two halves of the reference, split by piece."""
    rng = np.random.default_rng(seed + 1)
    pieces = sorted(set(ref_groups))
    rng.shuffle(pieces)
    first = set(pieces[: len(pieces) // 2])
    a = np.array([i for i, g in enumerate(ref_groups) if g in first], np.int64)  # empty for crops of one piece
    b = np.array([i for i, g in enumerate(ref_groups) if g not in first], np.int64)
    return a, b


# --------------------------------------------------------------------------- harmony

_CHORDS = [  # intervals above the root: triads, then sevenths (complete and without the fifth)
    (0, 4, 7), (0, 3, 7), (0, 3, 6), (0, 4, 8),
    (0, 4, 7, 10), (0, 3, 7, 10), (0, 4, 7, 11), (0, 3, 6, 10), (0, 3, 6, 9),
    (0, 4, 10), (0, 3, 10), (0, 4, 11),
]
_CHORD_SETS = {frozenset((r + i) % 12 for i in c) for c in _CHORDS for r in range(12)}


def chord_rate(notes) -> tuple[float, int]:
    """Share of beats (quarter notes) at which four voices sound and their pitch classes
    form a triad or a seventh chord; and the number of such four-voice beats."""
    from tunesmith.evaluate.theory import satb_beats

    beats = satb_beats(notes)
    if beats is None or beats.shape[1] == 0:
        return math.nan, 0
    ok = 0
    n = 0
    for col in beats.T:
        if (col < 0).any():
            continue
        n += 1
        ok += frozenset(int(p) % 12 for p in col) in _CHORD_SETS
    return (ok / n if n else math.nan), n


# --------------------------------------------------------------------------- the whole comparison


def _parts(per_piece: list[dict], extras: list[dict]) -> dict[str, np.ndarray]:
    from tunesmith.evaluate.compare import _EMBED_SCALARS

    parts = {"pitch-class histogram (tonic first)": np.stack([e["pch_tonic"] for e in extras]),
             "note-length histogram": np.stack([np.nan_to_num(np.asarray(m["note_length_histogram"], float))
                                                for m in per_piece]),
             "melodic-interval histogram": np.stack([e["interval_hist"] for e in extras])}
    for k in _EMBED_SCALARS:
        parts[k] = np.array([[float(m[k])] for m in per_piece])
    return parts


def _set_figures(notes: list, per_piece: list[dict]) -> dict:
    from tunesmith.evaluate import theory

    vl = [theory.voice_leading(n) for n in notes]
    four = [r for r in vl if not math.isnan(r["spacing"])]
    chords = [chord_rate(n) for n in notes]
    beats = sum(c[1] for c in chords)
    hits = sum(c[0] * c[1] for c in chords if c[1])
    out = {"pieces": len(notes), "four_voice_pieces": len(four),
           "chord_rate": hits / beats if beats else math.nan, "four_voice_beats": int(beats)}
    for k in theory.CHECKS:
        out[k] = float(np.mean([r[k] for r in four])) if four else math.nan
    return out


def fair_compare(gen_scores: list[Score], ref_scores: list[Score], ref_names: list[str], *,
                 bars: int | None = None, n_reference: int = 200, seed: int = 0, position: str = "any",
                 gen_groups: list[str] | None = None) -> dict:
    """Generated pieces against same-length, same-meter crops of held-out real pieces,
    with a real-against-real split-half baseline beside every figure (``position``: where
    the crops may start, see :func:`reference_crops`). ``gen_groups``: which generated
    pieces are crops of one longer piece (kept in one cross-validation fold, as the real
    crops of one piece are); by default each is its own."""
    from tunesmith.evaluate import compare, metrics

    if bars is None:
        counts = [bar_count(s) for s in gen_scores]
        bars = int(np.median(counts)) if counts else 8
    meters = Counter(meter_of(s) for s in gen_scores)
    crops, groups, desc = reference_crops(ref_scores, ref_names, bars=bars, meters=meters, n=n_reference, seed=seed,
                                          position=position)
    if len(crops) < 10:
        return {"error": f"only {len(crops)} {bars}-bar crops in the reference's meters "
                f"({', '.join(meters)}); too few to compare", "reference": desc}
    gn = [metrics.extract_notes(s) for s in gen_scores]
    rn = [metrics.extract_notes(s) for s in crops]
    gm = [metrics.all_metrics(n) for n in gn]
    rm = [metrics.all_metrics(n) for n in rn]
    gx = [compare.embedding_extras(n) for n in gn]
    rx = [compare.embedding_extras(n) for n in rn]
    ge, re_ = compare.embed(gm, gx), compare.embed(rm, rx)
    gz, rz = compare.standardize(ge, re_)
    gparts, rparts = _parts(gm, gx), _parts(rm, rx)
    a, b = split_half(groups, seed)
    ga = [groups[i] for i in a]
    gb = [groups[i] for i in b]
    half_z = compare.standardize(re_[a], re_[b])
    oa = compare.mgeval_compare(gm, rm, seed=seed)
    oa_half = compare.mgeval_compare([rm[i] for i in a], [rm[i] for i in b], seed=seed)
    keep = ("pitch_in_scale_rate", "scale_consistency", "pitch_class_histogram", "note_length_histogram",
            "pitch_range", "average_pitch_interval")
    return {
        "yardstick": "fair-v1",
        "bars": bars,
        "reference": desc,
        "generated": {"pieces": len(gen_scores), "meters": dict(meters),
                      **({"from_pieces": len(set(gen_groups))} if gen_groups else {})},
        "two_sample": auc_test(gz, rz, gen_groups=gen_groups, ref_groups=groups, seed=seed),
        "two_sample_baseline": auc_test(half_z[0], half_z[1], gen_groups=ga, ref_groups=gb, seed=seed),
        "per_feature": per_feature_tests(gparts, rparts, gen_groups=gen_groups, ref_groups=groups, seed=seed),
        "figures": _set_figures(gn, gm),
        "figures_reference": _set_figures(rn, rm),
        "figures_baseline_half": _set_figures([rn[i] for i in b], [rm[i] for i in b]),
        "overlap": {k: {"generated": oa[k].get("overlap"), "baseline": oa_half[k].get("overlap")}
                    for k in keep if k in oa},
    }
