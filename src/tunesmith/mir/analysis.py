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
from functools import lru_cache

import numpy as np

from tunesmith.evaluate.metrics import Notes, all_metrics, extract_notes
from tunesmith.mir.keys import KeyResult, find_key, key_over_time
from tunesmith.music.keys import PITCH_CLASS_NAMES, key_name, parse_key
from tunesmith.music.score import Score
from tunesmith.music.texture import is_one_line, is_recording

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
    local_key: str | None = None  # the key region's, where it is not the piece's key
    local_roman: str | None = None  # the numeral in that key (a modulation's chords read there)

    def to_dict(self) -> dict:
        d = {"bar": self.bar, "beat": self.beat, "quarters": self.quarters, "chord": self.name, "roman": self.roman}
        if self.local_key:
            d["local_key"], d["local_roman"] = self.local_key, self.local_roman
        return d


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


_LETTERS = "CDEFGAB"
_LETTER_PC = (0, 2, 4, 5, 7, 9, 11)
_STEPS = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
_THIRDS = {0: 0, 1: 1, 2: 1, 3: 2, 4: 2, 5: 3, 6: 4, 7: 4, 8: 4, 9: 6, 10: 6, 11: 6}  # letters above the root


def _spelled(letter: int, pc: int) -> str:
    alt = (pc - _LETTER_PC[letter] + 6) % 12 - 6
    return _LETTERS[letter] + ("#" * alt if alt > 0 else "b" * -alt)


def _key_letters(tonic: int, mode: str) -> dict[int, int]:
    """The letter of each pitch class the key writes without a chromatic sign (in minor also the
    raised sixth and seventh), from the tonic as :func:`key_name` spells it (G# minor, E♭ major)."""
    t = _LETTERS.index(key_name(tonic, mode)[0])
    out = {(tonic + st) % 12: (t + d) % 7 for d, st in enumerate(_STEPS[mode])}
    if mode == "minor":
        out.setdefault((tonic + 9) % 12, (t + 5) % 7)
        out.setdefault((tonic + 11) % 12, (t + 6) % 7)
    return out


def spell_pitch(pitch: int, tonic: int, mode: str) -> str:
    """A MIDI pitch named in the key, with its octave (D♭5 in F minor, C♯5 in D major): a note of
    the key by its letter there, another as the raised degree below in a key of sharps, the lowered
    degree above in a key of flats, and by its usual name (C♯, E♭, F♯, A♭, B♭) in C major and A
    minor. The octave is the letter's (B♯3 sounds as C4)."""
    pc = pitch % 12
    letters = _key_letters(tonic, mode)
    name = key_name(tonic, mode)
    if pc in letters:
        letter = letters[pc]
    elif name in ("C major", "A minor"):  # no signature: the usual names (C♯, E♭, F♯, A♭, B♭)
        letter = _LETTERS.index(PITCH_CLASS_NAMES[pc][0])
    else:  # as the raised degree below or the lowered degree above: a natural if either is one (B in
        # E♭ major, not C♭), else the key's kind of sign
        flats = "b" in name.split()[0] or name in ("F major", "D minor", "G minor", "C minor", "F minor")
        ways = [letters[x] for x in ((pc + 1) % 12, (pc - 1) % 12) if x in letters]
        ways = [w for w in ways if abs((pc - _LETTER_PC[w] + 6) % 12 - 6) == 1] or \
            [_LETTERS.index(PITCH_CLASS_NAMES[pc][0])]
        natural = [w for w in range(7) if _LETTER_PC[w] == pc]
        letter = natural[0] if natural else min(ways, key=lambda w: ((_LETTER_PC[w] > pc) != flats,))
    name = _spelled(letter, pc)
    octave = (pitch - (pc - _LETTER_PC[letter] + 6) % 12 + 6) // 12 - 1
    return f"{name}{octave}"


def spell_melody(pitches) -> list[str]:
    """A line's MIDI pitches named in the key its notes suggest (Aarden profiles on the count of
    each pitch class: a tune heard from a recording has no key signature), as :func:`spell_pitch`."""
    from tunesmith.mir.keys import correlations, rank_keys

    p = np.asarray(pitches, np.int64)
    if not len(p):
        return []
    best = rank_keys(correlations(np.bincount(p % 12, minlength=12).astype(float)))[0]
    tonic, mode = best % 12, "major" if best < 12 else "minor"
    return [spell_pitch(int(x), tonic, mode) for x in p]


def spell_chord(root: int, quality: str, bass: int, tonic: int, mode: str) -> tuple[str, list[str]]:
    """The chord's root and tones (bass first) spelled in the key, as a musician writes them:
    a diatonic root by its letter in the key; a chromatic one as the raised leading tone of the
    degree above (diminished chords), the dominant of a degree (major and dominant-seventh
    chords: F♯ for V/V in C, B for V/V in F) or else the lowered degree above (♭VI, ♭II);
    the other tones in thirds above the root. Music21 reads a chord in a key by its spelling
    (G♯–C–E♭ is no A♭ triad), so a MIDI pitch's default spelling will not do."""
    letters = _key_letters(tonic, mode)
    if root in letters:
        r = letters[root]
    elif quality in ("dim", "dim7", "m7b5") and (root + 1) % 12 in letters:
        r = (letters[(root + 1) % 12] - 1) % 7
    elif quality in ("", "7") and (root + 5) % 12 in letters:
        r = (letters[(root + 5) % 12] + 4) % 7
    elif (root + 1) % 12 in letters:
        r = letters[(root + 1) % 12]
    else:
        r = _LETTERS.index(PITCH_CLASS_NAMES[root][0])
    iv = dict(QUALITIES)[quality]
    tones = [(root + x) % 12 for x in iv]
    names = {pc: _spelled((r + _THIRDS[x]) % 7, pc) for pc, x in zip(tones, iv)}
    order = [bass] + [pc for pc in tones if pc != bass] if bass in names else tones
    return names[root], [names[pc] for pc in order]


_NUMERALS = {"major": ("I", "ii", "iii", "IV", "V", "vi", "vii"), "minor": ("i", "ii", "III", "iv", "V", "VI", "VII")}
_INVERSIONS = {3: ("", "6", "64"), 4: ("7", "65", "43", "42")}


def _tonicized(degree_pc: int, tonic: int, mode: str) -> str | None:
    """The numeral of the diatonic triad on a pitch class, as the target of a secondary chord
    (V/V, viio7/ii); None where the triad is diminished or the pitch class is not a degree."""
    steps = _STEPS[mode]
    d = (degree_pc - tonic) % 12
    if d not in steps:
        return None
    i = steps.index(d)
    if i == 0 or (mode == "major" and i == 6) or (mode == "minor" and i == 1):
        return None
    return _NUMERALS[mode][i]


def _textbook(fig: str, mode: str) -> str:
    """music21 writes the natural sixth and seventh degrees of a minor key as ♭VI and ♭VII (it
    counts from the raised ones); a harmony textbook writes VI and VII."""
    if mode != "minor":
        return fig
    return "/".join(x[1:] if x[:1] == "b" and x[1:3].upper() == "VI" else x for x in fig.split("/"))


@lru_cache(maxsize=8192)  # a piece repeats its chords: music21 reads each (chord, key) once
def roman_numeral(root: int, quality: str, bass: int, tonic: int, mode: str) -> str:
    """The Roman numeral of a chord (root and quality as :data:`QUALITIES`, bass pitch class) in a
    key: music21's ``romanNumeralFromChord`` on the chord spelled in the key
    (:func:`spell_chord`), in close position above the bass; a chromatic major triad or dominant
    seventh is read as a secondary dominant (V7/IV, not Ib753) and a diminished chord on a
    chromatic leading tone as a secondary leading-tone chord (viio7/V, not #ivo7); minor keys'
    sixth and seventh degrees as a textbook writes them (VI, VII)."""
    from music21 import chord as m21chord
    from music21 import key as m21key
    from music21 import pitch as m21pitch
    from music21 import roman

    iv = dict(QUALITIES)[quality]
    tones = [(root + x) % 12 for x in iv]
    letters = _key_letters(tonic, mode)
    if quality in ("dim", "dim7", "m7b5"):  # a leading-tone chord: of the key, or of a degree
        target = (root + 1) % 12
        figure = ("ø" if quality == "m7b5" else "o") + _INVERSIONS[len(iv)][tones.index(bass) if bass in tones else 0]
        if target == tonic:
            return "vii" + figure
        if root not in letters and (numeral := _tonicized(target, tonic, mode)):
            return f"vii{figure}/{numeral}"
    _, spelled = spell_chord(root, quality, bass, tonic, mode)
    try:
        k = m21key.Key(key_name(tonic, mode).split()[0].replace("b", "-"), mode)
        pitches, last = [], None
        for name in spelled:  # close position upwards from the bass, octave 3
            pt = m21pitch.Pitch(name.replace("b", "-") + "3")
            while last is not None and pt.ps <= last.ps:
                pt.octave += 1
            pitches.append(pt)
            last = pt
        c = m21chord.Chord(pitches)
        fig = roman.romanNumeralFromChord(c, k).figure
        chromatic = any(pc not in letters for pc in tones)
        if chromatic and (quality == "7" or (quality == "" and root != tonic)):  # a major tonic: Picardy, I
            sec = roman.romanNumeralFromChord(c, k, preferSecondaryDominants=True).figure
            if "/" in sec:
                fig = sec
        return _textbook(_figured(fig, len(tones), tones.index(bass) if bass in tones else 0), mode)
    except Exception:  # noqa: BLE001 - music21 cannot name a few odd sonorities; say so
        return "?"


def _figured(fig: str, size: int, inversion: int) -> str:
    """music21's numeral with the inversion figures a textbook writes (6, 64; 7, 65, 43, 42): its
    own figures also restate altered intervals above the bass (V75#3, IV6#42), which say nothing
    the chord's name does not."""
    import re

    head, _, tail = fig.partition("/")
    m = re.match(r"[#b-]*[IViv]+[o+ø]?", head)
    if not m:
        return fig
    return m.group(0) + _INVERSIONS[size][inversion] + (f"/{tail}" if tail else "")


_MELODY_QUALITIES = ("", "m", "7")  # what a tune's bar implies: major and minor triads, the dominant seventh
_MELODY_ALLOWED = np.array([q in _MELODY_QUALITIES for _, q, _ in _TEMPLATES])
_PRIMARY_BONUS, _DIATONIC_BONUS, _ROOT_WEIGHT = 0.1, 0.05, 0.05


def label_chord(weights: np.ndarray, bass: int, *, implied_in: tuple[int, str] | None = None) -> tuple[int, str, float]:
    """The best (root, quality, fit) for a 12-bin pitch-class weight vector with a given bass.

    ``implied_in=(tonic, mode)`` labels the harmony a single melody implies: a tune's bar
    holds passing notes that would make any seventh chord fit, so only major and minor
    triads and the dominant seventh are candidates (a bar C A F# A implies V7, not viio); the
    bass says nothing; a chord on a degree of the key is preferred (the primary triads I, IV
    and V the most), a chord whose root the tune sounds a little; and a chromatic chord is
    allowed only where the tune sings its chromatic note. On the Bach
    chorales' sopranos alone the bar's chord root agrees with the root the four voices hold
    longest in the bar for 0.46 of the bars, against 0.28 for the four-voice labelling
    (``python benchmarks/mir.py --only chords``)."""
    w = np.asarray(weights, float)
    total = w.sum()
    if total <= 0:
        return -1, "", 0.0
    w = w / total
    fit = _MASKS @ w - (1 - _MASKS) @ w - _COST
    if implied_in is None:
        fit = fit + 0.03 * np.array([r == bass for r, _, _ in _TEMPLATES])
    else:
        tonic, mode = implied_in
        degree = np.array([(r - tonic) % 12 for r, _, _ in _TEMPLATES])
        fit = fit + np.where(np.isin(degree, (0, 5, 7)), _PRIMARY_BONUS,
                             np.where(np.isin(degree, _STEPS[mode]), _DIATONIC_BONUS, 0.0))
        # a chord's root that the tune sounds is likelier its chord than one it only passes by
        fit = fit + _ROOT_WEIGHT * w[[r for r, _, _ in _TEMPLATES]]
        # a chromatic chord only where the tune sings its chromatic note (the raised seventh of a
        # minor key is the key's own)
        scale = set(_STEPS[mode]) | ({11} if mode == "minor" else set())
        absent = np.array([any((r + x - tonic) % 12 not in scale and w[(r + x) % 12] == 0 for x in iv)
                           for r, _, iv in _TEMPLATES])
        fit = np.where(_MELODY_ALLOWED & ~absent, fit, -np.inf)
    i = int(np.argmax(fit))
    return _TEMPLATES[i][0], _TEMPLATES[i][1], float(fit[i])


def texture_of(n: Notes, *, recorded: bool = False) -> str:
    """"melody" for one track whose notes neither start together (under 5% of them) nor sound
    through most of the next note (under 20%); else "four voices" or "polyphonic".

    A recording (``recorded``) is one track whose notes ring on into the next by their decay and
    reverberation, and whose instrument may sound octaves of each note (an organ's stops), so
    neither test holds for it: it is one line where under
    :data:`~tunesmith.music.texture.RECORDED_CHORD_SHARE` of its onsets hold two notes that are not
    an octave apart (:func:`~tunesmith.music.texture.chord_onset_share`). On 40 held-out pieces
    played on five instruments, that share was 0–0.10 for the 20 single lines and 0.41–0.79 for
    the 20 four-voice chorales; the two tests above had called 14 of the 20 single lines
    polyphonic (an organ's and a flute's among them)."""
    tracks = np.unique(n.track[n.pitched])
    if len(tracks) == 1:
        idx = np.flatnonzero(n.pitched)
        if is_one_line(n.start[idx], n.end[idx], n.pitch[idx], n.tpq, recorded=recorded):
            return "melody"
        if recorded:
            return "polyphonic"
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
        if per == "bar":  # a melody's bar: the note sounding as the bar begins counts twice
            w = w + np.bincount(p[at_onset] % 12, weights=dur[at_onset[on]], minlength=12)
            root, q, fit = label_chord(w, -1, implied_in=(tonic, mode))
        else:
            root, q, fit = label_chord(w, bass_pitch % 12)
        if root < 0 or fit <= 0:
            continue
        tones = {(root + x) % 12 for x in dict(QUALITIES)[q]}
        # a melody implies no inversion: its lowest note is no bass
        bass_pc = bass_pitch % 12 if per != "bar" and bass_pitch % 12 in tones else root
        # spelled in the key, in close position above the bass (music21 misreads some wide, doubled spacings)
        root_name, spelled = spell_chord(root, q, bass_pc, tonic, mode)
        name = root_name + q + (f"/{spelled[0]}" if bass_pc != root else "")
        bar, within = divmod(t0, n.bar_ticks)
        beat_ticks = max(1, n.bar_ticks // max(1, n.beats_per_bar))
        out.append(Chord(bar + 1, round(within / beat_ticks + 1, 2), round(t0 / n.tpq, 3), name,
                         roman_numeral(root, q, bass_pc, tonic, mode), root, q, bass_pc))
    return out


def melody_line(n: Notes, *, hide_under: bool = True) -> np.ndarray:
    """Indices of the melody's notes: the highest track (by mean pitch) of those that sound in at
    least half as many bars as the busiest, reduced to its top note at each onset, without the
    notes struck under a higher note that holds through them (``hide_under=False``: the highest
    track of all, with the notes under, as the ``tunesmith-mir-features-v1`` vector counts its
    melody n-grams). On the Bach chorales with their four voices merged into one track, the
    line's notes are the soprano's with precision 0.95, against 0.61 with the notes under
    (``python benchmarks/mir.py --only chords``)."""
    tracks = [int(t) for t in np.unique(n.track[n.pitched])]
    if not tracks:
        return np.zeros(0, np.int64)
    if hide_under and len(tracks) > 1:
        # a part that rests through most of the piece (a song's voice in the bars of a piano
        # introduction) is not its melody there
        bars = {t: len(np.unique(n.start[(n.track == t) & n.pitched] // max(1, n.bar_ticks))) for t in tracks}
        tracks = [t for t in tracks if 2 * bars[t] >= max(bars.values())]
    top = max(tracks, key=lambda t: n.pitch[(n.track == t) & n.pitched].mean())
    idx = n.track_notes(top)
    keep = np.r_[n.start[idx][1:] != n.start[idx][:-1], True]  # sorted by (start, pitch): last = highest
    idx = idx[keep]
    if not hide_under:
        return idx
    # a note struck under a higher one that holds through most of it is an accompaniment's (a
    # pianist's left hand while the right holds the tune); a higher note that only rings into
    # it (legato, a transcription's decay) does not hide it
    s, e, p = n.start[idx], n.end[idx], n.pitch[idx]
    under = np.zeros(len(idx), bool)
    held_pitch, held_end = -1, -1
    for i in range(len(idx)):
        if held_end > s[i] + (e[i] - s[i]) // 2 and held_pitch > p[i]:
            under[i] = True
            continue
        held_pitch, held_end = p[i], e[i]
    return idx[~under]


def melody_stats(n: Notes, tonic: int | None = None, mode: str = "major") -> dict:
    """The melody's notes, range (MIDI pitches; spelled in the key ``tonic``/``mode`` where given),
    contour, steps and intervals."""
    idx = melody_line(n)
    if not len(idx):
        return {}
    p = n.pitch[idx]
    iv = np.diff(p)
    steps = np.abs(iv)
    hist = {str(k): int(v) for k, v in zip(*np.unique(np.clip(iv, -12, 12), return_counts=True))}
    names = {} if tonic is None else {"lowest_name": spell_pitch(int(p.min()), tonic, mode),
                                      "highest_name": spell_pitch(int(p.max()), tonic, mode)}
    return {"notes": int(len(p)), "lowest": int(p.min()), "highest": int(p.max()), **names,
            "range": int(p.max() - p.min()),
            "mean_abs_interval": round(float(steps.mean()), 3) if len(iv) else 0.0,
            "contour": {"up": round(float((iv > 0).mean()), 3) if len(iv) else 0.0,
                        "down": round(float((iv < 0).mean()), 3) if len(iv) else 0.0,
                        "repeat": round(float((iv == 0).mean()), 3) if len(iv) else 0.0},
            "steps_share": round(float((steps <= 2).mean()), 3) if len(iv) else 0.0,
            "interval_histogram": hist}


def _degree(roman_fig: str) -> str:
    """The Roman numeral without its figures/inversion: "V65" → "V", "viio7" → "VII"; a secondary
    chord keeps its target ("V65/V" → "V/V"), so that it is not taken for the key's own V."""
    out = []
    for part in roman_fig.split("/"):
        core = ""
        for ch in part:
            if ch in "IViv":
                core += ch
            elif core:
                break
        out.append(core.upper())
    return "/".join(out)


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


_MAJOR = ("", "7")  # a dominant with the leading tone: a minor v (a modal tune's) makes no authentic cadence


def _phrase_key(regions: list[dict] | None, first_bar: int, last_bar: int) -> str | None:
    """The key of a phrase: the region key that covers most of its bars (on a tie, the one at its
    end). A region's boundary, from windows of a few bars, can fall a bar early or late; the
    phrase's cadence belongs to the key the phrase is in."""
    count: dict[str, int] = {}
    for r in regions or ():
        overlap = min(r["end_bar"], last_bar) - max(r["start_bar"], first_bar) + 1
        if overlap > 0:
            count[r["key"]] = count.get(r["key"], 0) + overlap
    if not count:
        return None
    at_end = next((r["key"] for r in regions if r["start_bar"] <= last_bar <= r["end_bar"]), None)
    return max(count, key=lambda k: (count[k], k == at_end))


def cadences(n: Notes, chord_list: list[Chord], tonic: int, mode: str,
             regions: list[dict] | None = None) -> list[dict]:
    """The cadence at each phrase end, from the last two chords: authentic (perfect when both
    chords are in root position and the melody ends on the tonic), half, plagal, deceptive.

    A cadence is read in the key of its phrase (the region of ``regions``, from
    :func:`key_over_time`, that covers most of the phrase's bars): a phrase of a D-major piece
    that closes V7–I in A major is a perfect authentic cadence in A major, not a half cadence
    V7/V–V in D; its ``key`` names that key, and its numerals are written in it.

    The arrival is the chord where the phrase's last melody note begins — at the end of the piece,
    the last chord (a held soprano note may see V move to i beneath it) — and the chord before it
    the last one on another degree (V V65 I is V65 – I; I V V7 is I – V, no cadence V – V7). The
    dominant of an authentic, half or deceptive cadence is major (a modal tune's v – i is none); a
    half cadence stops on V in root position; a tonic six-four (the cadential six-four) ends no
    phrase. Of two phrase ends within a bar, the later."""
    if len(chord_list) < 2:
        return []
    onsets = np.array([round(c.quarters * n.tpq) for c in chord_list])
    mel = melody_line(n)
    home = key_name(tonic, mode)
    out = []
    ends = phrase_ends(n)
    for p, t in enumerate(ends):
        k = int(np.searchsorted(n.start[mel], t, side="right")) - 1
        final = k == len(mel) - 1  # the piece's last note: its last chord, though the note began over V
        i = int(np.searchsorted(onsets, int(n.end[mel][k]) if final else t + 1, side="left")) - 1
        if i < 1:
            continue
        last = chord_list[i]
        # the piece's last chord on its tonic closes in the piece's key (a final phrase that leans
        # to the subdominant still ends on the tonic, with or without a Picardy third)
        kname = home if final and last.root == tonic else _phrase_key(
            regions, ends[p - 1] // n.bar_ticks + 1 if p else 1, last.bar)
        kname = kname or home
        ktonic, kmode = (tonic, mode) if kname == home else parse_key(kname)

        def rn(c: Chord, _t=ktonic, _m=kmode) -> str:  # in the home key this is c.roman (cached)
            return roman_numeral(c.root, c.quality, c.bass, _t, _m)
        b = _degree(rn(last))
        j = i - 1
        while j >= 0 and _degree(rn(chord_list[j])) == b:
            j -= 1
        if j < 0:
            continue
        prev = chord_list[j]
        a = _degree(rn(prev))
        kind = None
        if b == "I" and rn(last).split("/")[0].endswith("64"):
            pass  # a tonic six-four at a phrase end is the cadential six-four: the dominant is still to come
        elif b == "I" and ((a == "V" and prev.quality in _MAJOR) or (a == "VII" and prev.quality in ("dim", "dim7", "m7b5"))):
            top = n.pitch[mel][k] % 12
            perfect = a == "V" and prev.bass == prev.root and last.bass == last.root and top == ktonic
            kind = "perfect authentic" if perfect else "imperfect authentic"
        elif b == "V" and last.quality in _MAJOR and last.bass == last.root:  # on V in root position
            kind = "phrygian half" if kmode == "minor" and a == "IV" and prev.bass != prev.root else "half"
        elif b == "I" and a == "IV":
            kind = "plagal"
        elif a == "V" and prev.quality in _MAJOR and b == "VI":
            kind = "deceptive"
        if kind:
            if out and onsets[i] - out[-1]["_at"] < n.bar_ticks:  # one phrase end a bar: the later one
                out.pop()
            out.append({"bar": last.bar, "beat": last.beat, "type": kind, "chords": f"{rn(prev)} – {rn(last)}",
                        "key": kname, "_at": int(onsets[i])})
    for c in out:
        del c["_at"]
    return out


def _read_in_regions(chord_list: list[Chord], regions: list[dict], home: str) -> None:
    """Each chord in a key region other than the piece's key gets its numeral in that key too
    (an analyst reads a modulation's chords in the key they are in: in E minor, G major is III,
    not the home E major's bIII)."""
    for r in regions:
        if r["key"] == home:
            continue
        tonic, mode = parse_key(r["key"])
        for c in chord_list:
            if r["start_bar"] <= c.bar <= r["end_bar"]:
                c.local_key, c.local_roman = r["key"], roman_numeral(c.root, c.quality, c.bass, tonic, mode)


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
    texture = texture_of(n, recorded=is_recording(score))
    # a tune's tonic and mode are read from where its line rests (keys.tune_key); the profile reads
    # harmony, and took a tune in E dorian for D major
    key = find_key(n, signature=signature, stated=score.meta.key, tune=texture == "melody")
    chord_list = chords(n, key.tonic, key.mode, per="bar" if texture == "melody" else "beat")
    bars = int(n.end[n.pitched].max() - 1) // n.bar_ticks + 1
    tempo = score.tempo()
    regions = key_over_time(n, home=key.key)
    _read_in_regions(chord_list, regions, key.key)
    return Analysis(
        title=score.meta.title or "", key=key, key_regions=regions,
        meter=score.time_signature() or "4/4",
        tempo_qpm=round(tempo, 2) if tempo else None, bars=bars, texture=texture, chords=chord_list,
        cadences=cadences(n, chord_list, key.tonic, key.mode, regions),
        # a recording of several voices: its transcription's top note at each onset is any voice's (a
        # piano's held soprano is heard short, the bass then sounds alone), so no melody is claimed —
        # bwv269 played on the piano gave 149 "melody" notes from F#2 to E5 for a soprano of 46 in G4–D5
        melody={} if is_recording(score) and texture != "melody" else melody_stats(n, key.tonic, key.mode),
        metrics=_scalar_metrics(n))


def save_analysis_png(score: Score, a: Analysis, path) -> object:
    """The piano roll with the chord chart above it (one label per chord change; numerals in
    the key of the region each chord is in) and the key regions as a coloured band underneath."""
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
        label = f"{c.name}\n{c.local_roman or c.roman}"  # a modulation's chords in its key (the band below)
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
