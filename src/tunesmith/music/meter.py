"""The meter of a recording — how many beats make a bar, and where the bars begin — and the
upbeat of a MIDI file.

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

The same templates read a MIDI file's upbeat (:func:`place_upbeat`, called by the MIDI
reader): MIDI has no pickup bar, so a piece that begins with an upbeat is mostly written with
its first note at time 0 and its bar lines off the music's; each upbeat of whole eighths is
weighed against none, and the music moved to its place in bar 1.

The weights were chosen by ``scripts/tune_meter.py`` on SoundFont renders of train pieces
(figures in BENCHMARKS.md). A meter is a listener's reading, not a fact of the sound: 2/4 and
4/4 of one tune differ by where an editor drew the lines, and the benchmark reports that
reading apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

FPS = 100  # onset-envelope frames per second
# feature weights and per-bar-length priors (scripts/tune_meter.py)
METER_WEIGHTS = {"onset": 0.07, "duration": 0.7, "first": 1.7, "last": 0.95, "rhythm_repeat": 33.0,
                 "pitch_repeat": 10.0, "prior2": 0.8, "prior3": -7.5}
# scores → confidence: the best Brier score on the fitting renders of 1, 2, 3, 5 and 8 (mean confidence 0.67, right 0.57)
CONFIDENCE_TEMPERATURE = 3.0
SIX_EIGHT_MARGIN = 0.0  # log-likelihood by which 6/8 must beat 3/4 for a bar of three quarters
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
    # per phase of a bar of three beats: log-likelihood of its beats as 6/8 rather than 3/4 (both
    # read in quarter-note beats, the templates' "three_quarters"); positive: 6/8
    six_eight: dict = field(default_factory=dict)


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


def _onset_ll(marks: np.ndarray, onset) -> np.ndarray:
    """(beats, places in the bar): the log-likelihood of each beat's marks (where notes begin in it)
    under a template's onset probabilities per place, each mixed with :data:`NOISE` of chance."""
    on = (1 - NOISE) * np.asarray(onset) + NOISE * 0.5
    return marks @ np.log(on).T + (1 - marks) @ np.log(1 - on).T


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
        du = (1 - NOISE) * np.asarray(tp["duration"]) + NOISE / N_DUR  # (p, classes)
        # per place in the bar: the log-likelihood of each beat's observations there
        ll_on = _onset_ll(marks, tp["onset"])  # (beats, p)
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
    six_eight = {}
    if "three_quarters" in tpl:
        # a bar of three quarter-note beats is 3/4, or 6/8 (two dotted quarters: notes begin on the
        # second beat's half, where 6/8's second beat falls). Its onsets decide, not how long its notes
        # hold: a transcription's ring longer than a score's (on 595 train renders, 3/4 and 6/8 told
        # apart right for 69 of 136 with onsets alone, 63 with durations too; 52 always reading 3/4)
        beats_used = np.arange(k_first, nb)
        ll = {}
        for sig in ("3/4", "6/8"):
            ll[sig] = _onset_ll(marks, tpl["three_quarters"][sig]["onset"])[beats_used]
        for phase in range(3):
            pos = (beats_used - phase) % 3
            six_eight[phase] = float(ll["6/8"][np.arange(len(pos)), pos].sum() - ll["3/4"][np.arange(len(pos)), pos].sum())
    return MeterEvidence(np.array(rows), hyps, beats, float(t.min()), compound, six_eight)


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
    elif p == 3 and ev.six_eight.get(phase, 0.0) > SIX_EIGHT_MARGIN:
        qpb, sig = 1.0, "6/8"  # three quarter-note beats a bar, grouped as two dotted quarters
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


# --------------------------------------------------------------------------- a MIDI file's upbeat

def beat_reading(num: int, den: int) -> tuple[int, float] | None:
    """A time signature read as (beats per bar, quarters per beat) for bars of 2, 3 or 4 beats,
    the beat being the notated denominator or, in compound time, a dotted one (6/8 is two beats,
    3/2 three); None for the others (5/4, 7/8, …), which no template describes."""
    if num in (6, 9, 12) and den in (4, 8, 16):
        return num // 3, 3 * 4 / den
    if num in BAR_BEATS:
        return num, 4 / den
    return None


PICKUP_UNIT = 0.5  # an upbeat is a whole number of eighth notes
PICKUP_NOTES = 400  # the notes (from the start) whose beats are read; the last onset is read too
# weights of the upbeat's evidence (scripts/tune_pickup.py: a conditional logit fitted on train pieces,
# then the prior for "no upbeat" raised until 98% of those without one are left alone; of the other half,
# 0.98 left alone and 0.74 of the upbeats found). "last_on_beat": the last note begins on a beat;
# "end": the last note ends on a bar line
PICKUP_WEIGHTS = {"onset": 0.201, "duration": 0.114, "first": 1.398, "last": 1.0, "last_on_beat": 2.226,
                  "last_on_downbeat": 0.002, "end": 0.077, "none": 2.108}


def pickup_evidence(start_q: np.ndarray, dur_q: np.ndarray, pitch: np.ndarray, num: int,
                    den: int, end_q: float | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """The evidence for each upbeat a score whose first note stands at time 0 may begin with:
    the candidate upbeats (quarter notes, multiples of :data:`PICKUP_UNIT` shorter than a bar, 0
    for none) and per candidate the terms of :data:`PICKUP_WEIGHTS` — the log-likelihood of its
    beats' onsets and held durations under the metrical templates the recordings' meter uses,
    of the first and last onset's place in the bar, and 1 for "no upbeat". None where the time
    signature has no template or there are fewer than 8 onsets."""
    reading = beat_reading(num, den)
    start_q = np.asarray(start_q, float)
    if reading is None or len(np.unique(np.round(start_q, 3))) < 8:
        return None
    p, q = reading
    bar = p * q
    tp = templates()[str(p)]
    on_p = (1 - NOISE) * np.asarray(tp["onset"]) + NOISE * 0.5
    du_p = (1 - NOISE) * np.asarray(tp["duration"]) + NOISE / N_DUR
    first_p, last_p = np.log(np.asarray(tp["first"])), np.log(np.asarray(tp["last"]))
    last_q = float(start_q.max())
    end_q = float(np.max(start_q + np.asarray(dur_q, float))) if end_q is None else float(end_q)
    first = np.argsort(start_q, kind="stable")[:PICKUP_NOTES]  # the beginning says where the bars are
    start_q = start_q[first]
    held = voice_spans(start_q / q, np.asarray(dur_q, float)[first] / q, np.asarray(pitch, np.int64)[first])
    cands = np.arange(0.0, bar - 1e-9, PICKUP_UNIT)
    rows = []
    for s in cands:
        u = (start_q + (bar - s) % bar) / q  # in beats, bar lines at multiples of p
        k, frac = place_in_beats(u)
        k0, kn = int(k.min()), int(k.max())
        k1a, f1a = place_in_beats(np.array([(last_q + (bar - s) % bar) / q]))
        k1, on_beat = int(k1a[0]), abs(float(f1a[0])) < 0.06
        marks, cls = beat_observations(k - k0, frac, held, kn - k0 + 1)
        pos = np.arange(k0, kn + 1) % p
        ll_on = float(np.sum(marks * np.log(on_p[pos]) + (1 - marks) * np.log(1 - on_p[pos])))
        ll_du = float(np.sum(np.log(du_p[pos, cls])))
        at_bar = abs(((end_q + (bar - s) % bar) / bar + 0.5) % 1.0 - 0.5) < 1e-3
        rows.append([ll_on, ll_du, first_p[k0 % p], last_p[k1 % p], float(on_beat), float(on_beat and k1 % p == 0),
                     float(at_bar), float(s == 0)])
    return cands, np.array(rows)


def estimate_pickup(start_q: np.ndarray, dur_q: np.ndarray, pitch: np.ndarray, num: int, den: int,
                    weights: dict | None = None, end_q: float | None = None) -> float:
    """The upbeat (quarter notes; 0 for none) of a score whose first note stands at time 0 — as a
    MIDI file writes a piece with an upbeat, which MIDI has no notion of: the best-scoring
    candidate of :func:`pickup_evidence`. 0 where nothing can be judged."""
    ev = pickup_evidence(start_q, dur_q, pitch, num, den, end_q)
    if ev is None:
        return 0.0
    cands, terms = ev
    w = weights or PICKUP_WEIGHTS
    return float(cands[int(np.argmax(terms @ np.array([w[k] for k in PICKUP_WEIGHTS])))])


# the marker tunesmith's MIDI files carry (music.io.save_midi): their bars are the score's, an upbeat
# padded with rest, and a first note at time 0 is on a downbeat
BARS_AS_WRITTEN = "tunesmith: bar 1 begins at time 0"


def _shift_into_bar_1(music, pad: int) -> None:
    """Move all of ``music`` (symusic, ticks) ``pad`` ticks later, in place; the time signature,
    tempo and key that stood at time 0 stay there."""
    moved = music.shift_time(pad)
    for events in ("time_signatures", "tempos", "key_signatures"):
        for e in getattr(moved, events):
            if e.time == pad:
                e.time = 0
    for k in range(len(music.tracks)):
        music.tracks[k] = moved.tracks[k]
    for events in ("time_signatures", "tempos", "key_signatures", "markers"):
        getattr(music, events).clear()
        for e in getattr(moved, events):
            getattr(music, events).append(e)


def written_upbeat(music) -> float:
    """A pickup a MIDI file writes as a short first bar — a time signature of the upbeat's length
    at 0 (1/4), the piece's (3/4) from the end of that bar on, as some notation programs export one:
    the music moved by the rest of a full bar and the short bar's signature dropped, so that bar 1
    is a full bar of the piece's meter holding the upbeat at its end, as the corpora's pickups are.
    Returns the upbeat in quarter notes (0: no such bar; ``music`` is then unchanged)."""
    ts = sorted(music.time_signatures, key=lambda t: t.time)
    if len(ts) < 2 or ts[0].time != 0:
        return 0.0
    tpq = music.tpq
    short = ts[0].numerator * 4 * tpq // ts[0].denominator
    full = ts[1].numerator * 4 * tpq // ts[1].denominator
    once = all((t.numerator, t.denominator) != (ts[0].numerator, ts[0].denominator) for t in ts[1:])
    if not (0 < short < full and ts[1].time == short and once):
        return 0.0
    music.time_signatures.clear()
    for t in ts[1:]:
        music.time_signatures.append(t)
    _shift_into_bar_1(music, full - short)
    music.time_signatures[0].time = 0
    return short / tpq


def place_upbeat(music) -> float:
    """Where a MIDI file's piece begins with an upbeat written at time 0 (MIDI has no upbeat, and
    its bar lines then stand off the music's), move the music by the rest of that first bar, as
    the corpora's scores and the transcriptions pad it, so that its bars are the piece's. Only a
    quantised piece of one time signature whose first note begins a bar is read
    (:func:`estimate_pickup`); the time signature, tempo and key at time 0 stay there. Returns the
    upbeat in quarter notes (0: the music is left as it is). A file tunesmith wrote (its marker
    :data:`BARS_AS_WRITTEN`, dropped once read) is left as it is: its bars are its score's.
    ``music``: a symusic Score (ticks), changed in place."""
    if any(str(m.text) == BARS_AS_WRITTEN for m in music.markers):  # written by save_midi: bars as its score's
        kept = [m for m in music.markers if str(m.text) != BARS_AS_WRITTEN]
        music.markers.clear()  # read, and dropped: the piece read is its music alone
        for m in kept:
            music.markers.append(m)
        return 0.0
    sigs = {(t.numerator, t.denominator) for t in music.time_signatures}
    rows = [t.notes.numpy() for t in music.tracks if not t.is_drum and len(t.notes)]
    if len(sigs) != 1 or not rows or min(t.time for t in music.time_signatures) != 0:
        return 0.0
    num, den = sigs.pop()
    tpq = music.tpq
    bar = num * 4 * tpq // den
    start = np.concatenate([r["time"] for r in rows]).astype(np.int64)
    if bar <= 0 or tpq // 48 < int(start.min()) % bar < bar - tpq // 48:  # a tick or two off a bar line is on it
        return 0.0
    off_grid = (start * 24) % tpq  # a quantised piece's onsets fall on 32nds and sixteenth triplets
    if np.mean(np.minimum(off_grid, tpq - off_grid) > 0.05 * tpq) > 0.1:
        return 0.0  # a performance recorded as MIDI: its onsets say little of where bars begin
    end = int(max(int((r["time"].astype(np.int64) + r["duration"]).max()) for r in rows))
    first = int(start.min())
    s = estimate_pickup((start - first) / tpq, np.concatenate([r["duration"] for r in rows]) / tpq,
                        np.concatenate([r["pitch"] for r in rows]), num, den, end_q=(end - first) / tpq)
    if s <= 0:
        return 0.0
    _shift_into_bar_1(music, bar - int(round(s * tpq)) - (first - int(round(first / bar)) * bar))
    return s


def estimated_upbeat(score) -> float | None:
    """The upbeat (quarter notes) :func:`place_upbeat` read in a MIDI file, or None where it
    moved nothing."""
    tag = next((t for t in score.meta.tags if t.startswith("upbeat:estimated:")), None)
    return None if tag is None else float(tag.rsplit(":", 1)[1])


def from_first_note(music):
    """A copy of symusic ``music`` moved to begin with its first note at time 0, its time
    signatures, tempos, key signatures and markers from then on kept at 0 or after: what a MIDI
    file holds of a piece whose upbeat no rest pads."""
    first = min(int(t.notes.numpy()["time"].min()) for t in music.tracks if len(t.notes))
    moved = music.shift_time(-first)
    for events in (moved.time_signatures, moved.tempos, moved.key_signatures, moved.markers):
        for e in events:
            e.time = max(int(e.time), 0)
    return moved


def as_written(score):
    """The score with an upbeat the MIDI reader placed in bar 1 (:func:`place_upbeat`,
    :func:`written_upbeat`) moved back to time 0, as its MIDI file holds it — for sound (render, play), where the rest the reading put before it would be silence
    the file does not have. Other scores are returned as they are."""
    if not any(t.startswith(("upbeat:estimated:", "upbeat:written:")) for t in score.meta.tags):
        return score
    out = score.copy()
    out.music = from_first_note(score.music)
    return out
