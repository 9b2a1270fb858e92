"""Per-piece metrics: the mgeval set, the MusPy set and tonal distance.

Every metric is a pure function ``metric(score) -> float | np.ndarray`` that
returns NaN where the metric is undefined (an empty piece, a single note…).
They accept a :class:`~tunesmith.music.score.Score` or a :class:`Notes` (the
note arrays extracted once, which is what :func:`all_metrics` does so that a
thousand pieces are measured in seconds: everything here is vectorised NumPy).

References
- mgeval: L.-C. Yang and A. Lerch, "On the evaluation of generative models in
  music", Neural Computing and Applications 32, 2020 (code: RichardYang40148/mgeval).
- MusPy: H.-W. Dong, K. Chen, J. McAuley, T. Berg-Kirkpatrick, "MusPy: a toolkit
  for symbolic music generation", ISMIR 2020. The MusPy-set functions here follow
  ``muspy.metrics`` 0.5 exactly (its tick-level definitions, including that a note
  marks the beat/measure its end falls in), so figures are comparable with papers
  that used MusPy; ``tests/test_metrics.py`` checks the agreement on real files.
- Tonal distance: C. Harte, M. Sandler, M. Gasser, "Detecting harmonic change in
  musical audio", ACM MM workshop 2006 (the 6-D tonal centroid), as used by
  MuseGAN (H.-W. Dong et al., AAAI 2018).

Conventions: drum tracks are left out of every pitch metric (as MusPy does);
times are in quarter notes unless stated; the meter is the piece's first time
signature (4/4 when it has none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tunesmith.music.score import Score

# mgeval's twelve note-length classes, in quarter notes: whole, half, quarter,
# eighth, sixteenth, their dotted forms, then half/quarter/eighth triplets.
NOTE_LENGTH_CLASSES = np.array([4, 2, 1, 0.5, 0.25, 3, 1.5, 0.75, 0.375, 4 / 3, 2 / 3, 1 / 3])
NOTE_LENGTH_NAMES = ["1", "1/2", "1/4", "1/8", "1/16", "1/2.", "1/4.", "1/8.", "1/16.",
                     "1/2t", "1/4t", "1/8t"]
# Scales as pitch-class masks, C first (MusPy's major and natural minor).
_MAJOR = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], bool)
_MINOR = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0], bool)
SCALES = np.stack([np.roll(_MAJOR, r) for r in range(12)] + [np.roll(_MINOR, r) for r in range(12)])  # (24, 12)
# pretty_midi's default window for pitch-class transitions is 0.05 s, i.e. 0.1 quarter at 120 bpm.
TRANSITION_WINDOW_QUARTERS = 0.1


@dataclass
class Notes:
    """The note arrays of a piece, extracted once. Times in ticks."""

    start: np.ndarray  # int64
    end: np.ndarray  # int64
    pitch: np.ndarray  # int64
    track: np.ndarray  # int64: index of the note's track
    drum: np.ndarray  # bool
    tpq: int
    bar_ticks: int  # ticks per bar from the first time signature
    beats_per_bar: int
    key: tuple[int, str] | None  # the key named in the file's metadata, if any
    n_tracks: int

    @property
    def pitched(self) -> np.ndarray:
        return ~self.drum

    def track_notes(self, t: int) -> np.ndarray:
        """Indices of track ``t``'s notes sorted by (start, pitch)."""
        idx = np.flatnonzero(self.track == t)
        return idx[np.lexsort((self.pitch[idx], self.start[idx]))]


def notes_of(x: Score | Notes) -> Notes:
    if isinstance(x, Notes):
        return x
    return extract_notes(x)


def extract_notes(score: Score) -> Notes:
    music = score.music
    starts, ends, pitches, tracks, drums = [], [], [], [], []
    for i, tr in enumerate(music.tracks):
        if not len(tr.notes):
            continue
        a = tr.notes.numpy()
        s = a["time"].astype(np.int64)
        starts.append(s)
        ends.append(s + np.maximum(a["duration"].astype(np.int64), 0))
        pitches.append(a["pitch"].astype(np.int64))
        tracks.append(np.full(len(s), i, np.int64))
        drums.append(np.full(len(s), bool(tr.is_drum)))

    def cat(xs, dt):
        return np.concatenate(xs) if xs else np.zeros(0, dt)

    tpq = max(1, int(music.ticks_per_quarter))
    ts = music.time_signatures
    num, den = (int(ts[0].numerator), int(ts[0].denominator)) if len(ts) else (4, 4)
    num, den = max(1, num), max(1, den)
    key = None
    if score.meta.key:
        try:
            from tunesmith.music.keys import parse_key

            key = parse_key(score.meta.key)
        except Exception:  # an unreadable key name in a file's metadata: estimate instead
            key = None
    return Notes(cat(starts, np.int64), cat(ends, np.int64), cat(pitches, np.int64), cat(tracks, np.int64),
                 cat(drums, bool), tpq, max(1, round(tpq * 4 * num / den)), num, key, len(music.tracks))


# --------------------------------------------------------------------------- helpers


def _entropy_bits(counts: np.ndarray) -> float:
    total = counts.sum()
    if total < 1:
        return math.nan
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum())


def _length(n: Notes) -> int:
    """MusPy's song length: the latest note end, in ticks (all tracks)."""
    return int(n.end.max()) if len(n.end) else 0


def _covered_units(n: Notes, unit: int) -> tuple[int, int]:
    """(number of units, units touched by a note) for MusPy's empty-beat/measure rates:
    a note marks every unit from ``start // unit`` to ``end // unit`` inclusive."""
    length = _length(n)
    n_units = length // unit + 1
    delta = np.zeros(n_units + 1, np.int64)
    np.add.at(delta, n.start // unit, 1)
    np.add.at(delta, np.minimum(n.end // unit + 1, n_units), -1)
    return n_units, int(np.count_nonzero(np.cumsum(delta)[:n_units] > 0))


def _active_segments(n: Notes) -> tuple[np.ndarray, np.ndarray]:
    """Pitched notes as a piano roll compressed to change points: (segment lengths in
    ticks, number of distinct pitches sounding in each segment), covering 0..last end."""
    m = n.pitched & (n.end > n.start)
    if not m.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    s, e, p = n.start[m], n.end[m], n.pitch[m]
    times = np.unique(np.concatenate([[0], s, e, [int(n.end[n.pitched].max())]]))
    upitch, pi = np.unique(p, return_inverse=True)
    delta = np.zeros((len(times), len(upitch)), np.int64)
    np.add.at(delta, (np.searchsorted(times, s), pi), 1)
    np.add.at(delta, (np.searchsorted(times, e), pi), -1)
    active = np.cumsum(delta, axis=0)[:-1] > 0  # overlapping notes of one pitch count once
    return np.diff(times), active.sum(axis=1)


def _chroma_per_beat(n: Notes, idx: np.ndarray, n_beats: int, steps: int = 12) -> np.ndarray:
    """Duration-weighted pitch-class profile of the notes ``idx`` in each beat (quarter):
    (n_beats, 12), on a grid of ``steps`` per quarter."""
    grid = n.tpq / steps
    s = np.round(n.start[idx] / grid).astype(np.int64)
    e = np.maximum(np.round(n.end[idx] / grid).astype(np.int64), s + 1)
    total = n_beats * steps
    delta = np.zeros((total + 1, 12), np.int64)
    pc = n.pitch[idx] % 12
    np.add.at(delta, (np.minimum(s, total), pc), 1)
    np.add.at(delta, (np.minimum(e, total), pc), -1)
    roll = np.cumsum(delta, axis=0)[:total]
    return roll.reshape(n_beats, steps, 12).sum(axis=1).astype(float)


def length_class(quarters: np.ndarray) -> np.ndarray:
    """Index of the nearest of mgeval's twelve note-length classes."""
    return np.abs(np.asarray(quarters, float)[:, None] - NOTE_LENGTH_CLASSES[None, :]).argmin(axis=1)


def _consecutive_pairs(n: Notes) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) of consecutive pitched notes within each track, notes
    ordered by (start, pitch) — mgeval's note order."""
    m = n.pitched
    idx = np.flatnonzero(m)
    order = idx[np.lexsort((n.pitch[idx], n.start[idx], n.track[idx]))]
    same = n.track[order[:-1]] == n.track[order[1:]]
    return order[:-1][same], order[1:][same]


# --------------------------------------------------------------------------- mgeval set


def pitch_count(x: Score | Notes) -> float:
    """Number of distinct pitches used (mgeval "PC", total_used_pitch). NaN when empty."""
    n = notes_of(x)
    p = n.pitch[n.pitched]
    return float(len(np.unique(p))) if len(p) else math.nan


def note_count(x: Score | Notes) -> float:
    """Number of notes (mgeval "NC", total_used_note). Zero for an empty piece."""
    n = notes_of(x)
    return float(np.count_nonzero(n.pitched))


def pitch_class_histogram(x: Score | Notes) -> np.ndarray:
    """12-bin pitch-class histogram, normalised to sum 1, C first (mgeval "PCH",
    counted per note). NaNs when empty."""
    n = notes_of(x)
    h = np.bincount(n.pitch[n.pitched] % 12, minlength=12).astype(float)
    return h / h.sum() if h.sum() else np.full(12, np.nan)


def pitch_class_transition_matrix(x: Score | Notes, *, normalize: bool = True) -> np.ndarray:
    """12×12 pitch-class transition matrix (mgeval "PCTM", after pretty_midi's
    ``get_pitch_class_transition_matrix``): within each track, a transition
    pc(i) → pc(j) is counted whenever note j starts within 0.1 quarter of the end
    of note i (pretty_midi's 0.05 s at 120 bpm). Normalised to sum 1 by default;
    NaNs when there is no transition."""
    n = notes_of(x)
    out = np.zeros((12, 12))
    win = TRANSITION_WINDOW_QUARTERS * n.tpq
    for t in np.unique(n.track[n.pitched]):
        idx = n.track_notes(int(t))
        s = n.start[idx]
        lo = np.searchsorted(s, n.end[idx] - win, side="left")
        hi = np.searchsorted(s, n.end[idx] + win, side="right")
        cnt = hi - lo
        if cnt.sum() == 0:
            continue
        src = np.repeat(np.arange(len(idx)), cnt)
        dst = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi) if b > a])
        keep = src != dst
        np.add.at(out, (n.pitch[idx[src[keep]]] % 12, n.pitch[idx[dst[keep]]] % 12), 1)
    if not normalize:
        return out
    return out / out.sum() if out.sum() else np.full((12, 12), np.nan)


def pitch_range(x: Score | Notes) -> float:
    """Highest minus lowest pitch in semitones (mgeval "PR"). NaN when empty."""
    n = notes_of(x)
    p = n.pitch[n.pitched]
    return float(p.max() - p.min()) if len(p) else math.nan


def average_pitch_interval(x: Score | Notes) -> float:
    """Mean absolute interval in semitones between consecutive notes of each track
    (mgeval "PI", avg_pitch_shift; notes ordered by start then pitch). NaN with
    fewer than two notes in every track."""
    n = notes_of(x)
    i, j = _consecutive_pairs(n)
    return float(np.abs(n.pitch[j] - n.pitch[i]).mean()) if len(i) else math.nan


def average_ioi(x: Score | Notes) -> float:
    """Average inter-onset interval in quarter notes (mgeval "IOI"): the mean gap
    between successive distinct onsets of the piece (all tracks together; mgeval
    measures it in seconds, we use quarters so that tempo does not enter). NaN
    with fewer than two onsets."""
    n = notes_of(x)
    on = np.unique(n.start[n.pitched])
    return float(np.diff(on).mean() / n.tpq) if len(on) > 1 else math.nan


def note_length_histogram(x: Score | Notes) -> np.ndarray:
    """12-bin histogram of note lengths over mgeval's classes (``NOTE_LENGTH_NAMES``),
    each note given the nearest class; normalised to sum 1 (mgeval "NLH")."""
    n = notes_of(x)
    m = n.pitched
    if not m.any():
        return np.full(12, np.nan)
    h = np.bincount(length_class((n.end[m] - n.start[m]) / n.tpq), minlength=12).astype(float)
    return h / h.sum()


def note_length_transition_matrix(x: Score | Notes, *, normalize: bool = True) -> np.ndarray:
    """12×12 transitions between the length classes of consecutive notes of each
    track (mgeval "NLTM"); normalised to sum 1; NaNs without a transition."""
    n = notes_of(x)
    i, j = _consecutive_pairs(n)
    out = np.zeros((12, 12))
    if len(i):
        li = length_class((n.end[i] - n.start[i]) / n.tpq)
        lj = length_class((n.end[j] - n.start[j]) / n.tpq)
        np.add.at(out, (li, lj), 1)
    if not normalize:
        return out
    return out / out.sum() if out.sum() else np.full((12, 12), np.nan)


def _bar_index(n: Notes) -> tuple[np.ndarray, int]:
    m = n.pitched
    b = n.start[m] // n.bar_ticks
    n_bars = int(math.ceil(max(_length(n), 1) / n.bar_ticks))
    return b, n_bars


def bar_pitch_count(x: Score | Notes) -> np.ndarray:
    """Distinct pitches of the notes starting in each bar, shape (n_bars,) (mgeval's
    per-bar "PC", bar_used_pitch)."""
    n = notes_of(x)
    b, n_bars = _bar_index(n)
    if not len(b):
        return np.zeros(0)
    pairs = np.unique(b * 128 + n.pitch[n.pitched])
    return np.bincount(pairs // 128, minlength=n_bars).astype(float)


def bar_note_count(x: Score | Notes) -> np.ndarray:
    """Number of notes starting in each bar, shape (n_bars,) (mgeval bar_used_note)."""
    n = notes_of(x)
    b, n_bars = _bar_index(n)
    return np.bincount(b, minlength=n_bars).astype(float) if len(b) else np.zeros(0)


def bar_pitch_class_histogram(x: Score | Notes) -> np.ndarray:
    """Per-bar pitch-class histograms, shape (n_bars, 12), each row summing to 1
    (rows of empty bars are zero) (mgeval bar_pitch_class_histogram)."""
    n = notes_of(x)
    b, n_bars = _bar_index(n)
    out = np.zeros((n_bars if len(b) else 0, 12))
    if len(b):
        np.add.at(out, (b, n.pitch[n.pitched] % 12), 1)
        s = out.sum(axis=1, keepdims=True)
        out = np.divide(out, s, out=np.zeros_like(out), where=s > 0)
    return out


# --------------------------------------------------------------------------- MusPy set


def pitch_entropy(x: Score | Notes) -> float:
    """Shannon entropy (bits) of the normalised histogram of the 128 pitches,
    counted per note: H = −Σ p_i log2 p_i (MusPy ``pitch_entropy``)."""
    n = notes_of(x)
    return _entropy_bits(np.bincount(n.pitch[n.pitched], minlength=128).astype(float))


def pitch_class_entropy(x: Score | Notes) -> float:
    """Entropy (bits) of the 12-bin pitch-class histogram (MusPy ``pitch_class_entropy``)."""
    n = notes_of(x)
    return _entropy_bits(np.bincount(n.pitch[n.pitched] % 12, minlength=12).astype(float))


def pitch_in_scale_rate(x: Score | Notes, root: int | None = None, mode: str | None = None) -> float:
    """Share of notes whose pitch class is in the scale of ``root`` (0 = C) and
    ``mode`` ("major" or natural "minor") (MusPy ``pitch_in_scale_rate``). Without
    a key the file's own key is used, else the Krumhansl–Kessler estimate."""
    n = notes_of(x)
    p = n.pitch[n.pitched]
    if not len(p):
        return math.nan
    if root is None or mode is None:
        if n.key is not None:
            root, mode = n.key
        else:
            from tunesmith.music.keys import estimate_key

            root, mode, _ = estimate_key(p)
    scale = SCALES[(0 if mode == "major" else 12) + root % 12]
    return float(scale[p % 12].mean())


def scale_consistency(x: Score | Notes) -> float:
    """The largest pitch-in-scale rate over the 24 major and minor scales (MusPy
    ``scale_consistency``)."""
    n = notes_of(x)
    h = np.bincount(n.pitch[n.pitched] % 12, minlength=12).astype(float)
    if h.sum() < 1:
        return math.nan
    return float((SCALES.astype(float) @ h).max() / h.sum())


def empty_beat_rate(x: Score | Notes) -> float:
    """Share of beats (quarter notes) with no note (MusPy ``empty_beat_rate``: a note
    marks the beats from its start to its end inclusive; all tracks). NaN when empty."""
    n = notes_of(x)
    if _length(n) < 1:
        return math.nan
    units, covered = _covered_units(n, n.tpq)
    return 1 - covered / units


def empty_measure_rate(x: Score | Notes) -> float:
    """Share of measures with no note (MusPy ``empty_measure_rate`` with the measure
    length of the first time signature)."""
    n = notes_of(x)
    if _length(n) < 1:
        return math.nan
    units, covered = _covered_units(n, n.bar_ticks)
    return 1 - covered / units


def polyphony(x: Score | Notes) -> float:
    """Mean number of distinct pitches sounding, over the time where at least one
    sounds (MusPy ``polyphony``, tick-exact)."""
    seg, k = _active_segments(notes_of(x))
    den = seg[k > 0].sum()
    return float((seg * k).sum() / den) if den else math.nan


def polyphony_rate(x: Score | Notes, threshold: int = 2) -> float:
    """Share of time (ticks from 0 to the last note end) in which more than
    ``threshold`` pitches sound (MusPy ``polyphony_rate``)."""
    seg, k = _active_segments(notes_of(x))
    total = seg.sum()
    return float(seg[k > threshold].sum() / total) if total else math.nan


def groove_consistency(x: Score | Notes) -> float:
    """1 − mean Hamming distance between the binary onset patterns (tick resolution)
    of neighbouring measures, divided by the measure length (MusPy
    ``groove_consistency``; Wu & Yang 2020). NaN with fewer than two measures."""
    n = notes_of(x)
    res = n.bar_ticks
    n_measures = _length(n) // res + 1
    if n_measures < 2:
        return math.nan
    pat = np.zeros((n_measures, res), bool)
    pat[n.start // res, n.start % res] = True
    return float(1 - np.count_nonzero(pat[:-1] != pat[1:]) / (res * (n_measures - 1)))


def n_pitches_used(x: Score | Notes) -> float:
    """Number of distinct pitches (MusPy ``n_pitches_used``; same as :func:`pitch_count`
    but 0 for an empty piece)."""
    n = notes_of(x)
    return float(len(np.unique(n.pitch[n.pitched])))


def n_pitch_classes_used(x: Score | Notes) -> float:
    """Number of distinct pitch classes (MusPy ``n_pitch_classes_used``)."""
    n = notes_of(x)
    return float(len(np.unique(n.pitch[n.pitched] % 12)))


# --------------------------------------------------------------------------- tonal distance


def tonal_centroid_matrix(r1: float = 1.0, r2: float = 1.0, r3: float = 0.5) -> np.ndarray:
    """Harte et al.'s 6×12 projection of a chroma vector onto the circles of fifths,
    minor thirds and major thirds."""
    pcs = np.arange(12)
    return np.stack([
        r1 * np.sin(pcs * 7 * np.pi / 6), r1 * np.cos(pcs * 7 * np.pi / 6),
        r2 * np.sin(pcs * 3 * np.pi / 2), r2 * np.cos(pcs * 3 * np.pi / 2),
        r3 * np.sin(pcs * 2 * np.pi / 3), r3 * np.cos(pcs * 2 * np.pi / 3),
    ])


_TONAL = tonal_centroid_matrix()


def tonal_distance(x: Score | Notes) -> float:
    """Mean tonal distance between the tracks (MuseGAN's "TD"): per beat, each
    track's duration-weighted chroma is L1-normalised and projected to the 6-D
    tonal centroid; the distance is the Euclidean distance between two tracks'
    centroids, averaged over the beats where both sound, then over all track
    pairs. Lower means the voices agree harmonically. NaN with fewer than two
    sounding tracks."""
    n = notes_of(x)
    tracks = [int(t) for t in np.unique(n.track[n.pitched])]
    if len(tracks) < 2:
        return math.nan
    n_beats = int(math.ceil(_length(n) / n.tpq))
    cents = {}
    for t in tracks:
        c = _chroma_per_beat(n, np.flatnonzero((n.track == t) & n.pitched), n_beats)
        s = c.sum(axis=1, keepdims=True)
        ok = s[:, 0] > 0
        c = np.divide(c, s, out=np.zeros_like(c), where=s > 0)
        cents[t] = (c @ _TONAL.T, ok)
    dists = []
    for a in range(len(tracks)):
        for b in range(a + 1, len(tracks)):
            (ca, oa), (cb, ob) = cents[tracks[a]], cents[tracks[b]]
            both = oa & ob
            if both.any():
                dists.append(float(np.linalg.norm(ca[both] - cb[both], axis=1).mean()))
    return float(np.mean(dists)) if dists else math.nan


# --------------------------------------------------------------------------- all at once

SCALAR_METRICS = {
    "pitch_count": pitch_count,
    "note_count": note_count,
    "pitch_range": pitch_range,
    "average_pitch_interval": average_pitch_interval,
    "average_ioi": average_ioi,
    "bar_pitch_count_mean": lambda n: float(np.mean(v)) if len(v := bar_pitch_count(n)) else math.nan,
    "bar_note_count_mean": lambda n: float(np.mean(v)) if len(v := bar_note_count(n)) else math.nan,
    "pitch_entropy": pitch_entropy,
    "pitch_class_entropy": pitch_class_entropy,
    "scale_consistency": scale_consistency,
    "pitch_in_scale_rate": pitch_in_scale_rate,
    "empty_beat_rate": empty_beat_rate,
    "empty_measure_rate": empty_measure_rate,
    "polyphony": polyphony,
    "polyphony_rate": polyphony_rate,
    "groove_consistency": groove_consistency,
    "n_pitches_used": n_pitches_used,
    "n_pitch_classes_used": n_pitch_classes_used,
    "tonal_distance": tonal_distance,
}
VECTOR_METRICS = {
    "pitch_class_histogram": pitch_class_histogram,
    "pitch_class_transition_matrix": pitch_class_transition_matrix,
    "note_length_histogram": note_length_histogram,
    "note_length_transition_matrix": note_length_transition_matrix,
}


def all_metrics(x: Score | Notes) -> dict[str, float | np.ndarray]:
    """Every scalar and vector metric of one piece (note arrays extracted once)."""
    n = notes_of(x)
    out: dict[str, float | np.ndarray] = {k: f(n) for k, f in SCALAR_METRICS.items()}
    out.update({k: f(n) for k, f in VECTOR_METRICS.items()})
    return out
