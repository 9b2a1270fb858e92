"""Key names, scales and key estimation.

Key estimation is the Krumhansl–Schmuckler algorithm with the
Krumhansl–Kessler (1982) profiles, computed on a duration-weighted
pitch-class histogram straight from note arrays. music21 has the same
algorithm, but only on its own Stream objects; converting every generated
piece to a Stream would cost ~100 ms each, this costs microseconds.

Aarden's (2003) profiles, which find the Bach chorales' stated keys more often, live here
too (:func:`aarden_correlations`): the analysis key finder (``tunesmith.mir.keys``) and
the chorale sampler's opening key (:func:`opening_key`) use them.

A tune (one line) is read by the tune reader (:func:`tune_key`: where the line rests within
the diatonic scale its notes fill, and the church mode it is in), which ``analyze``,
generation and ``harmonize`` share: :func:`score_key` and :func:`score_mode` read a score
that states no key by it, and anything of several voices by Krumhansl–Schmuckler.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from tunesmith.errors import OptionError

PITCH_CLASS_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_NAME_TO_PC = {
    "C": 0, "B#": 0, "C#": 1, "DB": 1, "D": 2, "D#": 3, "EB": 3, "E": 4, "FB": 4, "E#": 5,
    "F": 5, "F#": 6, "GB": 6, "G": 7, "G#": 8, "AB": 8, "A": 9, "A#": 10, "BB": 10, "B": 11,
    "CB": 11,
}
# Krumhansl & Kessler (1982) probe-tone profiles, tonic first.
_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
# Aarden–Essen profiles (Aarden 2003), tonic first.
AARDEN_MAJOR = np.array([17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587, 0.291248, 22.062, 0.145624,
                         8.15494, 0.232998, 4.95122])
AARDEN_MINOR = np.array([18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362, 0.702494, 18.6161, 4.56621,
                         1.93186, 7.37619, 1.75623])
# What the first bass note adds to the two keys on it in :func:`opening_key` (a correlation is
# in [-1, 1]). Chosen on the first bars of the 271 four-voice training chorales, read against
# the key each score states: Krumhansl–Schmuckler 161 agree, Aarden 190, Aarden with a bonus
# of 0.075 (the analysis finder's, for a whole piece) 190, with 0.3: 208.
OPENING_BASS_BONUS = 0.3
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
# Natural, harmonic and melodic minor together: the raised 6th and 7th are common.
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 9, 10, 11)


def parse_key(text: str, *, option: str = "--key") -> tuple[int, str]:
    """Parse ``"G"``, ``"G major"``, ``"f# minor"``, ``"Am"``, ``"Bbm"`` into
    ``(tonic pitch class, "major" | "minor")``."""
    t = text.strip().replace("♯", "#").replace("♭", "b")
    m = re.fullmatch(r"([A-Ga-g])([#b]?)\s*(major|minor|maj|min|m|M)?", t)
    if not m:
        raise OptionError(option, f"'{text}' is not a key; use e.g. 'G major', 'F# minor', 'Am'")
    name = (m.group(1) + m.group(2)).upper()
    pc = _NAME_TO_PC[name]
    q = m.group(3) or ""
    if q in ("minor", "min", "m"):
        mode = "minor"
    elif q in ("major", "maj", "M", ""):
        # A lower-case letter alone means minor, as in ABC and common shorthand.
        mode = "minor" if (q == "" and m.group(1).islower()) else "major"
    else:  # pragma: no cover - the regex admits nothing else
        mode = "major"
    return pc, mode


# Where PITCH_CLASS_NAMES would name a key with seven accidentals, its enharmonic with five:
# D-flat major, not C-sharp major; G-sharp minor, not A-flat minor.
_KEY_SPELLING = {(1, "major"): "Db", (8, "minor"): "G#"}


def key_name(tonic: int, mode: str) -> str:
    """``"G major"``, ``"F# minor"``: a key as a musician names it (the spelling of its
    signature with fewer accidentals)."""
    return f"{_KEY_SPELLING.get((tonic % 12, mode), PITCH_CLASS_NAMES[tonic % 12])} {mode}"


def transpose_key_name(key: str, semitones: int) -> str:
    """A stated key moved by ``semitones``; a church mode keeps its mode ("E dor" up a tone is
    "F# dorian"); a name no reader knows is left as it is."""
    try:
        pc, mode = parse_key(key)
    except OptionError:
        stated = _stated_key(key)
        named = mode_named(key.strip().partition(" ")[2])
        if stated is None or named is None:
            return key
        return reading_name(stated[0] + semitones, named)
    return key_name(pc + semitones, mode)


def key_reading(score) -> str:
    """A score's key as :func:`score_mode` reads it, named as a musician names it: "G major",
    "E minor", "E dorian"."""
    tonic, mode, _ = score_mode(score)
    return reading_name(tonic, mode)


def _profile_matrix() -> np.ndarray:
    rows = np.stack([np.roll(_KK_MAJOR, t) for t in range(12)] + [np.roll(_KK_MINOR, t) for t in range(12)])
    rows = rows - rows.mean(axis=1, keepdims=True)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


_PROFILES = _profile_matrix()


def _aarden_matrix() -> np.ndarray:
    rows = np.stack([np.roll(AARDEN_MAJOR, t) for t in range(12)] + [np.roll(AARDEN_MINOR, t) for t in range(12)])
    rows = rows - rows.mean(axis=1, keepdims=True)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


AARDEN_PROFILES = _aarden_matrix()  # (24, 12): C major … B major, C minor … B minor


def aarden_correlations(hist: np.ndarray) -> np.ndarray:
    """Pearson r of a 12-bin pitch-class histogram with the 24 Aarden key profiles (zeros if flat)."""
    h = np.asarray(hist, float)
    hc = h - h.mean()
    norm = np.linalg.norm(hc)
    return AARDEN_PROFILES @ (hc / norm) if norm > 0 else np.zeros(24)


def opening_key(pitches: np.ndarray, durations: np.ndarray | None = None, *,
                first_bass: int | None = None) -> tuple[int, str]:
    """The key of a piece's opening (a bar or so): Aarden's profiles, and the first bass note
    taken as a sign of the tonic (:data:`OPENING_BASS_BONUS`). ``(0, "major")`` if empty."""
    h = pitch_class_histogram(pitches, durations)
    if h.sum() == 0:
        return 0, "major"
    s = aarden_correlations(h).copy()
    if first_bass is not None:
        s[first_bass % 12] += OPENING_BASS_BONUS
        s[12 + first_bass % 12] += OPENING_BASS_BONUS
    i = int(np.argmax(s))
    return i % 12, ("major" if i < 12 else "minor")


def scale_pitch_classes(tonic: int, mode: str) -> set[int]:
    steps = MAJOR_SCALE if mode == "major" else MINOR_SCALE
    return {(tonic + s) % 12 for s in steps}


def pitch_class_histogram(pitches: np.ndarray, durations: np.ndarray | None = None) -> np.ndarray:
    """Duration-weighted pitch-class histogram, shape (12,), sums to 1 (zeros if empty)."""
    w = np.ones(len(pitches)) if durations is None else np.asarray(durations, dtype=float)
    h = np.bincount(np.asarray(pitches, dtype=np.int64) % 12, weights=w, minlength=12)
    s = h.sum()
    return h / s if s > 0 else h


def estimate_key(pitches: np.ndarray, durations: np.ndarray | None = None) -> tuple[int, str, float]:
    """Krumhansl–Schmuckler key estimate: ``(tonic, mode, correlation)``.

    The correlation (Pearson r between the histogram and the rotated profile)
    is NaN for an empty or flat histogram."""
    h = pitch_class_histogram(pitches, durations)
    if h.sum() == 0 or np.allclose(h, h[0]):
        return 0, "major", float("nan")
    # Pearson r with all 24 rotated profiles at once (rows of _PROFILES are centred, unit norm).
    hc = h - h.mean()
    r = _PROFILES @ (hc / np.linalg.norm(hc))
    i = int(np.argmax(r))  # ties: the first, major before minor, lower tonic first
    return i % 12, ("major" if i < 12 else "minor"), float(r[i])


# the church modes: the degree of the major scale each begins on, and the quality of its third
MODES = {"ionian": (0, "major"), "dorian": (2, "minor"), "phrygian": (4, "minor"), "lydian": (5, "major"),
         "mixolydian": (7, "major"), "aeolian": (9, "minor"), "locrian": (11, "minor")}


def signature_sharps(tonic: int, mode: str) -> int:
    """The key signature of ``mode`` (a key of :data:`MODES`) on ``tonic``, in sharps (flats
    negative, −6 to 5): that of the major scale it is a mode of (E dorian: D major's two)."""
    major = (tonic - MODES[mode][0]) % 12
    return (7 * major + 6) % 12 - 6


def mode_named(text: str) -> str | None:
    """The mode a key's second word names, as ABC K: fields write it ("dor", "Mix", "dorian"; "maj"
    and "min" are ionian and aeolian), or None."""
    t = text.strip().lower()[:3]
    if t in ("maj", "min"):
        return "ionian" if t == "maj" else "aeolian"
    return next((m for m in MODES if m.startswith(t)), None) if len(t) == 3 else None


def _stated_key(text: str) -> tuple[int, str] | None:
    """A stated key as (tonic, "major" | "minor"): a church mode read as the major or minor key of
    its tonic (``K:Edor`` is E minor); None where it names no key."""
    try:
        return parse_key(text, option="key")
    except OptionError:
        tonic, _, mode = text.strip().partition(" ")
        named = mode_named(mode)
        if named:
            quality = MODES[named][1]
            try:
                return parse_key(f"{tonic} {quality}", option="key")[0], quality
            except OptionError:
                pass
    return None


def score_key(score) -> tuple[int, str]:
    """The key of a :class:`~tunesmith.music.score.Score`: its metadata if present (a church mode
    read as the major or minor key of its tonic: ``K:Edor`` is E minor), else estimated — for one
    line (a tune, a melody, a recording of one) by the tune reader (:func:`tune_key`: where the
    line rests within the scale its notes fill), for anything else by Krumhansl–Schmuckler."""
    tonic, _, quality = score_mode(score)
    return tonic, quality


def score_mode(score) -> tuple[int, str, str]:
    """``(tonic, mode, quality)`` of a score: as :func:`score_key`, with the church mode it is in
    where one is stated (``K:Edor``: dorian) or a line's notes name one (:func:`church_mode`);
    "ionian" or "aeolian" otherwise. A key signature is the mode's (E dorian: two sharps)."""
    if score.meta.key:
        stated = _stated_key(score.meta.key)
        if stated is not None:
            named = mode_named(score.meta.key.strip().partition(" ")[2])
            if named is None or MODES[named][1] != stated[1]:
                named = "ionian" if stated[1] == "major" else "aeolian"
            return stated[0], named, stated[1]
    line = score_line(score)
    if line is not None:
        tonic, mode, _, _ = tune_key(line)
        return tonic, mode, MODES[mode][1]
    notes = [t.notes.numpy() for t in score.music.tracks if not t.is_drum and len(t.notes)]
    if not notes:
        return 0, "ionian", "major"
    p = np.concatenate([n["pitch"] for n in notes])
    d = np.concatenate([n["duration"] for n in notes])
    tonic, quality, _ = estimate_key(p, d)
    return tonic, ("ionian" if quality == "major" else "aeolian"), quality


# --------------------------------------------------------------------------- a tune's tonic and mode

# A tune's tonic is where its notes rest — its last note, its downbeats, its longest notes — within
# the diatonic scale its notes fill; a key profile (Krumhansl–Kessler's, Aarden's, built from major
# and minor music) reads a tune in E dorian as D major (Cooley's reel) and one in A mixolydian as D
# major. The reader scores each note of the best-fitting diatonic scales as the tonic, by a
# conditional logit fitted on the train split of O'Neill's and Ryan's tunes against the tonic and
# mode their ABC K: fields state (``scripts/tune_tonic.py``; weights in ``assets/tune_tonic.json``),
# and names the mode by the scale on that tonic the notes fill best. On the held-out tunes the stated
# tonic is found for 0.909 against 0.853 for Krumhansl–Schmuckler and 0.881 for Aarden's profile
# with the signature (BENCHMARKS.md, *A tune's key and mode*).
MODE_OF_DEGREE = {degree: m for m, (degree, _) in MODES.items()}
MODE_OFFSET = {m: degree for m, (degree, _) in MODES.items()}
MAJOR_MODES = tuple(m for m, (_, quality) in MODES.items() if quality == "major")
# when two modes' scales hold a tune's notes alike (it never sings the degree that tells them apart),
# the commoner is named: major and minor before the church modes
MODE_PREFERENCE = ("ionian", "aeolian", "dorian", "mixolydian", "lydian", "phrygian", "locrian")
DIATONIC = np.array([0, 2, 4, 5, 7, 9, 11])
TUNE_MIN_NOTES = 8
TUNE_FEATURES = ("weight", "final_bass", "last_note", "first_note", "downbeat_weight", "long_notes", "profile",
                 "scale_misfit", *(f"mode_{m}" for m in MODE_OF_DEGREE.values()))
TUNE_MODEL_FILE = Path(__file__).resolve().parents[1] / "assets" / "tune_tonic.json"
# A church mode is named only where its scale holds more of the tune's notes than the major or the
# minor scale on its tonic by this share: a tune in G major that sings F natural now and then stays G
# major. Chosen on the train split of O'Neill's and Ryan's tunes (scripts/tune_tonic.py's data): tonic
# and mode as stated 0.847 with no margin, 0.881 at 0.03, 0.889 naming no church mode at all; at 0.03
# it names one for 68 of 2,405 tunes, 57 of them on the stated tonic — and most of the others stated
# in a major or minor key (K:G) whose tune sings the mode's degree throughout (The Chanter's Tune:
# F natural 0.15 of its notes, F sharp none), which a K: field's signature does not say.
CHURCH_MODE_MARGIN = 0.03


@dataclass(frozen=True)
class Line:
    """One line's notes as the tune reader reads them: pitches and start and end ticks of its
    sounding notes, ticks per quarter and per bar (bars counted from tick 0)."""

    pitch: np.ndarray
    start: np.ndarray
    end: np.ndarray
    tpq: int
    bar_ticks: int


def score_line(score) -> Line | None:
    """The notes of a score that is one line (:func:`tunesmith.music.texture.is_one_line`) of at
    least :data:`TUNE_MIN_NOTES` notes, else None."""
    from tunesmith.music.texture import is_one_line, is_recording

    tracks = [t for t in score.music.tracks if not t.is_drum and len(t.notes)]
    if len(tracks) != 1 or len(tracks[0].notes) < TUNE_MIN_NOTES:
        return None
    a = tracks[0].notes.numpy()
    tpq = max(1, int(score.music.ticks_per_quarter))
    if not is_one_line(a["time"], a["time"] + a["duration"], a["pitch"], tpq, recorded=is_recording(score)):
        return None
    ts = score.music.time_signatures
    num, den = (int(ts[0].numerator), int(ts[0].denominator)) if len(ts) else (4, 4)
    return Line(a["pitch"].astype(np.int64), a["time"].astype(np.int64), (a["time"] + a["duration"]).astype(np.int64),
                tpq, max(1, round(tpq * 4 * max(num, 1) / max(den, 1))))


def legato_line(pitches, onsets_q, until_q: float, bar_q: float, tpq: int = 480) -> Line:
    """A line from its notes' pitches and onsets (quarter notes from the first bar line), each held
    until the next begins and the last until ``until_q``: what a sampler knows of a tune it is
    writing. :func:`tune_key` reads such a line's tonic as well, near enough: over the held-out
    tunes of O'Neill's and Ryan's collections cut before their last bar, 0.858 of them (their
    own lengths 0.866; Krumhansl–Schmuckler 0.796)."""
    s = np.round(np.asarray(onsets_q, float) * tpq).astype(np.int64)
    order = np.argsort(s, kind="stable")
    s = s[order]
    e = np.r_[s[1:], max(int(round(until_q * tpq)), int(s[-1]) + 1)] if len(s) else s
    return Line(np.asarray(pitches, np.int64)[order], s, np.maximum(e, s + 1), tpq, max(1, int(round(bar_q * tpq))))


@cache
def _tune_model() -> tuple[np.ndarray, float]:
    d = json.loads(TUNE_MODEL_FILE.read_text())
    if tuple(d["features"]) != TUNE_FEATURES:
        raise RuntimeError(f"{TUNE_MODEL_FILE} was fitted for other features; run scripts/tune_tonic.py")
    return np.asarray(d["weights"], float), float(d["scale_slack"])


def final_bass(pitch: np.ndarray, end: np.ndarray, tpq: int) -> tuple[int, set[int]]:
    """The pitch class of the lowest note sounding in the last half beat, and all of theirs."""
    last = end >= end.max() - tpq // 2
    return int(pitch[last].min()) % 12, {int(p) % 12 for p in pitch[last]}


def tune_candidates(line: Line, scale_slack: float | None = None) -> list[tuple[int, str, np.ndarray]]:
    """Every (tonic, mode) a tune could be in — each note of each diatonic scale holding nearly as
    much of its notes as the best (within ``scale_slack``) — with its features
    (:data:`TUNE_FEATURES`)."""
    if scale_slack is None:
        scale_slack = _tune_model()[1]
    dur = (line.end - line.start).astype(float)
    pcs = line.pitch % 12
    h = np.bincount(pcs, weights=dur, minlength=12)
    h = h / max(h.sum(), 1e-9)
    order = np.argsort(line.start, kind="stable")
    first, last = int(line.pitch[order[0]]) % 12, int(line.pitch[order[-1]]) % 12
    bass = final_bass(line.pitch, line.end, line.tpq)[0]
    on_bar = (line.start % max(int(line.bar_ticks), 1)) == 0
    down = np.bincount(pcs[on_bar], weights=dur[on_bar], minlength=12)
    down = down / max(down.sum(), 1e-9)
    long_ = dur >= np.percentile(dur, 90)
    longest = np.bincount(pcs[long_], minlength=12).astype(float)
    longest = longest / max(longest.sum(), 1.0)
    corr = aarden_correlations(h)
    fits = np.array([h[(c + DIATONIC) % 12].sum() for c in range(12)])
    out = []
    for c in np.flatnonzero(fits >= fits.max() - scale_slack - 1e-12):
        for t in (int(c) + DIATONIC) % 12:
            mode = MODE_OF_DEGREE[(t - int(c)) % 12]
            x = [h[t], t == bass, t == last, t == first, down[t], longest[t],
                 corr[t] if mode in MAJOR_MODES else corr[12 + t], fits.max() - fits[c]]
            onehot = [m == mode for m in MODE_OF_DEGREE.values()]
            out.append((int(t), mode, np.asarray([*x, *onehot], float)))
    return out


def reading_name(tonic: int, mode: str) -> str:
    """"G major", "E minor", "E dorian": ionian and aeolian by their major and minor names, the
    tonic spelt as its major or minor key spells it."""
    quality = "major" if mode in MAJOR_MODES else "minor"
    if mode in ("ionian", "aeolian"):
        return key_name(tonic, quality)
    return f"{key_name(tonic, quality).split(' ')[0]} {mode}"


def church_mode(line: Line, tonic: int) -> str:
    """The mode on ``tonic`` whose scale holds most of the tune's notes (by duration): major or
    minor unless a church mode's scale holds more by :data:`CHURCH_MODE_MARGIN`; the commoner where
    several hold them alike (:data:`MODE_PREFERENCE`)."""
    h = pitch_class_histogram(line.pitch, line.end - line.start)
    # locrian is left out: its tonic has no perfect fifth, and no tune of the corpora rests on one
    fit = {m: h[(tonic - MODE_OFFSET[m] + DIATONIC) % 12].sum() for m in MODE_OF_DEGREE.values() if m != "locrian"}
    base = max(("ionian", "aeolian"), key=lambda m: fit[m])
    best = max(fit.values())
    mode = next(m for m in MODE_PREFERENCE if m in fit and fit[m] >= best - 1e-12)
    return mode if mode in ("ionian", "aeolian") or fit[mode] - fit[base] >= CHURCH_MODE_MARGIN else base


def tune_key(line: Line) -> tuple[int, str, float, list[tuple[str, float]]]:
    """A tune's tonic, mode, the tonic's probability among the candidates (:func:`tune_candidates`,
    scored by the fitted conditional logit) and the best three readings with their scores."""
    w, _ = _tune_model()
    cands = tune_candidates(line)
    z = np.array([x @ w for _, _, x in cands])
    p = np.exp(z - z.max())
    p /= p.sum()
    by_tonic: dict[int, float] = {}
    for (t, _, _), pk in zip(cands, p):
        by_tonic[t] = by_tonic.get(t, 0.0) + float(pk)
    tonic = int(cands[int(np.argmax(z))][0])
    mode = church_mode(line, tonic)
    top, seen = [], set()
    for k in np.argsort(-z, kind="stable"):
        t, m, _ = cands[int(k)]
        name = reading_name(t, m)
        if name not in seen:
            seen.add(name)
            top.append((name, float(z[int(k)])))
        if len(top) == 3:
            break
    return tonic, mode, by_tonic[tonic], top
