"""Key finding for analysis: ranked candidates, the stated signature, key changes over time.

The profile is Aarden's (2003, from the Essen collection; in ``tunesmith.music.keys``) — on the Bach
chorales it finds the stated key more often than Krumhansl–Kessler (measured in
``benchmarks/mir.py``). Two pieces of evidence every harmony student uses are
added to the profile correlation: tonal music ends, and usually begins, on its
tonic in the bass. Where the file carries a key signature, keys it admits (its
major and relative minor) get a bonus, so the notes decide the mode and the
signature the pitch collection.

A tune (one line) is read otherwise: its tonic is where the line rests within the diatonic
scale its notes fill, and its mode is named (:func:`tune_key`, ``find_key(..., tune=True)``).
That reader lives in ``tunesmith.music.keys``, where generation and harmonize read a melody that
states no key by it too (``score_key``).

``tunesmith.music.keys.estimate_key`` (plain Krumhansl–Schmuckler) stays as it
is: the evaluation metrics and their published figures use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tunesmith.evaluate.metrics import Notes
from tunesmith.music import keys as K
from tunesmith.music.keys import (
    AARDEN_PROFILES,
    MAJOR_MODES,
    TUNE_MIN_NOTES,
    aarden_correlations,
    key_name,
    reading_name,
)

FINAL_BASS_BONUS = 0.15  # a correlation is in [-1, 1]; a tonic bass at the end adds this much
FIRST_BASS_BONUS = 0.075
SIGNATURE_BONUS = 0.3
PROFILES = AARDEN_PROFILES  # (24, 12): C major … B major, C minor … B minor
KEY_NAMES = [key_name(i % 12, "major" if i < 12 else "minor") for i in range(24)]
correlations = aarden_correlations  # Pearson r with the 24 profiles (zeros if flat)


def signature_keys(sharps: int) -> tuple[int, int]:
    """Indices into the 24 keys of the major and relative minor a key signature admits."""
    major = (7 * sharps) % 12
    return major, 12 + (major + 9) % 12


@dataclass
class KeyResult:
    key: str  # e.g. "G major"
    tonic: int
    mode: str
    confidence: float  # softmax probability of the best key among the 24 (temperature 0.05)
    candidates: list[tuple[str, float]]  # the best three with their scores
    stated: str | None  # the key the file states (metadata / key signature), if any
    signature: int | None  # sharps (+) or flats (−) of the first key signature, if any
    notated: str | None = None  # the key the signature spells, in the mode the notes choose
    # a tune (one line) in a church mode other than major and minor: "E dorian" (its key is then the
    # mode's major or minor: E minor), read by :func:`tune_key`; None otherwise
    modal: str | None = None

    def to_dict(self) -> dict:
        d = {"key": self.key, "confidence": round(self.confidence, 3),
             "candidates": [{"key": k, "score": round(s, 3)} for k, s in self.candidates],
             "stated": self.stated, "signature": self.signature, "notated": self.notated}
        if self.modal:
            d["modal"] = self.modal
        return d


def _hist(n: Notes, mask: np.ndarray | None = None) -> np.ndarray:
    sel = n.pitched if mask is None else (n.pitched & mask)
    return np.bincount(n.pitch[sel] % 12, weights=(n.end[sel] - n.start[sel]).astype(float), minlength=12)


def _final_sonority(n: Notes) -> tuple[int, set[int]]:
    """The pitch class of the lowest note sounding in the last half beat, and all of theirs."""
    sel = np.flatnonzero(n.pitched)
    return K.final_bass(n.pitch[sel], n.end[sel], n.tpq)


def key_scores(n: Notes, *, signature: int | None = None) -> np.ndarray:
    """A score for each of the 24 keys: profile correlation plus bass and signature evidence."""
    score = correlations(_hist(n)).copy()
    sel = np.flatnonzero(n.pitched)
    if not len(sel):
        return score
    first = sel[n.start[sel] == n.start[sel].min()]
    for bass, bonus in ((_final_sonority(n)[0], FINAL_BASS_BONUS), (int(n.pitch[first].min()) % 12, FIRST_BASS_BONUS)):
        score[bass] += bonus
        score[12 + bass] += bonus
    if signature is not None:
        for i in signature_keys(signature):
            score[i] += SIGNATURE_BONUS
    return score


def rank_keys(s: np.ndarray) -> tuple[int, float, list[tuple[str, float]]]:
    """The best of 24 key scores, its softmax confidence (temperature 0.05) and the top three."""
    order = np.argsort(-s, kind="stable")
    p = np.exp((s - s.max()) / 0.05)
    p /= p.sum()
    best = int(order[0])
    return best, float(p[best]), [(KEY_NAMES[int(i)], float(s[i])) for i in order[:3]]


def notated_key(n: Notes, signature: int) -> str:
    """The key as a score would state it: the signature's major or its relative minor.

    The final decides, as an editor decides: a piece whose last bass note is the tonic of one of
    the two is in that key. A piece that stops on the relative minor's dominant, its raised
    seventh in the last chord (a Phrygian close, E major with G♯ under no signature), is in the
    minor (on the 349 chorales: bwv328, stated A minor, was read C major before). Otherwise the
    mode is the notes' (the mode of the best of the 24 keys without the signature).

    This is the reading an editor writes above a score, and it differs from the sounding key
    where the notation does: a minor tune written with one flat fewer (a 'Dorian' signature)
    sounds in G minor but its signature spells D minor or F major; it ends on G, neither's
    tonic, and the notes' minor mode picks D minor."""
    major, minor = signature_keys(signature)
    bass, last = _final_sonority(n)
    if bass == major % 12:
        return KEY_NAMES[major]
    if bass == minor - 12:
        return KEY_NAMES[minor]
    if (minor - 12 + 11) % 12 in last:  # the minor's leading tone in the last chord
        return KEY_NAMES[minor]
    return KEY_NAMES[major if int(np.argmax(key_scores(n))) < 12 else minor]


def find_key(n: Notes, *, signature: int | None = None, stated: str | None = None, tune: bool = False) -> KeyResult:
    """The key of ``n``; ``tune``: ``n`` is one line (a folk tune, a melody), whose tonic and mode
    :func:`tune_key` reads instead of the profile."""
    notated = notated_key(n, signature) if signature is not None and n.pitched.any() else None
    if tune and n.pitched.sum() >= TUNE_MIN_NOTES:
        tonic, mode, conf, cands = tune_key(n)
        quality = "major" if mode in MAJOR_MODES else "minor"
        modal = reading_name(tonic, mode) if mode not in ("ionian", "aeolian") else None
        return KeyResult(key_name(tonic, quality), tonic, quality, conf, cands, stated, signature, notated, modal)
    best, conf, cands = rank_keys(key_scores(n, signature=signature))
    return KeyResult(KEY_NAMES[best], best % 12, "major" if best < 12 else "minor", conf, cands, stated, signature,
                     notated)


# --------------------------------------------------------------------------- a tune's tonic and mode

# The tune reader lives in tunesmith.music.keys (generation and harmonize read a melody's key by it
# too); these read a Notes's sounding notes as its Line.


def line_of(n: Notes) -> K.Line:
    """``n``'s sounding notes as the tune reader reads them (bars counted from tick 0)."""
    sel = np.flatnonzero(n.pitched)
    return K.Line(n.pitch[sel], n.start[sel], n.end[sel], int(n.tpq), int(n.bar_ticks))


def tune_key(n: Notes) -> tuple[int, str, float, list[tuple[str, float]]]:
    """:func:`tunesmith.music.keys.tune_key` of ``n``'s sounding notes."""
    return K.tune_key(line_of(n))


def key_over_time(n: Notes, *, window_bars: int = 4, change_penalty: float = 0.25, home: str | None = None,
                  home_bonus: float = 0.1) -> list[dict]:
    """Key regions: the key of each bar from a ``window_bars`` window around it, smoothed by
    Viterbi decoding that charges ``change_penalty`` (in correlation units) per modulation.
    ``home`` (the piece's key, from :func:`find_key`) earns ``home_bonus`` in every window: a
    window's few notes often fit a neighbouring key as well as the home key (a folk tune's
    phrase on the subdominant), and the regions should leave home only where the music does.

    Returns ``[{"start_bar": 1, "end_bar": 8, "key": "G major"}, ...]`` (bars 1-based, inclusive)."""
    sel = n.pitched
    if not sel.any():
        return []
    n_bars = int(n.end[sel].max() - 1) // n.bar_ticks + 1
    half = window_bars / 2
    obs = np.zeros((n_bars, 24))
    for b in range(n_bars):
        lo, hi = (b - half + 0.5) * n.bar_ticks, (b + half + 0.5) * n.bar_ticks
        mask = (n.start < hi) & (n.end > lo)
        obs[b] = correlations(_hist(n, mask))
    if home is not None:
        obs[:, KEY_NAMES.index(home)] += home_bonus
    # Viterbi: stay costs nothing, changing key costs change_penalty
    score = obs[0].copy()
    back = np.zeros((n_bars, 24), np.int64)
    for b in range(1, n_bars):
        stay = score
        move = score.max() - change_penalty
        back[b] = np.where(stay >= move, np.arange(24), int(np.argmax(score)))
        score = np.maximum(stay, move) + obs[b]
    path = [int(np.argmax(score))]
    for b in range(n_bars - 1, 0, -1):
        path.append(int(back[b, path[-1]]))
    path.reverse()
    regions: list[dict] = []
    for b, k in enumerate(path):
        if regions and regions[-1]["key"] == KEY_NAMES[k]:
            regions[-1]["end_bar"] = b + 1
        else:
            regions.append({"start_bar": b + 1, "end_bar": b + 1, "key": KEY_NAMES[k]})
    return regions
