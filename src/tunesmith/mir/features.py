"""The feature layer shared by classification, content similarity and recommendation.

One fixed vector per piece (or excerpt), :data:`FEATURES` = ``tunesmith-mir-features-v1``:

- the evaluation embedding ``tunesmith-features-v1`` (62 numbers: tonic-rotated
  pitch-class histogram, note-length histogram, melodic-interval histogram and 13
  length-independent scalars; see :mod:`tunesmith.evaluate.compare`);
- register and texture: mean and spread of pitch (in octaves), lowest and highest
  pitch, voices holding notes, most notes sounding at once, major/minor;
- the meter, one-hot over the common ones;
- where onsets fall inside the beat (on it, on the half, quarters, thirds, other) and
  the share of notes starting on a downbeat;
- the vertical sonorities: interval classes 0–6 between notes sounding together;
- melodic n-grams of the top voice, hashed as the search index hashes them
  (:func:`tunesmith.mir.search.feature_ids`), square-rooted and normalised.

No learned parts, nothing downloaded; bump the version whenever a definition changes.
"""

from __future__ import annotations

import numpy as np

from tunesmith.evaluate.compare import embed, embedding_extras
from tunesmith.evaluate.metrics import all_metrics, extract_notes
from tunesmith.mir.analysis import melody_line
from tunesmith.mir.search import DIM, feature_ids
from tunesmith.music.keys import estimate_key
from tunesmith.music.score import Score

FEATURES = "tunesmith-mir-features-v1"
METERS = ("2/4", "3/4", "4/4", "6/8", "3/8", "2/2", "3/2", "4/2", "9/8", "12/8")
_BEAT_POS = (0.0, 0.5, 0.25, 0.75, 1 / 3, 2 / 3)

GROUPS = {"embedding": 62, "register": 7, "meter": len(METERS) + 1, "onsets": len(_BEAT_POS) + 2,
          "sonority": 7, "ngrams": DIM}
N_FEATURES = sum(GROUPS.values())
# Named columns (the 13 scalars close the embedding, in compare._EMBED_SCALARS order)
_SCALARS = GROUPS["embedding"] - 13
AVERAGE_IOI = _SCALARS + 2
NOTES_PER_BAR = _SCALARS + 4
MEAN_PITCH = GROUPS["embedding"]  # the register block: mean, spread, lowest, highest, voices, most at once, major
PITCH_SPREAD = MEAN_PITCH + 1
VOICES = MEAN_PITCH + 4
MAJOR = MEAN_PITCH + 6
METER = MEAN_PITCH + GROUPS["register"]  # one-hot over METERS, then "other"
# The "simple-feature baseline" of classification: a handful of global statistics.
SIMPLE = ("mean pitch", "pitch spread", "voices", "notes per bar", "average IOI")


def _register(n, pitched) -> np.ndarray:
    p = n.pitch[pitched].astype(float)
    voices = len(np.unique(n.track[pitched]))
    s, e = n.start[pitched], n.end[pitched]
    order = np.argsort(np.r_[s, e], kind="stable")
    steps = np.r_[np.ones(len(s)), -np.ones(len(e))][order]
    most = float(np.max(np.cumsum(steps))) if len(steps) else 0.0
    major = 0.0
    if len(p):
        _, mode, _ = estimate_key(n.pitch[pitched], (e - s).astype(float))
        major = float(mode == "major")
    return np.array([p.mean() / 12 if len(p) else 5.0, p.std() / 12 if len(p) else 0.0,
                     p.min() / 12 if len(p) else 5.0, p.max() / 12 if len(p) else 5.0,
                     min(voices, 8) / 4, min(most, 8) / 4, major])


def _meter(n) -> np.ndarray:
    den = round(4 * n.tpq * n.beats_per_bar / n.bar_ticks) if n.bar_ticks else 4
    name = f"{n.beats_per_bar}/{den}"
    v = np.zeros(len(METERS) + 1)
    v[METERS.index(name) if name in METERS else len(METERS)] = 1.0
    return v


def _onsets(n, pitched) -> np.ndarray:
    s = np.unique(n.start[pitched])
    v = np.zeros(len(_BEAT_POS) + 2)
    if not len(s):
        return v
    frac = (s % n.tpq) / n.tpq
    hit = np.zeros(len(s), bool)
    for i, f in enumerate(_BEAT_POS):
        m = np.abs(frac - f) < 0.02
        v[i] = m.mean()
        hit |= m
    v[len(_BEAT_POS)] = 1.0 - hit.mean()
    v[-1] = np.mean(s % n.bar_ticks == 0) if n.bar_ticks else 0.0
    return v


def _sonority(n, pitched) -> np.ndarray:
    """Interval classes between pairs of notes sounding at each onset."""
    h = np.zeros(7)
    s, e, p = n.start[pitched], n.end[pitched], n.pitch[pitched]
    times = np.unique(s)
    if len(times) > 400:  # enough to characterise a texture; long pieces are sampled evenly
        times = times[np.linspace(0, len(times) - 1, 400).astype(int)]
    for t in times:
        sounding = p[(s <= t) & (e > t)]
        if len(sounding) < 2:
            continue
        d = np.abs(sounding[:, None] - sounding[None, :])[np.triu_indices(len(sounding), 1)] % 12
        h += np.bincount(np.minimum(d, 12 - d), minlength=7)[:7]
    return h / h.sum() if h.sum() else h


def _ngrams(n) -> np.ndarray:
    idx = melody_line(n, hide_under=False)  # as the v1 vector was defined (the bundled classifiers read it)
    p = n.pitch[idx]
    if len(p):
        p = p[np.r_[True, p[1:] != p[:-1]]]
    v = np.sqrt(np.bincount(feature_ids(p), minlength=DIM).astype(float))
    norm = np.linalg.norm(v)
    return v / norm if norm else v


def piece_features(score: Score) -> np.ndarray:
    """The ``tunesmith-mir-features-v1`` vector of one piece or excerpt (NaN where a
    metric is undefined, e.g. intervals of a one-note piece)."""
    n = extract_notes(score)
    pitched = n.pitched
    emb = embed([all_metrics(n)], [embedding_extras(n)])[0]
    out = np.concatenate([emb, _register(n, pitched), _meter(n), _onsets(n, pitched), _sonority(n, pitched),
                          _ngrams(n)])
    assert len(out) == N_FEATURES
    return out


def simple_features(x: np.ndarray) -> np.ndarray:
    """The baseline's columns of feature rows: mean pitch, pitch spread, voices, notes per
    bar and average IOI."""
    return x[:, [MEAN_PITCH, PITCH_SPREAD, VOICES, NOTES_PER_BAR, AVERAGE_IOI]]
