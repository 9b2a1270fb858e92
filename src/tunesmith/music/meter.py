"""The meter of a recording: how many beats make a bar, and where the bars begin.

A recording has no bar lines; its transcription used to be given 4/4 from its first
sound, so that a waltz had bars of four beats and an upbeat stood at the start of bar 1.
This module reads the bar from the transcribed notes, as a listener does:

1. **Beats.** librosa's dynamic-programming beat tracker (Ellis 2007) follows the tempo the
   notes give (:func:`tunesmith.music.audio.estimate_tempo`) over an onset envelope drawn
   from the notes themselves — each onset a short bump, larger for a longer note — which is
   sharper than a spectral-flux envelope for slow attacks (organ, bowed strings) and the same
   evidence the tempo came from. The tracked beats are extended by the beat period to cover
   the first and last notes, and moved half a beat where more of the held notes begin there
   (:func:`on_the_beat`: a tracker may follow a tune's off-beats).
2. **What falls on each beat**: on which of its marks (its start, quarters, thirds, half) a
   note begins, and how long the longest note begun on it holds its voice
   (:func:`voice_spans`).
3. **Each bar hypothesis** — 2, 3 or 4 beats, its first downbeat on any of them — is scored
   by the log-likelihood of those observations under *metrical templates* learned from the
   corpora's scores (``assets/meter_templates.json``, ``scripts/meter_templates.py``: per
   place in a bar of that length, how often a note begins on each mark and how long it
   holds), of the first and the last onset's place in the bar (music often begins with an
   upbeat and ends on a downbeat), of how alike the music is one and two bars later (its
   rhythm and its pitch classes), and a prior per bar length; the weighted sum's best is the
   meter. The confidence is the best's softmax share among all hypotheses (temperature
   :data:`CONFIDENCE_TEMPERATURE`).
4. **Compound time.** Where the beats divide in three (onsets on their thirds rather than
   their halves), the beat is a dotted quarter: two beats are 6/8, three 9/8, four 12/8.

The weights were chosen by ``scripts/tune_meter.py`` on SoundFont renders of train pieces
(figures in BENCHMARKS.md). A meter is a listener's reading, not a fact of the sound: 2/4 and
4/4 of one tune differ by where an editor drew the lines, and the benchmark reports that
reading apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

FPS = 100  # onset-envelope frames per second
# feature weights and per-bar-length priors (scripts/tune_meter.py)
METER_WEIGHTS = {"onset": 0.07, "duration": 0.7, "first": 1.7, "last": 0.95, "rhythm_repeat": 33.0,
                 "pitch_repeat": 10.0, "prior2": 0.8, "prior3": -7.5}
# scores → confidence: the best Brier score on the fitting renders of 1, 2, 3, 5 and 8 (mean confidence 0.67, right 0.57)
CONFIDENCE_TEMPERATURE = 3.0
METERS = {"2/4": (2, False), "3/4": (3, False), "4/4": (4, False), "6/8": (2, True), "9/8": (3, True),
          "12/8": (4, True)}  # the meters a user may ask for: (beats per bar, compound)


def check_meter(meter: str | None, *, recording: bool = True, option: str = "--meter") -> None:
    """Refuse a meter a user gives that is none of :data:`METERS`, or that is given for a score
    (``recording`` False), which carries its own."""
    from tunesmith.errors import OptionError

    if meter is None:
        return
    if meter not in METERS:
        raise OptionError(option, f"'{meter[:20]}' is not one of {', '.join(METERS)}")
    if not recording:
        raise OptionError(option, "only a recording's meter can be given; a score carries its own")


NOISE = 0.05  # a transcription's onsets are not a score's: each template probability mixed with this much chance
TEMPLATES_FILE = Path(__file__).resolve().parents[1] / "assets" / "meter_templates.json"
BAR_BEATS = (2, 3, 4)


@dataclass
class Meter:
    beats_per_bar: int
    quarters_per_beat: float  # 1; 1.5 where beats divide in three (6/8 by its dotted quarters)
    time_signature: str  # e.g. "3/4", "6/8"
    beat_seconds: float  # the median tracked beat period
    downbeat_seconds: float  # the first downbeat at or before the first note (may be before 0: a pickup)
    confidence: float  # softmax share of the best hypothesis
    beats: np.ndarray  # tracked beat times, seconds
    downbeats: np.ndarray  # the beats that begin bars, seconds

    @property
    def bar_seconds(self) -> float:
        return self.beats_per_bar * self.beat_seconds

    @property
    def bar_quarters(self) -> float:
        return self.beats_per_bar * self.quarters_per_beat

    @property
    def qpm(self) -> float:
        """Quarter notes per minute."""
        return 60.0 / self.beat_seconds * self.quarters_per_beat

    def to_dict(self) -> dict:
        return {"time_signature": self.time_signature, "beats_per_bar": self.beats_per_bar,
                "quarters_per_beat": self.quarters_per_beat, "confidence": round(self.confidence, 3),
                "beat_seconds": round(self.beat_seconds, 4), "downbeat_seconds": round(self.downbeat_seconds, 3),
                "downbeats": [round(float(x), 3) for x in self.downbeats]}


def _events(notes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Onsets (notes begun within 35 ms of each other are one) and each one's longest note's
    duration."""
    order = np.argsort(notes[:, 0], kind="stable")
    n = notes[order]
    group = np.r_[0, np.cumsum(np.diff(n[:, 0]) > 0.035)]
    t = n[np.r_[True, group[1:] != group[:-1]], 0]  # sorted: each onset's first note
    dur = np.zeros(group[-1] + 1)
    np.maximum.at(dur, group, n[:, 1] - n[:, 0])
    return t, dur


def track_beats(onsets: np.ndarray, durations: np.ndarray, qpm: float) -> np.ndarray:
    """Beat times (seconds) at ``qpm`` over an envelope of the given onsets (librosa's tracker),
    extended by the beat period to before the first onset and past the last."""
    import librosa

    period = 60.0 / qpm
    n_frames = int(np.ceil((onsets.max() + 2 * period) * FPS)) + 1
    env = np.zeros(n_frames)
    w = 1.0 + np.log2(1.0 + np.clip(durations / period, 0, 4))
    np.add.at(env, np.clip(np.round(onsets * FPS).astype(int), 0, n_frames - 1), w)
    kernel = np.exp(-0.5 * (np.arange(-4, 5) / 1.5) ** 2)  # ~15 ms bumps
    env = np.convolve(env, kernel, mode="same")
    _, frames = librosa.beat.beat_track(onset_envelope=env, sr=FPS, hop_length=1, bpm=qpm, tightness=400,
                                        trim=False)
    beats = np.asarray(frames, float) / FPS
    if len(beats) < 2:
        beats = np.arange(onsets.min(), onsets.max() + period, period)
    p = float(np.median(np.diff(beats))) if len(beats) > 1 else period
    before = np.arange(beats[0] - p, onsets.min() - 0.5 * p, -p)[::-1]
    after = np.arange(beats[-1] + p, onsets.max() + 0.5 * p, p)
    return np.r_[before, beats, after]


def on_the_beat(notes: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """The tracked beats, or the beats half a beat later where more of the music's held notes
    begin on those: a tracker locks onto onsets and may follow the off-beats of a tune in even
    eighths. Each note counts by how long it holds its voice (:func:`voice_spans`, at most four
    beats). On the fitting renders this moved 14 pieces to the other grid, 13 of them to where
    their bar lines are."""
    half = 0.5 * np.diff(beats)
    shifted = np.r_[beats[0] - half[0], beats[:-1] + half]  # the off-beats, one before the first beat
    fit = []
    for grid in (beats, shifted):
        u = in_beats(notes[:, 0], grid)
        held = np.minimum(voice_spans(u, in_beats(notes[:, 1], grid) - u, notes[:, 2]), 4.0)
        _, frac = place_in_beats(u)
        fit.append(float(np.sum(held * (np.abs(frac) < 0.12))))
    return shifted if fit[1] > fit[0] else beats


MARKS = np.array([0.0, 0.25, 1 / 3, 0.5, 2 / 3, 0.75])  # places in a beat where notes begin
DURATION_EDGES = np.array([0.75, 1.5, 3.0])  # the longest note begun on a beat, in beats: 4 classes past "none"
N_DUR = len(DURATION_EDGES) + 2


def voice_spans(start: np.ndarray, dur: np.ndarray, pitch: np.ndarray, cap: float = 4.0) -> np.ndarray:
    """How long each note holds its voice, in the units of ``start``: its own duration, or, if
    longer, the time to the next note begun within a fifth of it (the next note of its voice;
    notes begun with it, within 0.1, are a chord's), at most ``cap``. A piano's or a guitar's
    long note decays and a transcription ends it early; the next note of its voice says how
    long it was meant — and a bass note held through a bar of after-beats is as long as a
    listener hears it."""
    order = np.argsort(start, kind="stable")
    s, p = start[order], pitch[order]
    span = np.full(len(s), np.nan)
    for i in range(len(s)):
        j = int(np.searchsorted(s, s[i] + 0.1, side="left"))
        while j < len(s) and s[j] - s[i] < cap:
            if abs(p[j] - p[i]) <= 7:
                span[i] = s[j] - s[i]
                break
            j += 1
    out = np.empty(len(s))
    out[order] = np.where(np.isnan(span), np.minimum(dur[order], cap), np.maximum(span, np.minimum(dur[order], cap)))
    return out


def place_in_beats(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Onsets in beats (float) as (beat index, fraction of the beat past it); an onset just
    before a beat (within 0.15 of one) is that beat's, played early."""
    k = np.floor(u + 0.15).astype(np.int64)
    return k, u - k


def beat_observations(k: np.ndarray, frac: np.ndarray, dur: np.ndarray, n_beats: int) -> tuple[np.ndarray, np.ndarray]:
    """Per beat: which of :data:`MARKS` a note begins on (``(n_beats, 6)`` 0/1) and the class
    of the longest note begun on the beat itself (0 none, then by :data:`DURATION_EDGES`), from
    onsets given as beat index ``k``, fraction ``frac`` and duration in beats ``dur``."""
    ok = (k >= 0) & (k < n_beats)
    k, frac, dur = k[ok], frac[ok], dur[ok]
    d = np.abs(frac[:, None] - MARKS[None, :])
    j = np.argmin(d, axis=1)
    hit = d[np.arange(len(j)), j] < 0.06
    marks = np.zeros((n_beats, len(MARKS)), np.int8)
    marks[k[hit], j[hit]] = 1
    longest = np.zeros(n_beats)
    on = hit & (j == 0)
    np.maximum.at(longest, k[on], dur[on])
    cls = np.where(marks[:, 0] > 0, 1 + np.searchsorted(DURATION_EDGES, longest, side="right"), 0)
    return marks, cls


def _lag_similarity(x: np.ndarray, bar: int) -> float:
    """The mean autocorrelation of the rows of ``x`` (centred) at lags of one and two bars, as a
    share of its value at lag 0."""
    x = x - x.mean(axis=0)
    zero = float(np.sum(x * x))
    if zero <= 1e-9:
        return 0.0
    return float(np.mean([np.sum(x[:-lag] * x[lag:]) / zero if len(x) > lag else 0.0 for lag in (bar, 2 * bar)]))


@dataclass
class MeterEvidence:
    terms: np.ndarray  # (hypotheses, len(METER_WEIGHTS)): each hypothesis's evidence, in METER_WEIGHTS' order
    hypotheses: list[tuple[int, int]]  # (beats per bar, the first downbeat's beat index)
    beats: np.ndarray
    first_onset: float
    compound: bool


@cache
def templates() -> dict:
    """The metrical templates (``assets/meter_templates.json``, from ``scripts/meter_templates.py``)."""
    return json.loads(TEMPLATES_FILE.read_text())


def in_beats(t: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Times (seconds) as beats counted from the first tracked beat, the beats' own spacing
    between them (a recording's tempo may drift; the beat tracker follows it)."""
    period = np.diff(beats)
    period = np.r_[period, period[-1]]
    k = np.clip(np.searchsorted(beats, t, side="right") - 1, 0, len(beats) - 1)
    return k + (t - beats[k]) / period[k]


def meter_evidence(notes: np.ndarray, qpm: float) -> MeterEvidence | None:
    """The evidence for every bar hypothesis (module docstring), before weighting: per
    hypothesis, the log-likelihood of its beats' onsets and durations, of the first and the last
    onset's place in the bar, under the templates of its bar length. None when there are too few
    notes (fewer than 8 onsets) to judge.

    Tried and not kept: the hypotheses read again on the beats half a beat later (a tracker may
    lock onto the off-beats: in a 6/8 jig tracked in quarter notes, one quarter grid in two
    misses the bar lines). On the fitting renders the true bar was then among the hypotheses for
    0.87 rather than 0.79, but the chosen bar was right for 0.57 / 0.55 at best (the off-beat
    grid all but barred by its fitted penalty), against 0.57 / 0.57 without it. Nor an onset
    envelope weighted by how long each note holds its voice (0.56 / 0.55)."""
    notes = np.asarray(notes, float)
    if notes.ndim != 2 or len(notes) < 8:
        return None
    t, dur = _events(notes)
    if len(t) < 8:
        return None
    beats = on_the_beat(notes, track_beats(t, dur, qpm))
    u = in_beats(notes[:, 0], beats)
    d = voice_spans(u, in_beats(notes[:, 1], beats) - u, notes[:, 2])
    k, frac = place_in_beats(u)
    nb = int(k.max()) + 1
    marks, cls = beat_observations(k, frac, d, nb)
    k_first, k_last = int(k.min()), int(k.max())
    # how alike the music is a bar later: the autocorrelation of the beats' rhythm (marks and
    # duration class) and of their pitch classes, at a lag of one and of two bars
    used = slice(k_first, nb)
    rhythm = np.c_[marks, np.eye(N_DUR)[cls]][used].astype(float)
    chroma = np.zeros((nb, 12))
    a = np.clip(k, 0, nb - 1)
    b = np.clip(np.ceil(in_beats(notes[:, 1], beats) - 0.15).astype(np.int64), a + 1, nb)
    for x, y, pc in zip(a, b, notes[:, 2].astype(np.int64) % 12):
        chroma[x:y, pc] += 1.0
    chroma = chroma[used]
    tpl = templates()
    names = list(METER_WEIGHTS)
    rows, hyps = [], []
    for p in BAR_BEATS:
        tp = tpl[str(p)]
        on = (1 - NOISE) * np.asarray(tp["onset"]) + NOISE * 0.5  # (p, marks)
        du = (1 - NOISE) * np.asarray(tp["duration"]) + NOISE / N_DUR  # (p, classes)
        # per place in the bar: the log-likelihood of each beat's observations there
        ll_on = marks @ np.log(on).T + (1 - marks) @ np.log(1 - on).T  # (beats, p)
        ll_du = np.log(du)[:, cls].T  # (beats, p)
        first, last = np.log(np.asarray(tp["first"])), np.log(np.asarray(tp["last"]))
        beats_used = np.arange(k_first, nb)
        for phase in range(p):
            pos = (beats_used - phase) % p
            row = dict.fromkeys(names, 0.0)
            row["onset"] = float(ll_on[beats_used, pos].sum())
            row["duration"] = float(ll_du[beats_used, pos].sum())
            row["first"] = float(first[(k_first - phase) % p])
            row["last"] = float(last[(k_last - phase) % p])
            row["rhythm_repeat"] = _lag_similarity(rhythm, p)
            row["pitch_repeat"] = _lag_similarity(chroma, p)
            if f"prior{p}" in row:
                row[f"prior{p}"] = 1.0
            rows.append([row[n] for n in names])
            hyps.append((p, phase))
    sub = marks[k_first:].sum(axis=0)
    compound = bool(sub[2] + sub[4] > 1.5 * (sub[1] + sub[3] + sub[5]) and sub[2] + sub[4] >= 4)
    return MeterEvidence(np.array(rows), hyps, beats, float(t.min()), compound)


def choose_meter(ev: MeterEvidence, weights: dict | None = None, *, meter: str | None = None) -> Meter:
    """The best-scoring hypothesis of ``ev`` under ``weights`` (default :data:`METER_WEIGHTS`);
    given ``meter`` (one of :data:`METERS`), only where its bars begin is chosen."""
    w = weights or METER_WEIGHTS
    scores = ev.terms @ np.array([w[k] for k in METER_WEIGHTS])
    if meter is not None:
        # the bar in tracked beats: a compound meter's dotted beats where the beats divide in three,
        # else its length in quarters (6/8 over beats that do not divide: three quarter-beats)
        num, den = (int(x) for x in meter.split("/"))
        bar_q = num * 4 / den
        want = num // 3 if METERS[meter][1] and (ev.compound or bar_q not in BAR_BEATS) else int(bar_q)
        scores = np.where([p == want for p, _ in ev.hypotheses], scores, -np.inf)
    best = int(np.argmax(scores))
    share = np.exp((scores - scores[best]) / CONFIDENCE_TEMPERATURE)
    confidence = float(share[best] / share.sum())
    p, phase = ev.hypotheses[best]
    beats = ev.beats
    beat_s = float(np.median(np.diff(beats)))
    downbeats = beats[phase::p]
    first = float(downbeats[0])
    if first > ev.first_onset + 0.25 * beat_s:  # the notes before it are a pickup: the bar line before them
        first -= p * beat_s
    if meter is not None:
        qpb, sig = bar_q / p, meter
    elif ev.compound:
        qpb, sig = 1.5, f"{3 * p}/8"
    else:
        qpb, sig = 1.0, f"{p}/4"
    return Meter(p, qpb, sig, beat_s, first, confidence, beats, downbeats)


def estimate_meter(notes: np.ndarray, qpm: float, *, weights: dict | None = None,
                   meter: str | None = None) -> Meter | None:
    """The meter of transcribed ``notes`` — rows of (start s, end s, MIDI pitch, amplitude) —
    at ``qpm`` (the recording's tempo: :func:`~tunesmith.music.audio.estimate_tempo` of their
    onsets, which :func:`~tunesmith.music.audio.transcribe` computes first). None
    when there are too few notes (fewer than 8 onsets) to judge. ``meter`` (e.g. ``"3/4"``,
    one of :data:`METERS`): the meter is known, and only where its bars begin is estimated."""
    ev = meter_evidence(notes, qpm)
    return None if ev is None else choose_meter(ev, weights, meter=meter)
