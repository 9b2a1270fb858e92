"""Conversions between music21 streams and the project's Score."""

from __future__ import annotations

import numpy as np
import symusic

from tunesmith.music.keys import MODES
from tunesmith.music.score import DEFAULT_TPQ, Meta, Score


def music21_to_score(stream, *, source: str = "", tpq: int = DEFAULT_TPQ) -> Score:
    """A music21 Score/Part/Opus → :class:`Score` (one track per part, ties merged,
    grace notes dropped, chords split into notes)."""
    from music21 import stream as m21stream

    if isinstance(stream, m21stream.Opus):
        stream = stream.scores[0]
    parts = list(stream.parts) if hasattr(stream, "parts") and len(stream.parts) else [stream]
    music = symusic.Score(tpq)

    # A pickup (anacrusis) bar starts at offset 0 in music21 with its missing beats as
    # ``paddingLeft``; MIDI has no such notion, so the notes are moved right by the padding
    # (a leading rest): bar lines then fall where the composer wrote them.
    measures = parts[0].getElementsByClass("Measure")
    pad = float(measures[0].paddingLeft or 0) if len(measures) else 0.0
    shift = int(round(pad * tpq)) if 0 < pad < 64 else 0

    def at(offset) -> int:
        t = int(round(float(offset) * tpq))
        return t + shift if t > 0 else 0  # what is stated at the very start stays at the start

    first = parts[0].flatten()
    for ts in first.getElementsByClass("TimeSignature"):
        music.time_signatures.append(symusic.TimeSignature(at(ts.offset), ts.numerator, ts.denominator))
    church = None  # a key stated in a church mode ("E dorian"), which a MIDI key signature cannot say
    # A signature without a mode (MusicXML's <key> with <fifths> only, as MuseScore writes it; kern's
    # *k[…] without a *G: key) states no key: one flat is F major or D minor (or G dorian), which the
    # notes decide (music.keys.score_key). Before, it was read as the major key, and a D-minor tune
    # was harmonized and continued in F major.
    mode_stated = True
    for ks in _key_signature_part(parts).getElementsByClass("KeySignature"):
        mode = getattr(ks, "mode", None)
        music.key_signatures.append(
            symusic.KeySignature(at(ks.offset), int(ks.sharps), 1 if mode == "minor" else 0)
        )
        if len(music.key_signatures) == 1:
            mode_stated = mode is not None
            if mode in MODES and mode not in ("ionian", "aeolian") and getattr(ks, "tonic", None) is not None:
                church = f"{ks.tonic.name.replace('-', 'b')} {mode}"
    for mm in stream.flatten().getElementsByClass("MetronomeMark"):
        qpm = mm.getQuarterBPM()
        if qpm:
            music.tempos.append(symusic.Tempo(at(mm.offset), qpm=float(qpm)))

    for i, part in enumerate(parts):
        inst = part.getInstrument(returnDefault=False)
        program = inst.midiProgram if inst is not None and inst.midiProgram is not None else 0
        name = part.partName or (inst.instrumentName if inst is not None else None) or f"Part {i + 1}"
        track = symusic.Track(name=str(name), program=int(program), is_drum=False)
        notes = _tied_notes(part.flatten().notes, tpq, shift)
        if notes:
            for start, dur, pitch in sorted(notes):
                track.notes.append(symusic.Note(start, dur, pitch, 80))
            music.tracks.append(track)

    md = stream.metadata
    meta = Meta(source=source)
    if md is not None:
        meta.title = md.title or ""
        meta.composer = md.composer or ""
    meta.key = church
    score = Score(music, meta)
    fill_meta_from_music(score, key=mode_stated)
    return score


def _tied_notes(elements, tpq: int, shift: int) -> list[list[int]]:
    """[start, duration, pitch] of a flattened part's notes and chords, tied notes merged into
    one. Written here rather than with music21's ``stripTies``, which sorts the stream again
    for each tie it merges: a Beethoven quartet movement took 32 s to analyse, 8 s now. Over
    the bundled chorales, Monteverdi and 150 Palestrina files it gives stripTies' notes in all
    but 4 of 2,448 parts: a tie into a chord, or between two voices of one part, which this
    reads as the sustained note the score shows and stripTies left as two."""
    heads = []  # (start, end, pitch, tie) of every sounding note
    for el in elements:
        ql = float(el.quarterLength)
        if ql <= 0:
            continue  # grace note
        start = int(round(float(el.offset) * tpq)) + shift
        end = start + max(1, int(round(ql * tpq)))
        for n in el.notes if el.isChord else [el]:
            tie = n.tie.type if n.tie is not None else (el.tie.type if el.isChord and el.tie is not None else None)
            heads.append((start, end, int(n.pitch.midi), tie))
    # at one time, the notes that end a tie first (another voice may strike the same pitch there)
    heads.sort(key=lambda h: (h[0], h[3] not in ("stop", "continue")))
    out: list[list[int]] = []
    open_ties: dict[int, int] = {}  # pitch → index in out of the note a tie carries on
    for start, end, pitch, tie in heads:
        k = open_ties.get(pitch)
        # a tie joins the note of its pitch struck just as the tied note ends, marked "stop" or
        # not (some files mark only the start, and stripTies reads them so); a tie to a note of
        # another pitch, or to a later one, joins nothing
        if k is not None and start == out[k][0] + out[k][1]:
            out[k][1] = max(out[k][1], end - out[k][0])
            if tie not in ("start", "continue"):
                del open_ties[pitch]
            continue
        out.append([start, end - start, pitch])
        if tie in ("start", "continue"):
            open_ties[pitch] = len(out) - 1
        elif k is not None and start >= out[k][0] + out[k][1]:
            del open_ties[pitch]  # the tie led nowhere: the next note of its pitch came later
    return out


def score_to_music21(score: Score):
    """:class:`Score` → music21 Score, through MIDI so that music21's own
    quantizer and notation (measures, ties, voices) do the engraving."""
    from music21 import metadata, midi
    from music21.midi import translate

    # The meter, tempo and key go into an empty first track, which music21 reads as the
    # conductor track and applies to every part: written into the first part's track, they
    # reached that part only, and a 3/4 chorale's lower parts were engraved in 4/4.
    music = score.music.copy()
    parts = list(music.tracks)
    music.tracks.clear()
    music.tracks.append(symusic.Track("conductor", 0, False))
    for t in parts:
        music.tracks.append(t)
    mf = midi.MidiFile()
    mf.readstr(bytes(music.dumps_midi()))
    s = translate.midiFileToStream(mf, quantizePost=True, quarterLengthDivisors=notation_grid(music))
    s.metadata = metadata.Metadata()
    s.metadata.title = score.meta.title or "tunesmith"
    s.metadata.composer = score.meta.composer or "tunesmith"
    _notate_key_and_tempo(s, score)
    _notate_pickup(s)
    return s


# Grids music21's quantizer may use, simplest first: sixteenths and eighth triplets (its default),
# then thirty-seconds, sixteenth triplets and sixty-fourths. The generators write onsets and lengths
# in thirty-seconds (represent.tokens' beat_res), and on the default grid a thirty-second snapped to
# its neighbour's onset (a chord) or onto a triplet, and every note after it moved with it: 2 of 30
# folk tunes' MusicXML disagreed with their MIDI from the first thirty-second on.
NOTATION_GRIDS = ((4, 3), (8, 3), (8, 6), (16, 6), (16, 12))


def notation_grid(music: symusic.Score) -> tuple[int, ...]:
    """The simplest of :data:`NOTATION_GRIDS` on which every note of ``music`` begins and ends
    (within a 96th of a quarter: readers shorten a note by a tick to part it from the next), so
    that its sheet music holds the notes its MIDI holds; music played off every grid (a
    performance) keeps music21's default, which notates it most readably."""
    tpq = music.tpq
    ticks = [np.zeros(0, np.int64)]
    for t in music.tracks:
        arr = t.notes.numpy()
        ticks += [arr["time"].astype(np.int64), (arr["time"] + arr["duration"]).astype(np.int64)]
    x = np.unique(np.concatenate(ticks))
    slack = max(1, tpq // 96)
    for grid in NOTATION_GRIDS:
        off = np.min([np.abs(x - np.round(x * d / tpq) * tpq / d) for d in grid], axis=0)
        if np.all(off <= slack):
            return grid
    return NOTATION_GRIDS[0]


def _spell_in_key(part, k) -> None:
    """Spell the notes of the key's scale as the key does (MIDI carries no spelling, and
    music21's guess writes D♭ as C♯ in any key) — in minor with the raised sixth and seventh,
    so G minor keeps its F♯; a chromatic note keeps music21's spelling, since only its harmony
    could say better. Then the accidentals a reader needs against the key signature."""
    scale = {p.pitchClass: p.name for p in k.getScale(k.mode).getPitches("C4", "B4")}
    if k.mode == "minor":
        for raised in ("M6", "M7"):
            p = k.tonic.transpose(raised)
            scale.setdefault(p.pitchClass, p.name)
    for n in part.recurse().notes:
        for p in n.pitches:
            name = scale.get(p.pitchClass)
            if name is not None and name != p.name:
                midi = p.midi
                p.name = name  # (the octave stays: B♯3 renamed C is C3, so move it back up)
                p.octave += round((midi - p.midi) / 12)
    part.makeAccidentals(inPlace=True, overrideStatus=True)


def _notate_pickup(stream) -> None:
    """A piece whose first note comes after the first downbeat in every part (an upbeat) is
    written with a pickup measure — measure 0 holding only the upbeat, as engravers write an
    anacrusis — instead of a first bar of rests. (The reader does the reverse: see
    :func:`music21_to_score`.)"""
    from music21 import note as m21note
    from music21.stream.enums import ShowNumber

    firsts, rest = [], []
    for part in stream.parts:
        measures = list(part.getElementsByClass("Measure"))
        if len(measures) < 2:
            return
        firsts.append(measures[0])
        rest += measures[1:]
    onsets = [min((float(e.offset) for e in m.notesAndRests if not e.isRest), default=None) for m in firsts]
    if any(o is None for o in onsets):
        return  # a part is silent in the first bar: not an upbeat
    pad = min(onsets)
    bar = float(firsts[0].barDuration.quarterLength)
    if not 0 < pad < bar:
        return
    for m in firsts:
        for e in list(m.getElementsByClass(m21note.GeneralNote)):
            if float(e.offset) < pad:
                m.remove(e)  # the rests before the upbeat
        for e in list(m.getElementsByClass(m21note.GeneralNote)):
            m.setElementOffset(e, float(e.offset) - pad)
        m.paddingLeft = pad
        m.number = 0
        m.showNumber = ShowNumber.NEVER  # MusicXML's implicit="yes": not counted
    for m in rest:
        m.number -= 1


def _notate_key_and_tempo(stream, score: Score) -> None:
    """A key signature on every part (the piece's stated key, else the estimated one) so a
    score editor does not need an accidental on every note, and the tempo as a metronome
    mark on the first part."""
    from music21 import key as m21key
    from music21 import tempo as m21tempo

    from tunesmith.music.keys import key_name, score_mode

    # the stated key, else the estimated one; a church mode's signature is its own (E dorian: two
    # sharps), its notes spelt as its tonic's major or minor key spells them
    tonic, church, mode = score_mode(score)
    k = m21key.Key(key_name(tonic, mode).split()[0].replace("b", "-"), mode)  # D♭ major, not C♯ major
    qpm = score.tempo()
    for i, part in enumerate(stream.parts):
        measures = list(part.getElementsByClass("Measure"))
        first = measures[0] if measures else part
        for old in list(first.recurse().getElementsByClass(m21key.KeySignature)):
            old.activeSite.remove(old)
        first.insert(0, m21key.Key(k.tonic.name, church if church not in ("ionian", "aeolian") else mode))
        _spell_in_key(part, k)
        if i == 0 and qpm:
            for old in list(first.recurse().getElementsByClass(m21tempo.MetronomeMark)):
                old.activeSite.remove(old)
            first.insert(0, m21tempo.MetronomeMark(number=round(float(qpm), 2)))


def _key_signature_part(parts):
    """The part whose key signatures the piece states: the first of the parts whose opening
    signature (the number of sharps) most parts share, preferring one that also states a mode.
    A file with one part's signature wrong, such as music21's bwv62.6 (soprano without the two
    flats the other three parts and the music have) or bwv244.15 (soprano in four sharps, the
    rest in two), then keeps the right key."""
    from collections import Counter

    flats = [p.flatten() for p in parts]
    openings = [next(iter(f.getElementsByClass("KeySignature")), None) for f in flats]
    votes = Counter(int(k.sharps) for k in openings if k is not None)
    if not votes:
        return flats[0]
    best = max(votes.values())
    agreed = [i for i, k in enumerate(openings) if k is not None and votes[int(k.sharps)] == best]
    agreed = [i for i in agreed if int(openings[i].sharps) == int(openings[agreed[0]].sharps)]  # ties: earliest
    with_mode = [i for i in agreed if getattr(openings[i], "mode", None)]
    return flats[(with_mode or agreed)[0]]


def fill_meta_from_music(score: Score, *, key: bool = True) -> None:
    """Meta (time signature, tempo, key) from the music's own events where the meta lacks them;
    ``key=False``: the key signature states no mode, so no key."""
    m = score.music
    if score.meta.time_signature is None and len(m.time_signatures):
        ts = m.time_signatures[0]
        score.meta.time_signature = f"{ts.numerator}/{ts.denominator}"
    if score.meta.tempo is None and len(m.tempos):
        score.meta.tempo = round(float(m.tempos[0].qpm), 2)
    if key and score.meta.key is None and len(m.key_signatures):
        from tunesmith.music.keys import key_name

        ks = m.key_signatures[0]
        mode = "minor" if ks.tonality == 1 else "major"
        # key = number of sharps; the tonic of a major key moves a fifth per sharp.
        tonic = (7 * ks.key) % 12 if mode == "major" else (7 * ks.key + 9) % 12
        score.meta.key = key_name(tonic, mode)
