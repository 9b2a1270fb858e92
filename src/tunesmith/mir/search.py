"""Melody similarity search: find the known piece a snippet comes from.

Two stages, as in query-by-humming systems:

1. **Recall** — every piece's melody (its top voice, one note per onset, repeated
   notes merged so that a split note is the same melody) is cut into windows of
   :data:`WINDOW` notes. A window is described by its *grams*: each run of four
   notes as its three pitch intervals (transposition-invariant), once alone and once
   with the two ratios between its successive inter-onset intervals (tempo-invariant
   rhythm, quantised to half-octaves of ratio). The query's grams are taken also with
   one note skipped between any two of the four, so an ornament the query adds is
   stepped over. Where the query has bar lines (files, ABC, bar ranges; not transcribed
   audio), each gram with rhythm counts once more placed in the bar
   (:func:`placed_ids`): a short snippet's grams are common, and its place in the bar tells
   apart the windows that hold them (on the 318 symbolic benchmark queries under 8 notes,
   seed 0: top-10 0.843 → 0.874). Windows and query are TF-IDF weighted; an inverted index
   (a ``scipy.sparse`` matrix, grams × windows) scores every window that shares a gram with
   the query, and the best windows name the candidate pieces.

   Exact grams in an inverted index rather than hashed vectors in a dense faiss index:
   with the 256-dimensional hashed vectors the previous version used, the source of a
   2–4 bar ornamented snippet was among the first 200 candidates for 58% of queries;
   with exact grams and rhythm it is for 95% (``benchmarks/mir.py``).
2. **Ranking** — the query is aligned note by note against each candidate around its
   best windows (local alignment, compiled with numba, candidates in parallel). A step
   between two matched notes scores by whether the pitch intervals agree, whether the
   inter-onset ratio agrees with the query's tempo against the piece (voted from every
   pair of agreeing intervals, the two best tempi tried), and — for queries that carry
   their bar lines (files, ABC, bar ranges) — whether the note falls on the same place in
   the bar; for a recording, which has none, on the same place in the beat of the quarter-note
   grid its onsets sit on (:func:`beat_offset`; the benchmark's 195 rendered and transcribed
   queries: top-10 0.903 → 0.918). A query note that is a neighbour of the next one
   may be skipped free (an ornament); other skips cost. The score, normalised so that
   an exact match is 1, ranks the candidates and its end points give the matching bars.
   Equal scores — a short motif that stands note for note in several tunes — are ordered by
   how likely each piece is to be the one the snippet was taken from (:meth:`SearchIndex._likelihood`).
   Where no candidate reaches :data:`PLACE_FREE_BELOW` with its bar places, the query's bar
   lines may not be the piece's (a snippet typed from mid-bar, its first note read as a
   downbeat): the pieces its grams name without their places join the candidates, and each is
   aligned again without the place in the bar, a match that holds only so costing
   :data:`PLACE_FREE`.

The index is kept on disk under ``$TUNESMITH_HOME/index`` in parts (one per
corpus or folder), each rebuilt only for pieces it has not seen.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from tunesmith.errors import BadInputError, OptionError, ParameterError
from tunesmith.evaluate.metrics import extract_notes
from tunesmith.fileio import atomic_write_bytes, write_json
from tunesmith.mir.analysis import melody_line
from tunesmith.music.corpora import readable_name, shared_stems
from tunesmith.music.melody import loudest_per_onset, several_voices_heard
from tunesmith.music.meter import estimated_upbeat
from tunesmith.music.score import Score
from tunesmith.music.texture import is_recording

# The hashed interval features of the MIR feature vector (tunesmith-mir-features-v1, mir/features.py)
DIM = 256
CLIP = 12
SKIPS = ((1, 1), (1, 2), (2, 1))

WINDOW = 32  # notes per indexed window
HOP = 16
FORMAT_VERSION = 3  # 3: melodies of MIDI files read with their upbeat placed (music.meter.place_upbeat)
_B = 2 * CLIP + 1  # interval values
RCLIP = 4  # rhythm codes: round(2·log2 ratio) in [-4, 4]
_RB = 2 * RCLIP + 1
N_PITCH_GRAMS = _B ** 3
N_LONG = N_PITCH_GRAMS * (1 + _RB * _RB)  # grams of four notes
N_GRAMS = N_LONG + _B * _B * _RB  # and of three notes: two intervals and their rhythm ratio
# and, where bar lines are known, each gram with rhythm once more with the place in the bar of its first
# note (in 48ths of a bar), hashed into N_PLACED ids after the others
PLACE_BINS = 48
N_PLACED = 1 << 21
N_ALL = N_GRAMS + N_PLACED
INDEX_GAPS = ((1, 1, 1), (1, 1))
QUERY_GAPS = tuple((a, b, c) for a in (1, 2) for b in (1, 2) for c in (1, 2)) + ((1, 1), (1, 2), (2, 1), (2, 2))
CANDIDATES = 200
TIE_PRIOR = True  # equal scores ordered by SearchIndex._likelihood (False: by the recall's order, as before)
# A longer query is searched with its first notes: the alignment costs grow with the square
# of its length (a 3,657-note movement took 22 s), and 128 notes name a piece as surely.
MAX_QUERY_NOTES = 4 * WINDOW
MAX_TOP = 10_000  # hits a search returns at most (the CLI shows at most 1000)
MIN_QUERY_NOTES = 3  # distinct notes (repeats merged): fewer stand in too many pieces to tell any apart
# alignment scores per step (see _align_segment)
MATCH, NEAR, MISMATCH = 2.0, 0.5, -1.0
RHYTHM, RHYTHM_NEAR, RHYTHM_MISS = 1.0, 0.3, -0.5
PLACE = 0.5  # the note falls on the same place in the bar
PLACE_FREE = 0.08  # what a match costs that holds only without the place in the bar (None: never tried)
PLACE_FREE_BELOW = 0.9  # ... tried when no candidate's score with it reaches this
SKIP_QUERY, SKIP_TARGET = 1.5, 0.75  # skipping a query note that is no ornament; a piece's note
ORNAMENT = 2.5  # a skipped neighbour note is explained: it earns this much (a matched step earns 3–3.5);
# at 1.5 a short snippet with an ornament lost to pieces that hold the ornamented notes (symbolic benchmark
# queries under 8 notes, seeds 0 / 1: top-10 0.874 / 0.871 at 1.5, 0.890 / 0.882 at 2.5; 8 notes or more unchanged)


@dataclass
class Melody:
    pitches: np.ndarray  # int16, repeated notes merged
    onsets: np.ndarray  # float32 quarter notes from the start of the piece
    bar_quarters: float  # length of a bar, for naming the matching bars
    pickup: float = 0.0
    metric: bool = True  # onsets are placed in bars (False for transcribed audio: no bar lines)
    # a recording's beat grid: where its beats fall, in quarter notes mod 1 (beat_offset); None for scores
    beat_offset: float | None = None
    # a MIDI file's upbeat the reader read and placed (quarter notes): its bars count from the bar it begins in
    upbeat: float | None = None
    # a recording of several voices: the share of its onsets holding two notes (its tune is then the
    # loudest note at each onset, which may be another voice's); None otherwise
    voices_heard: float | None = None


def beat_offset(onsets: np.ndarray) -> float | None:
    """The phase of the quarter-note grid a recording's onsets (quarter notes at its estimated
    tempo) sit on: the angle of their mean phase vector, as a fraction of a quarter. A transcription
    has no bar lines, but its notes mostly fall on beats and half beats; with the grid known, a note's
    place in the beat tells apart pieces whose intervals and rhythm agree."""
    t = np.asarray(onsets, np.float64)
    if len(t) < 3:
        return None
    ioi = np.diff(t)
    w = np.r_[ioi, np.median(ioi)]  # a long note is likelier on the beat than a short one (an ornament)
    return float(np.angle(np.sum(w * np.exp(2j * np.pi * t))) / (2 * np.pi) % 1.0)


def recorded_melody(score: Score) -> tuple[np.ndarray, np.ndarray]:
    """The tune of a recording from its transcription: pitches and onsets (quarter notes) of its
    loudest note at each onset (:func:`tunesmith.music.melody.loudest_per_onset`), all tracks."""
    rows = [tr.notes.numpy() for tr in score.music.tracks if not tr.is_drum and len(tr.notes)]
    if not rows:
        return np.zeros(0, np.int16), np.zeros(0, np.float32)
    notes = {k: np.concatenate([r[k] for r in rows]) for k in ("time", "duration", "pitch", "velocity")}
    pick = loudest_per_onset(notes, score.music.tpq, score.tempo() or 120.0)
    return notes["pitch"][pick].astype(np.int16), (notes["time"][pick] / score.music.tpq).astype(np.float32)


def melody_of(score: Score) -> Melody:
    """The searchable melody of a piece: its top voice, one note per onset, repeats merged (of a
    recording: its loudest note per onset, :func:`recorded_melody`)."""
    n = extract_notes(score)
    recorded = is_recording(score)
    if recorded:
        p, t = recorded_melody(score)
    else:
        idx = melody_line(n)
        p = n.pitch[idx].astype(np.int16)
        t = (n.start[idx] / n.tpq).astype(np.float32)
    if len(p):
        keep = np.r_[True, p[1:] != p[:-1]]
        p, t = p[keep], t[keep]
    return Melody(p, t, n.bar_ticks / n.tpq, metric=not recorded, beat_offset=beat_offset(t) if recorded else None)


def feature_ids(p: np.ndarray) -> np.ndarray:
    """Hashed interval-pair ids of a pitch sequence, for the MIR feature vector (not the search)."""
    p = p.astype(np.int64)
    out = []
    for a, b in SKIPS:
        if len(p) > a + b:
            d1 = np.clip(p[a:len(p) - b] - p[:len(p) - a - b], -CLIP, CLIP) + CLIP
            d2 = np.clip(p[a + b:] - p[a:len(p) - b], -CLIP, CLIP) + CLIP
            out.append((d1 * 25 + d2) * 2654435761 % DIM)
    if len(p) > 3:
        iv = np.clip(np.diff(p), -CLIP, CLIP) + CLIP
        out.append(((iv[:-2] * 625 + iv[1:-1] * 25 + iv[2:]) * 40503 + 7) % DIM)
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def placed_ids(rid: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Ids of grams with rhythm placed in the bar (``rid``: a four-note gram's pitch-and-rhythm id,
    or a three-note gram's id; the two ranges are apart): the first note's place (a fraction of
    the bar) in 48ths, hashed with the gram into ``N_PLACED`` ids from ``N_GRAMS`` on. A bin's
    edges sit a quarter bin below the 48ths (and so between 32nds), so that a place computed through
    another tempo's float rounding lands in the same bin."""
    b = np.floor(np.asarray(phase, np.float64) * PLACE_BINS + 0.25).astype(np.int64) % PLACE_BINS
    x = (rid.astype(np.int64) * PLACE_BINS + b) * 2654435761  # < 2**57: no overflow
    return N_GRAMS + (x >> 17) % N_PLACED


def gram_ids(p: np.ndarray, t: np.ndarray, gaps=INDEX_GAPS, phase: np.ndarray | None = None) -> np.ndarray:
    """The grams of a melody (module docstring): per run of four notes whose steps are a gap
    triple, one pitch gram and one pitch-and-rhythm gram; per run of three notes (a gap pair), one
    gram of two intervals and their rhythm ratio; given the notes' places in their bars as
    ``phase``, each gram with rhythm once more with its first note's place (:func:`placed_ids`).
    ``(k, 2)`` rows of (first note, id)."""
    p = np.asarray(p, np.int64)
    t = np.asarray(t, np.float64)
    n = len(p)
    out = []

    def ratio(x, y, z):  # quantised log2 ratio of the inter-onset intervals y−x and z−y
        d1, d2 = np.maximum(t[y] - t[x], 1e-3), np.maximum(t[z] - t[y], 1e-3)
        return np.clip(np.round(2 * np.log2(d2 / d1)), -RCLIP, RCLIP).astype(np.int64) + RCLIP

    for gap in gaps:
        span = sum(gap)
        k = np.arange(max(n - span, 0))
        if not len(k):
            continue
        pos = [k]
        for g in gap:
            pos.append(pos[-1] + g)
        iv = [np.clip(p[y] - p[x], -CLIP, CLIP) + CLIP for x, y in zip(pos, pos[1:])]
        if len(gap) == 3:
            pid = (iv[0] * _B + iv[1]) * _B + iv[2]
            out.append(np.stack([k, pid], 1))
            rid = (pid * _RB + ratio(*pos[:3])) * _RB + ratio(*pos[1:])
            out.append(np.stack([k, N_PITCH_GRAMS + rid], 1))
            if phase is not None:
                out.append(np.stack([k, placed_ids(rid, np.asarray(phase)[k])], 1))
        else:
            gid = N_LONG + (iv[0] * _B + iv[1]) * _RB + ratio(*pos)
            out.append(np.stack([k, gid], 1))
            if phase is not None:  # a three-note snippet's only grams: placed too
                out.append(np.stack([k, placed_ids(gid, np.asarray(phase)[k])], 1))
    return np.concatenate(out) if out else np.zeros((0, 2), np.int64)


def _windows(n_notes: int) -> list[tuple[int, int]]:
    if n_notes <= WINDOW:
        return [(0, n_notes)]
    starts = list(range(0, n_notes - WINDOW + 1, HOP))
    if starts[-1] + WINDOW < n_notes:
        starts.append(n_notes - WINDOW)
    return [(s, s + WINDOW) for s in starts]


# --------------------------------------------------------------------------- alignment

def _tempo_votes_py(qp, qt, tp, tt) -> np.ndarray:
    """Votes for the query/piece tempo ratio (log2, bins of 0.1 over [-2, 2]) from every pair of
    steps whose pitch intervals agree (steps over one skipped note count half)."""
    v = np.zeros(41)
    m, n = len(qp), len(tp)
    for i in range(1, m):
        for di in range(1, 3):
            ip = i - di
            if ip < 0:
                continue
            dq = qp[i] - qp[ip]
            qi = qt[i] - qt[ip]
            if qi < 1e-3:
                continue
            for j in range(1, n):
                for dj in range(1, 3):
                    jp = j - dj
                    if jp < 0 or tp[j] - tp[jp] != dq:
                        continue
                    ti = tt[j] - tt[jp]
                    if ti < 1e-3:
                        continue
                    k = int(np.floor((np.log2(qi / ti) + 2.0) / 0.1 + 0.5))
                    if 0 <= k < 41:
                        v[k] += 1.0 if (di == 1 and dj == 1) else 0.5
    return v


def _align_segment_py(qp, qt, qph, tp, tt, tph, tau, place) -> tuple[float, int, int]:
    """Local alignment of the query's notes against a piece's: (score, start, end) with end
    inclusive. A step from matched pair (i', j') to (i, j), i − i' in {1, 2} (3 over a slide) and
    j − j' in {1, 2}, scores
    MATCH if the two pitch intervals agree (NEAR within a semitone or an octave, else MISMATCH),
    RHYTHM if log2 of the ratio of the two inter-onset intervals is within 0.2 of ``tau``
    (RHYTHM_NEAR within 0.45, else RHYTHM_MISS), ``place`` if the notes fall on the same place in
    the bar (``qph``/``tph``: fractions of a bar) — rhythm and place only where the intervals agree
    (within a semitone or an octave), so that a long run of wrong notes in the right rhythm does not
    add up; skipping a query note earns ORNAMENT if it is a neighbour (±1–2 semitones) of the next
    one — an ornament — else costs SKIP_QUERY; two skipped notes that are both neighbours of the
    next (a slide) earn ORNAMENT; a turn — a note, its neighbour and the note again, as one note of
    the piece (a mordent, or a held note struck again after a neighbour) — earns ORNAMENT, and the
    next step's rhythm is measured from the turn's first note; skipping a piece's note costs
    SKIP_TARGET."""
    m, n = len(qp), len(tp)
    H = np.zeros((m, n), np.float64)
    S = np.zeros((m, n), np.int64)
    A = np.zeros((m, n), np.int64)  # the query note whose onset is piece note j's (i, or a turn's first)
    for j in range(n):
        S[0, j] = j
    best, bj, bs = 0.0, 0, 0
    for i in range(1, m):
        # a slide (two neighbours of the note they lead to, e.g. D C before B) is stepped over too
        d1, d2 = (qp[i - 1] - qp[i], qp[i - 2] - qp[i]) if i >= 3 else (0, 0)
        slide = -2 <= d1 <= 2 and d1 != 0 and -2 <= d2 <= 2 and d2 != 0
        # a turn: the note, its neighbour, the note again (a mordent; a held note struck again
        # after a neighbour) is one note of the piece
        turn = i >= 2 and qp[i] == qp[i - 2] and -2 <= qp[i - 1] - qp[i] <= 2 and qp[i - 1] != qp[i]
        for j in range(n):
            h, st, anc = 0.0, j, i
            e2 = abs(qph[i] - tph[j])
            if e2 > 0.5:
                e2 = 1.0 - e2
            at_place = place if e2 < 0.03 else 0.0
            for di in range(1, 4 if slide else 3):
                ip = i - di
                if ip < 0:
                    continue
                skipq = 0.0
                if di == 2:
                    d = qp[i - 1] - qp[i]
                    skipq = -ORNAMENT if (-2 <= d <= 2 and d != 0) else SKIP_QUERY
                elif di == 3:
                    skipq = -ORNAMENT
                for dj in range(1, 3):
                    jp = j - dj
                    if jp < 0:
                        continue
                    diff = (qp[i] - qp[ip]) - (tp[j] - tp[jp])
                    if diff == 0 or diff == 1 or diff == -1 or diff == 12 or diff == -12:
                        s = MATCH if diff == 0 else NEAR
                        # rhythm and place corroborate agreeing pitches; alone they earn nothing
                        qi = max(qt[i] - qt[A[ip, jp]], 1e-3)
                        ti = max(tt[j] - tt[jp], 1e-3)
                        e = abs(np.log2(qi / ti) - tau)
                        s += (RHYTHM if e < 0.2 else (RHYTHM_NEAR if e < 0.45 else RHYTHM_MISS)) + at_place
                    else:
                        s = MISMATCH
                    v = H[ip, jp] + s - skipq - (SKIP_TARGET if dj == 2 else 0.0)
                    if v > h:
                        h, st, anc = v, S[ip, jp], i
            if turn and H[i - 2, j] + ORNAMENT > h:
                h, st, anc = H[i - 2, j] + ORNAMENT, S[i - 2, j], A[i - 2, j]
            H[i, j] = h
            S[i, j] = st if h > 0 else j
            A[i, j] = anc if h > 0 else i
            if h > best:
                best, bj, bs = h, j, S[i, j]
    return float(best), int(bs), int(bj)


def _tempi_py(v: np.ndarray, bar_bin: int) -> tuple[int, int, int]:
    """The tempi a segment is aligned at: the two best bins of its tempo vote (smoothed over
    neighbours, at least three bins apart; the second −1 when no other bin got a vote) and, where
    the query and the piece both have bar lines, the tempo that makes their bars equal
    (``bar_bin``, −1 if none; left out when a voted one is within a bin of it). The votes come
    from every agreeing interval in the segment, so for a short query common intervals can
    outvote its own match; the bars say its tempo directly."""
    sm = v.copy()
    sm[1:] += v[:-1]
    sm[:-1] += v[1:]
    first = int(np.argmax(sm))
    rest = sm.copy()
    rest[max(first - 2, 0):first + 3] = -1.0
    second = int(np.argmax(rest))
    if rest[second] <= 0:
        second = -1
    if bar_bin < 0 or bar_bin > 40 or abs(bar_bin - first) <= 1 or (second >= 0 and abs(bar_bin - second) <= 1):
        bar_bin = -1
    return first, second, bar_bin


def _rank_py(qp, qt, qph, tp, tt, tph, seg, bar_bins, place, out) -> None:
    """Align the query against every segment ``seg[k]:seg[k+1]`` of the concatenated pieces,
    at the tempi of :func:`_tempi_py` (``bar_bins[k]``: the bar-length tempo bin, −1 for none);
    ``out[k]`` = (score, start, end)."""
    for k in range(len(seg) - 1):
        a, b = seg[k], seg[k + 1]
        out[k, 0] = 0.0
        for c in _tempi_py(_tempo_votes_py(qp, qt, tp[a:b], tt[a:b]), bar_bins[k]):
            if c >= 0:
                s, st, en = _align_segment_py(qp, qt, qph, tp[a:b], tt[a:b], tph[a:b], -2.0 + 0.1 * c, place)
                if s > out[k, 0]:
                    out[k, 0], out[k, 1], out[k, 2] = s, st, en


try:  # numba ships with librosa; the pure-Python versions are the reference and the fallback
    from numba import njit, prange

    _tempo_votes = njit(cache=True, nogil=True)(_tempo_votes_py)
    _align_segment = njit(cache=True, nogil=True)(_align_segment_py)
    _tempi = njit(cache=True, nogil=True)(_tempi_py)

    @njit(cache=True, nogil=True, parallel=True)
    def _rank(qp, qt, qph, tp, tt, tph, seg, bar_bins, place, out):  # _rank_py, the candidates in parallel
        for k in prange(len(seg) - 1):
            a, b = seg[k], seg[k + 1]
            out[k, 0] = 0.0
            for c in _tempi(_tempo_votes(qp, qt, tp[a:b], tt[a:b]), bar_bins[k]):
                if c >= 0:
                    s, st, en = _align_segment(qp, qt, qph, tp[a:b], tt[a:b], tph[a:b], -2.0 + 0.1 * c, place)
                    if s > out[k, 0]:
                        out[k, 0], out[k, 1], out[k, 2] = s, st, en
except Exception:  # noqa: BLE001 - any numba problem: fall back to Python
    _rank = _rank_py


def _phase(onsets: np.ndarray, bar_quarters: float) -> np.ndarray:
    bq = float(bar_quarters) if bar_quarters and bar_quarters > 0 else 4.0
    return np.mod(np.asarray(onsets, np.float64), bq) / bq


def _bar_bin(q_bar, t_bar) -> int | np.ndarray:
    """The tempo bin (log2 of the query/piece tempo ratio, bins of 0.1 over [-2, 2]) at which
    the query's bar is as long as the piece's; −1 outside the range."""
    k = np.floor((np.log2(np.asarray(q_bar, np.float64) / np.asarray(t_bar, np.float64)) + 2.0) / 0.1 + 0.5)
    k = np.where((k >= 0) & (k <= 40), k, -1).astype(np.int64)
    return int(k) if k.ndim == 0 else k


def _max_score(m: int, place: float) -> float:
    return max(m - 1, 1) * (MATCH + RHYTHM + place)


def align(q_pitches: np.ndarray, t_pitches: np.ndarray, q_onsets: np.ndarray | None = None,
          t_onsets: np.ndarray | None = None, *, q_bar: float = 0.0, t_bar: float = 0.0) -> tuple[float, int, int]:
    """Normalised alignment score of a query melody against a piece's melody (1 = every note
    matches in pitch, rhythm and — when both bar lengths are given — place in the bar), and the
    piece's note range [start, end] the match covers. Without onsets, every note is a beat."""
    qp = np.asarray(q_pitches, np.int64)
    tp = np.asarray(t_pitches, np.int64)
    if len(qp) < 2 or len(tp) < 2:
        return 0.0, 0, 0
    qt = np.arange(len(qp), dtype=np.float64) if q_onsets is None else np.asarray(q_onsets, np.float64)
    tt = np.arange(len(tp), dtype=np.float64) if t_onsets is None else np.asarray(t_onsets, np.float64)
    place = PLACE if q_bar and t_bar else 0.0
    out = np.zeros((1, 3))
    bar_bins = np.array([_bar_bin(q_bar, t_bar) if place else -1], np.int64)
    _rank(qp, qt, _phase(qt, q_bar), tp, tt, _phase(tt, t_bar), np.array([0, len(tp)], np.int64), bar_bins, place,
          out)
    return float(out[0, 0]) / _max_score(len(qp), place), int(out[0, 1]), int(out[0, 2])


# --------------------------------------------------------------------------- the index

def index_home() -> Path:
    from tunesmith.music.dataset import tunesmith_home

    return tunesmith_home() / "index"


_LOADED: dict = {}  # the last index SearchIndex.load built in this process, with its files' stamp


@dataclass
class Part:
    """The indexed pieces of one source (a corpus or a folder)."""

    name: str
    ids: list[str]  # content hashes
    names: list[str]  # readable: "bach-chorales/bwv269", "essen/han1: Title"
    sources: list[str]
    bar_quarters: np.ndarray  # (P,)
    offsets: np.ndarray  # (P+1,) into pitches/onsets
    pitches: np.ndarray
    onsets: np.ndarray


def _part_paths(home: Path, name: str) -> tuple[Path, Path]:
    safe = hashlib.sha256(name.encode()).hexdigest()[:16]
    return home / f"part-{safe}.npz", home / f"part-{safe}.json"


def _save_part(home: Path, part: Part) -> None:
    import io

    npz, meta = _part_paths(home, part.name)
    buf = io.BytesIO()
    np.savez(buf, bar_quarters=part.bar_quarters, offsets=part.offsets, pitches=part.pitches, onsets=part.onsets)
    atomic_write_bytes(npz, buf.getvalue())
    write_json(meta, {"format_version": FORMAT_VERSION, "name": part.name, "ids": part.ids, "names": part.names,
                      "sources": part.sources})


def _load_part(home: Path, name: str) -> Part | None:
    npz, meta = _part_paths(home, name)
    if not npz.exists() or not meta.exists():
        return None
    m = json.loads(meta.read_text())
    if m.get("format_version") != FORMAT_VERSION:
        return None
    with np.load(npz, allow_pickle=False) as z:
        return Part(m["name"], m["ids"], m["names"], m["sources"], z["bar_quarters"], z["offsets"], z["pitches"],
                    z["onsets"])


def default_sources() -> list[str]:
    """What ``tunesmith index`` indexes when given nothing: every bundled corpus, a collection
    once (``folk``, not also its parts)."""
    from tunesmith.music.corpora import CORPORA

    inside = {m for c in CORPORA.values() for m in c.members}
    return [c for c in CORPORA if c not in inside]


def _part_key(source: str) -> str:
    from tunesmith.music.corpora import is_corpus

    return source if is_corpus(source) else str(Path(source).resolve())


def is_indexed(source: str, home: Path | None = None) -> bool:
    """Whether the index at ``home`` (default ``$TUNESMITH_HOME/index``) holds a current part
    for ``source`` (a bundled corpus by name, or a folder), listed in its manifest."""
    home = Path(home or index_home())
    manifest = home / "parts.json"
    key = _part_key(source)
    return (manifest.exists() and key in json.loads(manifest.read_text())
            and _load_part(home, key) is not None)


def build_part(source: str, *, progress: bool = True, home: Path | None = None) -> tuple[Part, int]:
    """Index a bundled corpus (by name) or a folder of files; pieces already in the part
    (same content hash) are kept, new ones parsed. Returns the part and the number added."""
    from collections import Counter

    from tunesmith.music.corpora import is_corpus
    from tunesmith.music.dataset import open_dataset

    home = home or index_home()
    home.mkdir(parents=True, exist_ok=True)
    label = source if is_corpus(source) else Path(source).resolve().name
    key = _part_key(source)
    if not is_corpus(source) and not Path(source).is_dir():
        raise OptionError("SOURCE", f"'{source}' is neither a bundled corpus nor a folder")
    old = _load_part(home, key)
    known = {} if old is None else {h: i for i, h in enumerate(old.ids)}
    ds = open_dataset(source, progress=progress)
    per_file = Counter(e["source"] for e in ds.entries)
    shared = shared_stems(per_file)
    ids, names, sources, bq, mel_p, mel_t = [], [], [], [], [], []
    added = 0
    from tqdm import tqdm

    for e in tqdm(ds.entries, desc=f"index {label}", unit="piece", disable=not progress, leave=False):
        h = e.get("hash") or e["id"]
        if h in known:
            i = known[h]
            a, b = old.offsets[i], old.offsets[i + 1]
            p, t, q = old.pitches[a:b], old.onsets[a:b], float(old.bar_quarters[i])
        else:
            mel = melody_of(ds.load(e))
            p, t, q = mel.pitches, mel.onsets, mel.bar_quarters
            added += 1
        # named afresh: a file added beside it with its stem names both by their extensions
        nm = readable_name(label, e["source"], (e.get("meta") or {}).get("title", ""), per_file[e["source"]],
                           suffix=(str(Path(e["source"]).parent), Path(e["source"]).stem) in shared)
        if len(p) < 4:
            continue
        ids.append(h)
        names.append(nm)
        sources.append(e["source"])
        bq.append(q)
        mel_p.append(p)
        mel_t.append(t)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in mel_p])]).astype(np.int64)
    part = Part(key, ids, names, sources, np.array(bq, np.float32), offsets,
                np.concatenate(mel_p).astype(np.int16) if mel_p else np.zeros(0, np.int16),
                np.concatenate(mel_t).astype(np.float32) if mel_t else np.zeros(0, np.float32))
    _save_part(home, part)
    import fcntl

    manifest = home / "parts.json"
    # the manifest is read, added to and written under a lock: two indexing processes (the studio's
    # workers, two 'tunesmith index' commands) would otherwise each write it without the other's part
    with open(home / ".parts.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            parts = json.loads(manifest.read_text()) if manifest.exists() else []
            if key not in parts:
                parts.append(key)
                write_json(manifest, parts)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return part, added


@dataclass
class Hit:
    rank: int
    name: str
    source: str
    score: float
    bars: tuple[int, int]  # 1-based, inclusive
    piece_id: str

    def to_dict(self) -> dict:
        return {"rank": self.rank, "name": self.name, "source": self.source, "score": round(self.score, 4),
                "bars": list(self.bars), "id": self.piece_id}


def _piece_grams(pitches: np.ndarray, onsets: np.ndarray, piece_of_note: np.ndarray,
                 phase: np.ndarray) -> np.ndarray:
    """The index's grams of every piece's melody at once: (first note, id, span) rows, runs
    inside one piece only."""
    out = []
    for gap in INDEX_GAPS:
        g = gram_ids(pitches, onsets, (gap,), phase)
        span = sum(gap)
        g = g[piece_of_note[g[:, 0]] == piece_of_note[g[:, 0] + span]]
        out.append(np.c_[g, np.full(len(g), span)])
    return np.concatenate(out)


class SearchIndex:
    """All indexed parts, with one inverted index over their windows' grams."""

    def __init__(self, parts: list[Part]):
        import scipy.sparse as sp

        if not parts or not sum(len(p.ids) for p in parts):
            raise OptionError("index", "the search index is empty: run 'tunesmith index' first")
        self.names = [n for p in parts for n in p.names]
        self.sources = [s for p in parts for s in p.sources]
        self.ids = [h for p in parts for h in p.ids]
        self.position = {h: i for i, h in enumerate(self.ids)}
        self.bar_quarters = np.concatenate([p.bar_quarters for p in parts]).astype(np.float64)
        shift = np.cumsum([0] + [len(p.pitches) for p in parts])
        self.offsets = np.concatenate([parts[0].offsets[:1]] + [p.offsets[1:] + s for p, s in zip(parts, shift)])
        self.pitches = np.concatenate([p.pitches for p in parts]).astype(np.int64)
        self.onsets = np.concatenate([p.onsets for p in parts]).astype(np.float64)
        piece_of_note = np.repeat(np.arange(len(self.names)), np.diff(self.offsets))
        bq = np.where(self.bar_quarters > 0, self.bar_quarters, 4.0)[piece_of_note]
        self.phase = np.mod(self.onsets, bq) / bq
        self.beat_phase = np.mod(self.onsets, 1.0)  # place in the quarter note, for recordings' queries
        # windows: global note ranges [ws, we)
        ws, we, wp = [], [], []
        for i in range(len(self.names)):
            a = int(self.offsets[i])
            for s, e in _windows(int(self.offsets[i + 1]) - a):
                ws.append(a + s)
                we.append(a + e)
                wp.append(i)
        self.win_start, self.win_end = np.array(ws, np.int64), np.array(we, np.int64)
        self.win_piece = np.array(wp, np.int64)
        # grams of all melodies at once (runs inside one piece only), then each gram into the
        # windows that hold its four notes (one or two, as windows overlap by HOP)
        g = _piece_grams(self.pitches, self.onsets, piece_of_note, self.phase)
        rows, cols = [], []
        for lag in (0, 1):  # a gram lies in the window that starts at or before it, and maybe the one before
            first = np.searchsorted(self.win_start, g[:, 0], side="right") - 1 - lag
            ok = first >= 0
            w = np.where(ok, first, 0)
            ok &= (self.win_piece[w] == piece_of_note[g[:, 0]]) & (g[:, 0] + g[:, 2] < self.win_end[w])
            rows.append(w[ok])
            cols.append(g[ok, 1])  # a gram in the window that starts at or before it (and the one before)
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(ws), N_ALL))
        m.sum_duplicates()
        df = np.bincount(m.indices, minlength=N_ALL)
        self.idf = (np.log((1 + m.shape[0]) / (1 + df)) + 1.0).astype(np.float32)
        m.data = np.sqrt(m.data) * self.idf[m.indices]
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        m = sp.diags((1.0 / np.maximum(norms, 1e-9)).astype(np.float32)) @ m
        self.grams = m.T.tocsr()  # gram → the windows that hold it
        self.n_windows = len(ws)

    @classmethod
    def load(cls, home: Path | None = None) -> SearchIndex:
        """The index at ``home`` (default ``$TUNESMITH_HOME/index``). Building it from its parts
        takes about two seconds for the bundled corpora, so a process keeps the last one it
        loaded and hands it out again while none of the index's files has changed (name, size
        and modification time): ``tunesmith.search`` called in a loop searches in milliseconds,
        and sees a part ``tunesmith index`` rebuilt meanwhile. The index is read-only."""
        home = Path(home or index_home())
        manifest = home / "parts.json"
        if not manifest.exists():
            raise OptionError("index", f"no search index at {home}: run 'tunesmith index' first")
        stamp = (str(home.resolve()), tuple(sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns)
                                                     for f in home.iterdir() if f.is_file())))
        if _LOADED.get("stamp") == stamp:
            return _LOADED["index"]
        idx = cls._load(home)
        _LOADED.clear()  # one index at a time: the bundled corpora's takes about 100 MB
        _LOADED.update(stamp=stamp, index=idx)
        return idx

    @classmethod
    def _load(cls, home: Path) -> SearchIndex:
        manifest = home / "parts.json"
        keys = json.loads(manifest.read_text())
        parts = [p for k in keys if (p := _load_part(home, k)) is not None]
        stale = [k for k in keys if _part_paths(home, k)[1].exists() and _load_part(home, k) is None]
        if stale:  # a part an older tunesmith wrote: searching the others alone would miss its pieces
            raise OptionError("index", f"the search index at {home} was built by an older version of tunesmith "
                              f"({', '.join(stale)}): run 'tunesmith index' again (with your folders) to rebuild it")
        return cls(parts)

    def __len__(self) -> int:
        return len(self.names)

    def melody(self, i: int) -> np.ndarray:
        return self.pitches[self.offsets[i]:self.offsets[i + 1]]

    def _recall(self, q: Melody, candidates: int, exclude: int | None, *,
                placed: bool = True) -> list[tuple[int, int]]:
        """The best windows' pieces, best first, each with the best window's index (``placed``:
        the query's grams also placed in its bars, where it has bar lines)."""
        phase = _phase(q.onsets, q.bar_quarters) if placed and q.metric and q.bar_quarters > 0 else None
        f = np.unique(gram_ids(q.pitches, q.onsets, QUERY_GAPS, phase)[:, 1])
        f = f[self.grams.indptr[f + 1] > self.grams.indptr[f]]  # grams the index holds
        if not len(f):
            return []
        scores = np.asarray(self.grams[f].T @ self.idf[f]).ravel()
        hit = np.flatnonzero(scores)
        order = hit[np.argsort(-scores[hit], kind="stable")]
        out, seen = [], set()
        for w in order:
            i = int(self.win_piece[w])
            if i not in seen and i != exclude:
                seen.add(i)
                out.append((i, int(w)))
                if len(out) >= candidates:
                    break
        return out

    def _align(self, query: Melody, cand: list[tuple[int, int]], place: float) -> tuple[np.ndarray, list[int]]:
        """Align the query against each candidate (piece, best window) around that window, with
        the query's length of margin: rows of (score, start, end) and each segment's first note."""
        qp = query.pitches.astype(np.int64)
        qt = query.onsets.astype(np.float64)
        bars = query.metric and query.bar_quarters > 0
        margin = len(qp) + 4
        seg_a, seg_b = [], []
        for i, w in cand:
            seg_a.append(max(int(self.offsets[i]), int(self.win_start[w]) - margin))
            seg_b.append(min(int(self.offsets[i + 1]), int(self.win_end[w]) + margin))
        idx = np.concatenate([np.arange(a, b) for a, b in zip(seg_a, seg_b)])
        seg = np.r_[0, np.cumsum(np.subtract(seg_b, seg_a))].astype(np.int64)
        out = np.zeros((len(cand), 3))
        piece = np.array([i for i, _ in cand], np.int64)
        bq = np.where(self.bar_quarters[piece] > 0, self.bar_quarters[piece], 4.0)
        bar_bins = _bar_bin(query.bar_quarters, bq) if bars else np.full(len(cand), -1, np.int64)
        if bars:  # a note's place: in its bar, or for a recording, in its beat (beat_offset)
            qph, tph = _phase(qt, query.bar_quarters), self.phase[idx]
        elif query.beat_offset is not None:
            qph, tph = np.mod(qt - query.beat_offset, 1.0), self.beat_phase[idx]
        else:
            qph, tph = np.zeros(len(qt)), np.zeros(len(idx))
        _rank(qp, qt, qph, self.pitches[idx], self.onsets[idx], tph, seg, bar_bins, place, out)
        return out, seg_a

    def _likelihood(self, cand: list[tuple[int, int]], out: np.ndarray, seg_a: list[int], score: np.ndarray,
                    top: int) -> np.ndarray:
        """How likely each candidate is to be where the query was taken from, for breaking ties:
        the log of how often the matched passage stands in the piece (its intervals, its rhythm
        and its place in the bar) over the places a passage of its bars could begin. A short
        motif stands note for note in many tunes, and the alignment scores them all alike; by
        Bayes, with every piece as likely a source and every passage of it as likely a query, the
        piece where the motif is a larger part is the likelier one (as a search engine normalises
        for a document's length). Computed only for candidates tied with one that could be
        listed (−inf for the rest)."""
        from numpy.lib.stride_tricks import sliding_window_view

        prior = np.full(len(cand), -np.inf)
        if not len(cand):
            return prior
        cut = np.sort(score)[::-1][min(top, len(score)) - 1]
        vals, counts = np.unique(score[score >= cut], return_counts=True)
        tied = set(vals[counts > 1].tolist())
        for k in np.flatnonzero(score >= cut):
            if float(score[k]) not in tied:
                continue
            i = cand[k][0]
            o = int(self.offsets[i])
            p, on = self.pitches[o:int(self.offsets[i + 1])], self.onsets[o:int(self.offsets[i + 1])]
            a = min(seg_a[k] - o + int(out[k, 1]), len(p) - 1)
            b = min(seg_a[k] - o + int(out[k, 2]), len(p) - 1)
            bq = float(self.bar_quarters[i]) or 4.0
            n_bars = int(on[-1] // bq) + 1
            span = int(on[b] // bq) - int(on[a] // bq) + 1
            d, every = np.diff(p[a:b + 1]), np.diff(p)
            times = 1
            if 0 < len(d) <= len(every):  # the passage again: its intervals, its rhythm, its place in the bar
                same = np.flatnonzero((sliding_window_view(every, len(d)) == d).all(axis=1))
                ioi = np.diff(on[a:b + 1])
                same = [s for s in same if np.allclose(np.diff(on[s:s + len(d) + 1]), ioi, atol=1e-3)
                        and abs((on[s] - on[a] + bq / 2) % bq - bq / 2) < 1e-3]
                times = max(len(same), 1)
            prior[k] = np.log(times / max(n_bars - span + 1, 1))
        return prior

    def search(self, query: Melody, *, top: int = 10, candidates: int | None = None,
               exclude: int | None = None) -> list[Hit]:
        """The ``top`` pieces whose melodies best match ``query``'s. ``candidates``: how many
        pieces the recall passes to the alignment (default :data:`CANDIDATES`, up to three times
        more for short queries, which many pieces match and which are cheap to align)."""
        if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or not 1 <= top <= MAX_TOP:
            raise ParameterError("top", f"must be a whole number from 1 to {MAX_TOP}, got {top!r}")
        if len(query.pitches):  # repeated notes merged, as in the index (a split note is the same melody)
            keep = np.r_[True, query.pitches[1:] != query.pitches[:-1]]
            query = replace(query, pitches=query.pitches[keep], onsets=query.onsets[keep])
        if len(query.pitches) < MIN_QUERY_NOTES:
            raise BadInputError("query", f"a melody of {len(query.pitches)} distinct notes is too short to search "
                                f"with (at least {MIN_QUERY_NOTES})")
        if len(query.pitches) > MAX_QUERY_NOTES:
            query = replace(query, pitches=query.pitches[:MAX_QUERY_NOTES], onsets=query.onsets[:MAX_QUERY_NOTES])
        if candidates is None:
            candidates = int(CANDIDATES * min(3.0, max(1.0, 12 / len(query.pitches))))
        cand = self._recall(query, candidates, exclude)
        if not cand:
            return []
        bars = query.metric and query.bar_quarters > 0
        place = PLACE if bars or query.beat_offset is not None else 0.0
        full = _max_score(len(query.pitches), place)
        out, seg_a = self._align(query, cand, place)
        if bars and PLACE_FREE is not None and float(out[:, 0].max(initial=0.0)) / full < PLACE_FREE_BELOW:
            # no candidate matches in its place: the query's bar lines may not be the piece's (a
            # snippet typed from mid-bar, a MIDI file's upbeat left at time 0). The pieces its grams
            # name without their place join the candidates, each candidate is aligned again without
            # the place in the bar, and a match that holds only so keeps its score less PLACE_FREE
            seen = {i for i, _ in cand}
            more = [c for c in self._recall(query, candidates, exclude, placed=False) if c[0] not in seen]
            if more:
                o2, s2 = self._align(query, more, place)
                cand, out, seg_a = cand + more, np.r_[out, o2], seg_a + s2
            free, _ = self._align(query, cand, 0.0)
            alt = (free[:, 0] / _max_score(len(query.pitches), 0.0) - PLACE_FREE) * full
            better = alt > out[:, 0]
            out[better] = free[better]
            out[better, 0] = alt[better]
        score = np.round(out[:, 0] / full, 6)  # as reported; equal scores are ties
        prior = self._likelihood(cand, out, seg_a, score, top) if TIE_PRIOR else np.zeros(len(cand))
        order = sorted(range(len(cand)), key=lambda k: (-score[k], -prior[k], k))  # then the recall's order
        hits = []
        for r, k in enumerate(order[:top]):
            i = cand[k][0]
            on = self.onsets[self.offsets[i]:self.offsets[i + 1]]
            a = seg_a[k] - int(self.offsets[i]) + int(out[k, 1])
            b = seg_a[k] - int(self.offsets[i]) + int(out[k, 2])
            bq = float(self.bar_quarters[i]) or 4.0
            first = int(on[min(a, len(on) - 1)] // bq) + 1
            last = int(on[min(b, len(on) - 1)] // bq) + 1
            hits.append(Hit(r + 1, self.names[i], self.sources[i], float(score[k]), (first, last),
                            self.ids[i]))
        return hits


def query_melody(query: str | Path | Score, *, bars: tuple[int, int] | None = None, piece: int = 1, limits=None) -> Melody:
    """The melody of a query: a file (MIDI, MusicXML, ABC, kern, audio), ABC text or a
    :class:`Score`, optionally cut to a bar range (1-based, inclusive)."""
    import tempfile

    from tunesmith.music.io import load_score

    if bars is not None and (bars[0] < 1 or bars[1] < bars[0]):
        raise OptionError("--bars", f"'{bars[0]}-{bars[1]}' is not a bar range like 5-8")
    text = str(query)
    label = query  # what an error names: the file, the piece, or "ABC text"
    if not isinstance(query, Score) and not text.strip():
        raise OptionError("QUERY", "is empty; give a file, ABC text (e.g. 'K:G\\nGABc dedB'), a recording or a bar range")
    if isinstance(query, Score):  # a piece in memory (generated, or read by the caller)
        score = query
        query = label = score.meta.source or score.meta.title or "score"
    elif "\n" in text or text.lstrip().startswith("X:") or (
            ("K:" in text or "\\n" in text) and not Path(text).exists()):
        if "\n" not in text:
            # typed in single quotes ('K:G\nGABc'), the shell passes a backslash and an n, as
            # --help's example shows them: ABC has no other use for that pair
            text = text.replace("\\n", "\n")
        label = "ABC text"
        body = text if text.lstrip().startswith("X:") else "X:1\n" + text
        if "\nK:" not in "\n" + body:
            body = body.replace("X:1\n", "X:1\nK:C\n", 1)
        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / "query.abc"
            f.write_text(body)
            try:
                score = load_score(f, limits=limits)
            except BadInputError as e:  # name the text the user typed, not a temporary file
                raise OptionError("QUERY", f"ABC text {text if len(text) <= 40 else text[:39] + '…'!r}: {e.problem}") from None
    else:
        score = load_score(query, index=piece - 1, limits=limits)
    mel = _query_bars(score, bars, query)
    distinct = int(np.count_nonzero(np.diff(mel.pitches)) + 1) if len(mel.pitches) else 0
    if distinct < MIN_QUERY_NOTES:  # refused here, where the file (or the text) can be named
        raise BadInputError(label, f"a melody of {distinct} distinct note{'s' if distinct != 1 else ''}"
                            + (f" in bars {bars[0]}-{bars[1]}" if bars else "")
                            + f" is too short to search with (at least {MIN_QUERY_NOTES})")
    up = estimated_upbeat(score)
    return replace(mel, upbeat=up, voices_heard=several_voices_heard(score))


def _query_bars(score: Score, bars: tuple[int, int] | None, query) -> Melody:
    """The melody of ``score``, or of its bars ``bars`` (1-based, inclusive)."""
    if bars is not None and not is_recording(score):
        # the bars first, then their melody: the part that carries the tune there (a song's piano
        # introduction has its melody in the piano, not in the voice that enters later)
        lo, hi = bars
        n = extract_notes(score)
        t0, t1 = (lo - 1) * n.bar_ticks, hi * n.bar_ticks
        cut = score.copy()
        cut.music = score.music.clip(t0, t1, clip_end=False).shift_time(-t0)
        mel = melody_of(cut)
        if not len(mel.pitches):
            raise OptionError("--bars", f"no notes in bars {lo}-{hi} of '{query}'")
        return mel
    mel = melody_of(score)
    if bars is not None:  # a recording: its melody's onsets cut at its transcription's bars
        lo, hi = bars
        keep = (mel.onsets >= (lo - 1) * mel.bar_quarters) & (mel.onsets < hi * mel.bar_quarters)
        if not keep.any():
            raise OptionError("--bars", f"no notes in bars {lo}-{hi} of '{query}'")
        mel = replace(mel, pitches=mel.pitches[keep], onsets=mel.onsets[keep] - (lo - 1) * mel.bar_quarters)
    return mel


def near_duplicates(index: SearchIndex, *, threshold: float = 0.9) -> list[tuple[str, str, float]]:
    """Pairs of pieces whose melodies align almost entirely (score over the shorter ≥ threshold)."""
    pairs = {}
    for i in range(len(index)):
        a = int(index.offsets[i])
        n = min(int(index.offsets[i + 1]) - a, 4 * WINDOW)
        q = Melody(index.pitches[a:a + n], index.onsets[a:a + n], float(index.bar_quarters[i]))
        for h in index.search(q, top=5, candidates=20, exclude=i):
            j = index.position[h.piece_id]
            if h.score >= threshold:
                a, b = sorted((i, j))
                pairs[(a, b)] = max(pairs.get((a, b), 0.0), h.score)
    return sorted(((index.names[a], index.names[b], s) for (a, b), s in pairs.items()), key=lambda x: -x[2])

