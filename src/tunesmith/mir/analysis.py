"""Symbolic analysis of one piece: key, meter, tempo, chords with Roman numerals,
cadences, melody, and the evaluation metrics.

Chord labelling is template matching on the duration-weighted pitch classes of
each beat (each bar for a single melody line): every triad and seventh chord
on 12 roots is scored by the weight its tones cover minus the weight they miss,
with a small preference for the chord whose root is in the bass. The Roman
numeral of the chosen chord in the piece's key — with its inversion figure —
comes from music21's ``roman.romanNumeralFromChord``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tunesmith.evaluate.metrics import Notes, all_metrics, extract_notes
from tunesmith.mir.keys import KeyResult, find_key, key_over_time
from tunesmith.music.keys import PITCH_CLASS_NAMES
from tunesmith.music.score import Score

# (suffix, intervals above the root); triads first so that, on a tie, a triad wins
QUALITIES = [("", (0, 4, 7)), ("m", (0, 3, 7)), ("dim", (0, 3, 6)), ("aug", (0, 4, 8)),
             ("7", (0, 4, 7, 10)), ("maj7", (0, 4, 7, 11)), ("m7", (0, 3, 7, 10)), ("m7b5", (0, 3, 6, 10)),
             ("dim7", (0, 3, 6, 9))]
_TEMPLATES = [(root, q, iv) for q, iv in QUALITIES for root in range(12)]
_MASKS = np.zeros((len(_TEMPLATES), 12))
for _i, (_r, _q, _iv) in enumerate(_TEMPLATES):
    _MASKS[_i, [(_r + x) % 12 for x in _iv]] = 1.0
_SEVENTH_COST = 0.05  # a seventh chord must explain more than a triad to be chosen
_COST = np.array([(_SEVENTH_COST if len(iv) == 4 else 0.0) + (0.02 if q in ("aug", "dim7") else 0.0)
                  for _, q, iv in _TEMPLATES])


@dataclass
class Chord:
    bar: int  # 1-based
    beat: float  # 1-based, in beats of the meter
    quarters: float  # onset in quarter notes from the start
    name: str  # e.g. "G7/B"
    roman: str  # e.g. "V65"
    root: int
    quality: str
    bass: int  # pitch class of the lowest sounding note

    def to_dict(self) -> dict:
        return {"bar": self.bar, "beat": self.beat, "quarters": self.quarters, "chord": self.name,
                "roman": self.roman}


@dataclass
class Analysis:
    """Everything ``tunesmith analyze`` reports about one symbolic piece."""

    title: str
    key: KeyResult
    key_regions: list[dict]
    meter: str
    tempo_qpm: float | None
    bars: int
    texture: str  # "melody", "four voices", "polyphonic"
    chords: list[Chord]
    cadences: list[dict]
    melody: dict
    metrics: dict
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"title": self.title, "key": self.key.to_dict(), "key_regions": self.key_regions,
                "meter": self.meter, "tempo_qpm": self.tempo_qpm, "bars": self.bars, "texture": self.texture,
                "chords": [c.to_dict() for c in self.chords], "cadences": self.cadences,
                "melody": self.melody, "metrics": self.metrics, **self.extra}


def _roman(pitches: list[int], tonic: int, mode: str) -> str:
    """music21's Roman numeral for a chord voiced bass first; a chromatic major triad or a
    dominant seventh off the fifth degree is read as a secondary dominant (V7/IV, not Ib753)."""
    from music21 import chord as m21chord
    from music21 import key as m21key
    from music21 import roman

    k = m21key.Key(PITCH_CLASS_NAMES[tonic].replace("b", "-"), mode)
    c = m21chord.Chord(sorted(pitches))
    try:
        plain = roman.romanNumeralFromChord(c, k)
        fig = plain.figure
        chromatic = fig[:1] in ("#", "b") or any(a in fig[1:] for a in ("#", "b"))
        if chromatic and (c.isDominantSeventh() or c.isMajorTriad()):
            sec = roman.romanNumeralFromChord(c, k, preferSecondaryDominants=True).figure
            if "/" in sec:
                fig = sec
        return _tidy(fig)
    except Exception:  # noqa: BLE001 - music21 cannot name a few odd sonorities; say so
        return "?"


def _tidy(fig: str) -> str:
    """Drop figures that only restate the chord's own raised/lowered third (V75#3 → V7, V#3 → V)."""
    for tail in ("75#3", "5#3", "#3", "b53", "53"):
        if fig.endswith(tail) and len(fig) > len(tail):
            return fig[: -len(tail)] + ("7" if tail.startswith("7") else "")
    return fig


def label_chord(weights: np.ndarray, bass: int) -> tuple[int, str, float]:
    """The best (root, quality, fit) for a 12-bin pitch-class weight vector with a given bass."""
    w = np.asarray(weights, float)
    total = w.sum()
    if total <= 0:
        return -1, "", 0.0
    w = w / total
    fit = _MASKS @ w - (1 - _MASKS) @ w - _COST
    fit = fit + 0.03 * np.array([r == bass for r, _, _ in _TEMPLATES])
    i = int(np.argmax(fit))
    return _TEMPLATES[i][0], _TEMPLATES[i][1], float(fit[i])


def _texture(n: Notes) -> str:
    tracks = np.unique(n.track[n.pitched])
    if len(tracks) == 1:
        t = int(tracks[0])
        idx = n.track_notes(t)
        overlap = (n.start[idx][1:] < n.end[idx][:-1] - n.tpq // 8).mean() if len(idx) > 1 else 0.0
        if overlap < 0.05:
            return "melody"
    return "four voices" if len(tracks) == 4 else "polyphonic"


def chords(n: Notes, tonic: int, mode: str, *, per: str = "beat") -> list[Chord]:
    """One chord per beat (``per="bar"`` for a melody: the harmony it implies)."""
    sel = np.flatnonzero(n.pitched)
    if not len(sel):
        return []
    span = n.bar_ticks if per == "bar" else max(1, n.bar_ticks // max(1, n.beats_per_bar))
    end = int(n.end[sel].max())
    out: list[Chord] = []
    s, e, p = n.start[sel], n.end[sel], n.pitch[sel]
    for t0 in range(0, end, span):
        t1 = t0 + span
        on = (s < t1) & (e > t0)
        if not on.any():
            continue
        dur = (np.minimum(e[on], t1) - np.maximum(s[on], t0)).astype(float)
        w = np.bincount(p[on] % 12, weights=dur, minlength=12)
        at_onset = on & (s <= t0) | (on & (s == s[on].min()))
        bass_pitch = int(p[at_onset].min()) if at_onset.any() else int(p[on].min())
        root, q, fit = label_chord(w, bass_pitch % 12)
        if root < 0 or fit <= 0:
            continue
        iv = dict(QUALITIES)[q]
        tones = {(root + x) % 12 for x in iv}
        bass_pc = bass_pitch % 12 if bass_pitch % 12 in tones else root
        # close position above the bass (music21 misreads some wide, doubled spacings)
        voicing = [48 + bass_pc] + sorted(48 + bass_pc + (pc - bass_pc) % 12 for pc in tones - {bass_pc})
        name = PITCH_CLASS_NAMES[root] + q + (f"/{PITCH_CLASS_NAMES[bass_pc]}" if bass_pc != root else "")
        bar, within = divmod(t0, n.bar_ticks)
        beat_ticks = max(1, n.bar_ticks // max(1, n.beats_per_bar))
        out.append(Chord(bar + 1, round(within / beat_ticks + 1, 2), round(t0 / n.tpq, 3), name,
                         _roman(voicing, tonic, mode), root, q, bass_pc))
    return out


def melody_line(n: Notes) -> np.ndarray:
    """Indices of the melody's notes: the highest track (by mean pitch), reduced to its top note
    at each onset."""
    tracks = [int(t) for t in np.unique(n.track[n.pitched])]
    if not tracks:
        return np.zeros(0, np.int64)
    top = max(tracks, key=lambda t: n.pitch[(n.track == t) & n.pitched].mean())
    idx = n.track_notes(top)
    keep = np.r_[n.start[idx][1:] != n.start[idx][:-1], True]  # sorted by (start, pitch): last = highest
    return idx[keep]


def melody_stats(n: Notes) -> dict:
    idx = melody_line(n)
    if not len(idx):
        return {}
    p = n.pitch[idx]
    iv = np.diff(p)
    steps = np.abs(iv)
    hist = {str(k): int(v) for k, v in zip(*np.unique(np.clip(iv, -12, 12), return_counts=True))}
    return {"notes": int(len(p)), "lowest": int(p.min()), "highest": int(p.max()), "range": int(p.max() - p.min()),
            "mean_abs_interval": round(float(steps.mean()), 3) if len(iv) else 0.0,
            "contour": {"up": round(float((iv > 0).mean()), 3) if len(iv) else 0.0,
                        "down": round(float((iv < 0).mean()), 3) if len(iv) else 0.0,
                        "repeat": round(float((iv == 0).mean()), 3) if len(iv) else 0.0},
            "steps_share": round(float((steps <= 2).mean()), 3) if len(iv) else 0.0,
            "interval_histogram": hist}


def _degree(roman_fig: str) -> str:
    """The Roman numeral without its figures/inversion: "V65" → "V", "viio7" → "vii"."""
    core = ""
    for ch in roman_fig:
        if ch in "IViv":
            core += ch
        elif core:
            break
    return core.upper()


def phrase_ends(n: Notes) -> list[int]:
    """Onsets (ticks) of melody notes that end phrases: notes of at least two beats, or followed by
    a rest of at least a beat, and the last note."""
    idx = melody_line(n)
    if not len(idx):
        return []
    beat = max(1, n.bar_ticks // max(1, n.beats_per_bar))
    s, e = n.start[idx], n.end[idx]
    dur = e - s
    gap = np.r_[s[1:] - e[:-1], 0]
    ends = [int(s[i]) for i in range(len(idx) - 1) if dur[i] >= 2 * beat and dur[i] >= 2 * np.median(dur) or gap[i] >= beat]
    ends.append(int(s[-1]))
    return sorted(set(ends))


def cadences(n: Notes, chord_list: list[Chord], tonic: int, mode: str) -> list[dict]:
    """The cadence at each phrase end, from the last two chords: authentic (perfect when both
    chords are in root position and the melody ends on the tonic), half, plagal, deceptive."""
    if len(chord_list) < 2:
        return []
    onsets = np.array([round(c.quarters * n.tpq) for c in chord_list])
    mel = melody_line(n)
    out = []
    for t in phrase_ends(n):
        i = int(np.searchsorted(onsets, t, side="right")) - 1
        if i < 1:
            continue
        prev, last = chord_list[i - 1], chord_list[i]
        a, b = _degree(prev.roman), _degree(last.roman)
        kind = None
        if b == "I" and a in ("V", "VII"):
            top = n.pitch[mel][np.searchsorted(n.start[mel], t, side="right") - 1] % 12
            perfect = a == "V" and prev.bass == prev.root and last.bass == last.root and top == tonic
            kind = "perfect authentic" if perfect else "imperfect authentic"
        elif b == "V":
            kind = "phrygian half" if mode == "minor" and a == "IV" and prev.bass != prev.root else "half"
        elif b == "I" and a == "IV":
            kind = "plagal"
        elif a == "V" and b == "VI":
            kind = "deceptive"
        if kind:
            out.append({"bar": last.bar, "beat": last.beat, "type": kind, "chords": f"{prev.roman} – {last.roman}"})
    return out


def _scalar_metrics(n: Notes) -> dict:
    out = {}
    for k, v in all_metrics(n).items():
        if np.ndim(v) == 0 and v is not None:
            f = float(v)
            out[k] = round(f, 4) if math.isfinite(f) else None
    return out


def analyze_score(score: Score) -> Analysis:
    """Analyse one symbolic piece (see :class:`Analysis`)."""
    from tunesmith.errors import BadInputError

    n = extract_notes(score)
    if not n.pitched.any():
        raise BadInputError(score.meta.source or score.meta.title or "piece", "no pitched notes to analyse")
    ks = score.music.key_signatures
    signature = int(ks[0].key) if len(ks) else None
    key = find_key(n, signature=signature, stated=score.meta.key)
    texture = _texture(n)
    chord_list = chords(n, key.tonic, key.mode, per="bar" if texture == "melody" else "beat")
    bars = int(n.end[n.pitched].max() - 1) // n.bar_ticks + 1
    tempo = score.tempo()
    return Analysis(
        title=score.meta.title or "", key=key, key_regions=key_over_time(n), meter=score.time_signature() or "4/4",
        tempo_qpm=round(tempo, 2) if tempo else None, bars=bars, texture=texture, chords=chord_list,
        cadences=cadences(n, chord_list, key.tonic, key.mode), melody=melody_stats(n), metrics=_scalar_metrics(n))


def save_analysis_png(score: Score, a: Analysis, path) -> object:
    """The piano roll with the chord chart above it (one label per chord change) and the
    key regions as a coloured band underneath."""
    from tunesmith.music.plot import draw_pianoroll, plt, save_figure

    fig, (ax, kax) = plt.subplots(2, 1, figsize=(14, 5.5), dpi=100, sharex=True,
                                  gridspec_kw={"height_ratios": [10, 1]})
    end = draw_pianoroll(ax, score)
    top = ax.get_ylim()[1]
    shown: list[Chord] = []
    for c in a.chords:  # label only where the chord changes
        if not shown or c.name != shown[-1].name:
            shown.append(c)
    # labels in up to three staggered rows, each in the lowest row where it clears the one before
    # it; a change with no room in any row goes unlabelled (its chord is in --json and the summary)
    x0, x1 = ax.get_xlim()
    width_pt = fig.get_figwidth() * 72 * ax.get_position().width
    per_char = 0.62 * 6 * (x1 - x0) / width_pt  # quarters taken by one character at 6 pt
    free = [float("-inf")] * 3
    for c in shown:
        label = f"{c.name}\n{c.roman}"
        row = next((r for r in range(3) if c.quarters >= free[r]), None)
        if row is None:
            continue
        free[row] = c.quarters + per_char * (max(len(x) for x in label.split("\n")) + 1)
        ax.text(c.quarters, top, label, fontsize=6, va="bottom", ha="left", clip_on=False,
                transform=ax.transData + _points_up(fig, 18 * row))
    ax.set_title(f"{a.title or 'piece'} — {a.key.key}, {a.meter}, {a.bars} bars", pad=62)
    bar_q = _bar_quarters(a)
    cmap = plt.get_cmap("tab20")
    names = sorted({r["key"] for r in a.key_regions})
    for r in a.key_regions:
        x0 = (r["start_bar"] - 1) * bar_q
        x1 = min(end, r["end_bar"] * bar_q)
        kax.axvspan(x0, x1, color=cmap(names.index(r["key"]) % 20), alpha=0.8)
        kax.text((x0 + x1) / 2, 0.5, r["key"], ha="center", va="center", fontsize=8)
    kax.set_yticks([])
    kax.set_ylabel("key", rotation=0, ha="right", va="center")
    kax.set_xlabel("time (quarter notes)")
    fig.tight_layout()
    return save_figure(fig, path)


def _points_up(fig, points: float):
    from matplotlib.transforms import ScaledTranslation

    return ScaledTranslation(0, points / 72, fig.dpi_scale_trans)


def _bar_quarters(a: Analysis) -> float:
    num, den = (int(x) for x in a.meter.split("/")) if "/" in a.meter else (4, 4)
    return max(num, 1) * 4 / max(den, 1)
