"""Key names, scales and key estimation.

Key estimation is the Krumhansl–Schmuckler algorithm with the
Krumhansl–Kessler (1982) profiles, computed on a duration-weighted
pitch-class histogram straight from note arrays. music21 has the same
algorithm, but only on its own Stream objects; converting every generated
piece to a Stream would cost ~100 ms each, this costs microseconds.

Aarden's (2003) profiles, which find the Bach chorales' stated keys more often, live here
too (:func:`aarden_correlations`): the analysis key finder (``tunesmith.mir.keys``) and
the chorale sampler's opening key (:func:`opening_key`) use them.
"""

from __future__ import annotations

import re

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
    try:
        pc, mode = parse_key(key)
    except OptionError:
        return key
    return key_name(pc + semitones, mode)


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


def mode_named(text: str) -> str | None:
    """The mode a key's second word names, as ABC K: fields write it ("dor", "Mix", "dorian"; "maj"
    and "min" are ionian and aeolian), or None."""
    t = text.strip().lower()[:3]
    if t in ("maj", "min"):
        return "ionian" if t == "maj" else "aeolian"
    return next((m for m in MODES if m.startswith(t)), None) if len(t) == 3 else None


def score_key(score) -> tuple[int, str]:
    """The key of a :class:`~tunesmith.music.score.Score`: its metadata if present (a church mode
    read as the major or minor key of its tonic: ``K:Edor`` is E minor), else estimated."""
    if score.meta.key:
        try:
            return parse_key(score.meta.key, option="key")
        except OptionError:
            tonic, _, mode = score.meta.key.strip().partition(" ")
            named = mode_named(mode)
            if named:
                quality = MODES[named][1]
                try:
                    return parse_key(f"{tonic} {quality}", option="key")[0], quality
                except OptionError:
                    pass
    notes = [t.notes.numpy() for t in score.music.tracks if not t.is_drum and len(t.notes)]
    if not notes:
        return 0, "major"
    p = np.concatenate([n["pitch"] for n in notes])
    d = np.concatenate([n["duration"] for n in notes])
    tonic, mode, _ = estimate_key(p, d)
    return tonic, mode
