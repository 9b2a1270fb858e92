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

``tunesmith.music.keys.estimate_key`` (plain Krumhansl–Schmuckler) stays as it
is: the evaluation metrics and their published figures use it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from tunesmith.evaluate.metrics import Notes
from tunesmith.music.keys import AARDEN_PROFILES, MODES, aarden_correlations, key_name

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
    last = sel[n.end[sel] >= n.end[sel].max() - n.tpq // 2]
    return int(n.pitch[last].min()) % 12, {int(p) % 12 for p in n.pitch[last]}


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

# A tune's tonic is where its notes rest — its last note, its downbeats, its longest notes — within
# the diatonic scale its notes fill; Aarden's profile alone (built from Essen's major and minor songs)
# reads a tune in E dorian as D major (Cooley's reel) and one in A mixolydian as D major. The reader
# scores each note of the best-fitting diatonic scales as the tonic, by a conditional logit fitted on
# the train split of O'Neill's and Ryan's tunes against the tonic and mode their ABC K: fields state
# (``scripts/tune_tonic.py``; weights in ``assets/tune_tonic.json``), and names the mode by the
# scale on that tonic the notes fill best. On the held-out tunes, tonic right 0.881 → 0.909 against the
# profile with the signature (see BENCHMARKS.md, *A tune's key and mode*).
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


@cache
def _tune_model() -> tuple[np.ndarray, float]:
    d = json.loads(TUNE_MODEL_FILE.read_text())
    if tuple(d["features"]) != TUNE_FEATURES:
        raise RuntimeError(f"{TUNE_MODEL_FILE} was fitted for other features; run scripts/tune_tonic.py")
    return np.asarray(d["weights"], float), float(d["scale_slack"])


def tune_candidates(n: Notes, scale_slack: float | None = None) -> list[tuple[int, str, np.ndarray]]:
    """Every (tonic, mode) a tune could be in — each note of each diatonic scale holding nearly as
    much of its notes as the best (within ``scale_slack``) — with its features
    (:data:`TUNE_FEATURES`)."""
    if scale_slack is None:
        scale_slack = _tune_model()[1]
    sel = np.flatnonzero(n.pitched)
    dur = (n.end[sel] - n.start[sel]).astype(float)
    pcs = n.pitch[sel] % 12
    h = np.bincount(pcs, weights=dur, minlength=12)
    h = h / max(h.sum(), 1e-9)
    order = sel[np.argsort(n.start[sel], kind="stable")]
    first, last = int(n.pitch[order[0]]) % 12, int(n.pitch[order[-1]]) % 12
    final_bass = _final_sonority(n)[0]
    on_bar = (n.start[sel] % max(int(n.bar_ticks), 1)) == 0
    down = np.bincount(pcs[on_bar], weights=dur[on_bar], minlength=12)
    down = down / max(down.sum(), 1e-9)
    long_ = dur >= np.percentile(dur, 90)
    longest = np.bincount(pcs[long_], minlength=12).astype(float)
    longest = longest / max(longest.sum(), 1.0)
    corr = correlations(_hist(n))
    fits = np.array([h[(c + DIATONIC) % 12].sum() for c in range(12)])
    out = []
    for c in np.flatnonzero(fits >= fits.max() - scale_slack - 1e-12):
        for t in (int(c) + DIATONIC) % 12:
            mode = MODE_OF_DEGREE[(t - int(c)) % 12]
            x = [h[t], t == final_bass, t == last, t == first, down[t], longest[t],
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


# A church mode is named only where its scale holds more of the tune's notes than the major or the
# minor scale on its tonic by this share: a tune in G major that sings F natural now and then stays G
# major. Chosen on the train split of O'Neill's and Ryan's tunes (scripts/tune_tonic.py's data): tonic
# and mode as stated 0.847 with no margin, 0.881 at 0.03, 0.889 naming no church mode at all; at 0.03
# it names one for 68 of 2,405 tunes, 57 of them on the stated tonic — and most of the others stated
# in a major or minor key (K:G) whose tune sings the mode's degree throughout (The Chanter's Tune:
# F natural 0.15 of its notes, F sharp none), which a K: field's signature does not say.
CHURCH_MODE_MARGIN = 0.03


def church_mode(n: Notes, tonic: int) -> str:
    """The mode on ``tonic`` whose scale holds most of the tune's notes (by duration): major or
    minor unless a church mode's scale holds more by :data:`CHURCH_MODE_MARGIN`; the commoner where
    several hold them alike (:data:`MODE_PREFERENCE`)."""
    h = _hist(n)
    h = h / max(h.sum(), 1e-12)
    # locrian is left out: its tonic has no perfect fifth, and no tune of the corpora rests on one
    fit = {m: h[(tonic - MODE_OFFSET[m] + DIATONIC) % 12].sum() for m in MODE_OF_DEGREE.values() if m != "locrian"}
    base = max(("ionian", "aeolian"), key=lambda m: fit[m])
    best = max(fit.values())
    mode = next(m for m in MODE_PREFERENCE if m in fit and fit[m] >= best - 1e-12)
    return mode if mode in ("ionian", "aeolian") or fit[mode] - fit[base] >= CHURCH_MODE_MARGIN else base


def tune_key(n: Notes) -> tuple[int, str, float, list[tuple[str, float]]]:
    """A tune's tonic, mode, the tonic's probability among the candidates (:func:`tune_candidates`,
    scored by the fitted conditional logit) and the best three readings with their scores."""
    w, _ = _tune_model()
    cands = tune_candidates(n)
    z = np.array([x @ w for _, _, x in cands])
    p = np.exp(z - z.max())
    p /= p.sum()
    by_tonic: dict[int, float] = {}
    for (t, _, _), pk in zip(cands, p):
        by_tonic[t] = by_tonic.get(t, 0.0) + float(pk)
    tonic = int(cands[int(np.argmax(z))][0])
    mode = church_mode(n, tonic)
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
