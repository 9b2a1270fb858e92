"""Voice-leading checks for four-part (SATB) writing.

The four pitched tracks of a piece are taken as soprano, alto, tenor and bass
in order of their mean pitch. The piece is sampled at every onset of any voice
(a "slice": the pitch each voice sounds then, or a rest), and between
consecutive slices we count:

- parallel fifths / octaves: two voices a perfect fifth (or octave/unison) apart,
  modulo the octave, in both slices, both moving in the same direction;
- hidden (direct) fifths / octaves: the outer voices moving in similar motion
  into a perfect fifth or octave that was not there before, with a leap (more
  than a whole tone) in the soprano — the textbook rule (Aldwell & Schachter);
- voice crossing: slices where a voice sounds above the voice written above it;
- spacing: slices where soprano–alto or alto–tenor are more than an octave apart;
- out of range: notes outside the usual ranges S C4–G5, A G3–D5, T C3–G4, B E2–C4.

Each is reported per 100 beats (quarter notes) of music, so pieces of any length
compare. Pieces without exactly four pitched voices give NaN.
"""

from __future__ import annotations

import math

import numpy as np

from tunesmith.evaluate.metrics import Notes, _length
from tunesmith.represent import satb

RANGES = dict(zip(("soprano", "alto", "tenor", "bass"), satb.RANGES))
CHECKS = ["parallel_fifths", "parallel_octaves", "hidden_fifths", "hidden_octaves", "voice_crossing",
          "spacing", "out_of_range"]


def _voice_order(n: Notes) -> list[int] | None:
    """The four pitched tracks, soprano first (by mean pitch); None unless exactly four."""
    tracks = [int(t) for t in np.unique(n.track[n.pitched])]
    if len(tracks) != 4:
        return None
    mean = [n.pitch[(n.track == t) & n.pitched].mean() for t in tracks]
    return [tracks[i] for i in np.argsort(mean)[::-1]]


def _sounding(n: Notes, times: np.ndarray) -> np.ndarray | None:
    """(4, len(times)) pitch each voice sounds at each time, soprano first; −1 for a rest
    (several notes of one voice at once, which is rare: the last started wins)."""
    order = _voice_order(n)
    if order is None:
        return None
    out = np.full((4, len(times)), -1, np.int64)
    for v, t in enumerate(order):
        idx = n.track_notes(t)
        s, e, p = n.start[idx], n.end[idx], n.pitch[idx]
        k = np.searchsorted(s, times, side="right") - 1
        kk = np.maximum(k, 0)
        out[v] = np.where((k >= 0) & (e[kk] > times), p[kk], -1)
    return out


def satb_slices(n: Notes) -> np.ndarray | None:
    """(4, n_slices) sounding pitch of S, A, T, B at every onset; −1 for a rest."""
    return _sounding(n, np.unique(n.start[n.pitched]))


def satb_beats(n: Notes) -> np.ndarray | None:
    """(4, n_beats) sounding pitch of S, A, T, B at every quarter-note beat; −1 for a rest."""
    if not n.pitched.any():
        return None
    return _sounding(n, np.arange(0, int(n.end[n.pitched].max()), n.tpq))


def _voice_notes(n: Notes) -> list[np.ndarray] | None:
    order = _voice_order(n)
    if order is None:
        return None
    return [n.pitch[(n.track == t) & n.pitched] for t in order]


def voice_leading(n: Notes) -> dict[str, float]:
    """Counts per 100 beats of each check in :data:`CHECKS` (NaN unless SATB)."""
    sl = satb_slices(n)
    beats = _length(n) / n.tpq
    if sl is None or beats <= 0:
        return {k: math.nan for k in CHECKS}
    a, b = sl[:, :-1], sl[:, 1:]
    counts = dict.fromkeys(CHECKS, 0)
    for i in range(4):
        for j in range(i + 1, 4):
            ok = (a[i] >= 0) & (a[j] >= 0) & (b[i] >= 0) & (b[j] >= 0)
            di, dj = b[i] - a[i], b[j] - a[j]
            both_move = (di != 0) & (dj != 0)
            similar = both_move & (np.sign(di) == np.sign(dj))
            iv_a, iv_b = (a[i] - a[j]) % 12, (b[i] - b[j]) % 12
            for cls, name in ((7, "fifths"), (0, "octaves")):
                par = ok & similar & (iv_a == cls) & (iv_b == cls)
                counts[f"parallel_{name}"] += int(par.sum())
                if i == 0 and j == 3:
                    hidden = ok & similar & (iv_b == cls) & (iv_a != cls) & (np.abs(di) > 2)
                    counts[f"hidden_{name}"] += int(hidden.sum())
    snd = sl >= 0
    cross = np.zeros(sl.shape[1], bool)
    for v in range(3):
        cross |= snd[v] & snd[v + 1] & (sl[v] < sl[v + 1])
    counts["voice_crossing"] = int(cross.sum())
    wide = (snd[0] & snd[1] & (sl[0] - sl[1] > 12)) | (snd[1] & snd[2] & (sl[1] - sl[2] > 12))
    counts["spacing"] = int(wide.sum())
    voices = _voice_notes(n)
    counts["out_of_range"] = int(sum(((p < lo) | (p > hi)).sum()
                                     for p, (lo, hi) in zip(voices, RANGES.values())))
    return {k: 100.0 * v / beats for k, v in counts.items()}
