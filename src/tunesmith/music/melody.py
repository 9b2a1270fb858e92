"""Which line of a piece is its melody, reduced to one note at a time.

``harmonize`` needs one monophonic line. A user may name it (``--melody-track NAME|INDEX``);
by default a track named like a melody ("melody", "vocal", "voice", "lead", "soprano",
"sing", "tune") is taken, else the most melodic line: among the tracks that are nearly
monophonic (at most 10% of their notes overlap another of the same track), the one with the
highest mean pitch; else the highest track. The chosen track is reduced to its top line
(at each onset the highest pitch, cut where the next onset begins; of a recording's
transcription, the loudest note of each cluster of onsets, :func:`loudest_per_onset`), and
whole silent bars before its first note are dropped. :class:`Melody` says what was done, so the command can
say it too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import symusic

from tunesmith.errors import BadInputError, ParameterError
from tunesmith.music.score import Score
from tunesmith.music.texture import RECORDED_CHORD_SHARE, chord_onset_share, is_recording

MELODY_NAMES = ("melody", "vocal", "voice", "lead", "soprano", "sing", "tune")
MONOPHONIC_OVERLAP = 0.10
# Onsets of a recording's transcription closer than this are one onset of the tune
SAME_ONSET_SECONDS = 0.05


def release_overlaps(music: symusic.Score, *, single_line: bool = False) -> int:
    """Cut, in place, each note that runs into the next onset of its track where that onset begins,
    as a player releases it; returns how many were cut. By default only a note that also ends
    before the next one does (an overlap, not a note held under a moving line, which a track of
    several voices may have); ``single_line``: every note (a melody has one note at a time)."""
    cut = 0
    for tr in music.tracks:
        notes = sorted(tr.notes, key=lambda n: (n.time, n.pitch))
        ends: dict[int, int] = {}
        for n in notes:
            ends[n.time] = max(ends.get(n.time, 0), n.end)
        onsets = sorted(ends)
        nxt = dict(zip(onsets, onsets[1:]))
        for n in notes:
            t = nxt.get(n.time)
            if t is not None and n.end > t and (single_line or n.end <= ends[t]):
                n.duration = t - n.time
                cut += 1
    return cut


def loudest_per_onset(notes: np.ndarray, tpq: int, qpm: float) -> np.ndarray:
    """Indices of a recording's tune in its transcribed ``notes`` (a symusic note array): the
    loudest note (then the longest) of every cluster of onsets within :data:`SAME_ONSET_SECONDS`
    of the cluster's first, in order of onset.

    A sung or played melody is one note at a time; what the transcriber adds beside it is quieter
    and starts within milliseconds of the real note: an overtone an octave or a twelfth above (the
    highest note, which a score's melody line would take), or the previous note heard again as the
    next one starts. On SoundFont renders of melodies the added notes had about 60% of the real
    note's velocity and started within 20 ms of it."""
    order = np.lexsort((notes["pitch"], notes["time"]))
    start, vel, dur = (np.asarray(notes[k])[order].astype(np.int64) for k in ("time", "velocity", "duration"))
    tol = SAME_ONSET_SECONDS * qpm / 60 * tpq  # in ticks
    keep, first, best = [], 0, 0
    for k in range(1, len(start) + 1):
        if k == len(start) or start[k] - start[first] > tol:
            keep.append(best)
            first = best = k
        elif (vel[k], dur[k]) > (vel[best], dur[best]):
            best = k
    return order[np.array(keep, np.int64)] if len(start) else np.zeros(0, np.int64)


def several_voices_heard(score: Score) -> float | None:
    """For a recording of several voices, the share of its onsets holding two notes (see
    :func:`chord_onset_share`); None for a score or a recording of one line."""
    if not is_recording(score):
        return None
    notes = [(n.time, n.pitch) for t in score.music.tracks if not t.is_drum for n in t.notes]
    if not notes:
        return None
    a = np.array(notes)
    share = chord_onset_share(a[:, 0], a[:, 1], score.music.ticks_per_quarter)
    return share if share >= RECORDED_CHORD_SHARE else None


@dataclass
class Melody:
    score: Score  # one track, one note at a time
    track_index: int  # 1-based, as --melody-track counts
    track_name: str
    why: str  # "named", "given", "most melodic line", "highest line", "only line"
    reduced: int  # notes dropped to make it one note at a time
    skipped_bars: int  # silent bars dropped before the first note
    bars: int
    voices_heard: float | None = None  # a recording of several voices: its share of onsets holding two notes

    def describe(self) -> str:
        name = f"'{self.track_name}'" if self.track_name else "(unnamed)"
        out = f"melody: track {self.track_index} {name} ({self.why}), {self.bars} bars"
        if self.reduced:
            out += f"; {self.reduced} notes dropped to leave one note at a time"
        if self.voices_heard is not None:
            out += (f"; several voices were heard (two notes at {self.voices_heard:.0%} of the onsets), and the "
                    "loudest note at an onset may be another voice's than the tune's: record the tune alone")
        if self.skipped_bars:
            out += f"; {self.skipped_bars} silent bars before it left out"
        return out


def _overlap_share(notes) -> float:
    if len(notes) < 2:
        return 0.0
    order = np.argsort(notes["time"], kind="stable")
    start, end = notes["time"][order], (notes["time"] + notes["duration"])[order]
    return float(np.mean(start[1:] < np.maximum.accumulate(end[:-1]) - 1))


def _bar_ticks(music: symusic.Score) -> int:
    tpq = music.ticks_per_quarter
    if len(music.time_signatures):
        ts = music.time_signatures[0]
        return max(1, tpq * 4 * ts.numerator // max(1, ts.denominator))
    return tpq * 4


def melody_of(score: Score, track: str | int | None = None) -> Melody:
    """The melody line of ``score`` (see the module's docstring)."""
    music = score.music
    tracks = [(i, t) for i, t in enumerate(music.tracks, 1) if len(t.notes) and not t.is_drum]
    if not tracks:
        raise BadInputError(score.meta.source or "melody", "the piece has no notes")
    names = ", ".join(f"{i} '{t.name}'" if t.name else f"{i}" for i, t in tracks)
    if track is not None:
        key = str(track).strip()
        hit = [(i, t) for i, t in enumerate(music.tracks, 1)
               if (key.isdigit() and int(key) == i) or (t.name and t.name.lower() == key.lower())]
        if not hit or not len(hit[0][1].notes):
            raise ParameterError("melody_track", f"no track {key!r} with notes; the tracks with notes are: {names}")
        (idx, chosen), why = hit[0], "given"
    elif len(tracks) == 1:
        (idx, chosen), why = tracks[0], "only line"
    else:
        named = [(i, t) for i, t in tracks if any(w in (t.name or "").lower() for w in MELODY_NAMES)]
        if named:
            (idx, chosen), why = named[0], "named"
        else:
            mono = [(i, t) for i, t in tracks if _overlap_share(t.notes.numpy()) <= MONOPHONIC_OVERLAP
                    and len(t.notes) >= 8]
            pool, why = (mono, "most melodic line") if mono else (tracks, "highest line")
            idx, chosen = max(pool, key=lambda it: float(it[1].notes.numpy()["pitch"].mean()))
    notes = chosen.notes.numpy()
    if is_recording(score):  # the played note, not the overtone above it
        pick = loudest_per_onset(notes, music.ticks_per_quarter, score.tempo() or 120.0)
        t, d, p, v = (notes[k][pick] for k in ("time", "duration", "pitch", "velocity"))
        kept = len(pick)
    else:
        order = np.lexsort((-notes["pitch"], notes["time"]))
        t, d, p, v = (notes[k][order] for k in ("time", "duration", "pitch", "velocity"))
        keep = np.ones(len(t), bool)
        keep[1:] = t[1:] != t[:-1]  # at each onset, the highest pitch
        t, d, p, v = t[keep], d[keep], p[keep], v[keep]
        kept = int(keep.sum())
    end = np.minimum(t + d, np.append(t[1:], np.iinfo(np.int64).max))  # cut where the next note starts
    bar = _bar_ticks(music)
    skip = int(t[0] // bar) if len(t) else 0
    shift = skip * bar
    out = symusic.Score(music.ticks_per_quarter)
    for ts in music.time_signatures:
        out.time_signatures.append(symusic.TimeSignature(max(0, ts.time - shift), ts.numerator, ts.denominator))
    for tp in music.tempos:
        out.tempos.append(symusic.Tempo(max(0, tp.time - shift), qpm=tp.qpm))
    for ks in music.key_signatures:
        out.key_signatures.append(symusic.KeySignature(max(0, ks.time - shift), ks.key, ks.tonality))
    line = symusic.Track(name=chosen.name or "Melody", program=chosen.program)
    for a, b, c, vel in zip(t, end, p, v):
        line.notes.append(symusic.Note(int(a - shift), int(max(1, b - a)), int(c), int(vel)))
    out.tracks.append(line)
    n_bars = int(np.ceil((end[-1] - shift) / bar)) if len(t) else 0
    return Melody(Score(out, score.meta), idx, chosen.name, why, int(len(notes["time"]) - kept), skip, n_bars,
                  several_voices_heard(score))
