"""Reading and writing music, and every kind of bad input getting one clear error."""

import os
import struct
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
import symusic

from tunesmith.errors import BadInputError
from tunesmith.music.corpora import corpus_files
from tunesmith.music.io import Limits, load_score, read_pieces, save_midi, save_musicxml


def midi_bytes(fmt=1, ntrks=1, division=480, tracks=None):
    tracks = tracks if tracks is not None else [b"\x00\x90\x3c\x40\x83\x60\x80\x3c\x00\x00\xff\x2f\x00"]
    out = b"MThd" + struct.pack(">IHHH", 6, fmt, ntrks, division)
    for t in tracks:
        out += b"MTrk" + struct.pack(">I", len(t)) + t
    return out


def test_valid_midi_reads(tmp_path):
    p = tmp_path / "one-note.mid"
    p.write_bytes(midi_bytes())
    s = load_score(p)
    assert s.n_notes == 1 and s.pitches().tolist() == [60]


@pytest.mark.parametrize(
    "name, data, expected",
    [
        ("empty.mid", b"", "empty file"),
        ("text-really.mid", b"this is a text file, not MIDI\n" * 3, "contains text"),
        ("random-bytes.mid", bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8)), "no MIDI header"),
        ("truncated.mid", midi_bytes()[:-6], "truncated"),
        ("truncated-header.mid", b"MThd\x00\x00\x00\x06\x00", "truncated"),
        ("zero-ticks-per-beat.mid", midi_bytes(division=0), "zero ticks per quarter"),
        ("type-2.mid", midi_bytes(fmt=2), "type-2"),
        ("smpte-division.mid", midi_bytes(division=0xE728), "SMPTE"),
        ("no-tracks.mid", midi_bytes(ntrks=0, tracks=[]), "no tracks"),
    ],
)
def test_bad_midi_gets_named_error(tmp_path, name, data, expected):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(BadInputError) as e:
        load_score(p)
    assert expected in str(e.value) and name in str(e.value)


def test_missing_file_and_unknown_type(tmp_path):
    with pytest.raises(BadInputError, match="no such file"):
        load_score(tmp_path / "nothing-here.mid")
    p = tmp_path / "song.doc"
    p.write_bytes(b"ID3")
    with pytest.raises(BadInputError, match="unsupported file type"):
        load_score(p)
    p = tmp_path / "song.mp3"  # audio is read (transcribed); a broken one is one clear error
    p.write_bytes(b"ID3")
    with pytest.raises(BadInputError, match="not readable audio"):
        load_score(p)


def test_huge_file_refused_without_reading(tmp_path):
    p = tmp_path / "fifty-mb.mid"
    with open(p, "wb") as f:
        f.write(midi_bytes())
        f.truncate(50 * 2**20)  # sparse: 50 MB without writing 50 MB
    t0 = time.perf_counter()
    with pytest.raises(BadInputError, match="over the limit"):
        load_score(p)
    assert time.perf_counter() - t0 < 5  # refusal by size, not by parsing (bound, not a benchmark)


def test_two_million_notes_refused(tmp_path):
    # One track of 2,000,000 very short notes: delta 0 note-on / delta 1 note-off, running status.
    ev = b"\x00\x90\x3c\x40" + b"\x01\x3c\x00" + b"\x00\x3c\x40\x01\x3c\x00" * 1_999_999 + b"\x00\xff\x2f\x00"
    p = tmp_path / "two-million-notes.mid"
    p.write_bytes(midi_bytes(tracks=[ev]))
    with pytest.raises(BadInputError, match="2,000,000 notes, over the limit"):
        read_pieces(p, limits=Limits(max_bytes=64 * 2**20))


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<score-partwise><work><work-title>&xxe;</work-title></work></score-partwise>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<score-partwise><work><work-title>&lol3;</work-title></work></score-partwise>"""


@pytest.mark.parametrize("name, data", [("xxe-entity.musicxml", XXE), ("billion-laughs.xml", LAUGHS)])
def test_xml_entities_refused(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(BadInputError, match="unsafe XML"):
        load_score(p)


def test_xxe_inside_mxl_refused(tmp_path):
    p = tmp_path / "xxe-inside.mxl"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("score.xml", XXE)
    with pytest.raises(BadInputError, match="unsafe XML"):
        load_score(p)


def test_malformed_xml_and_bad_mxl(tmp_path):
    p = tmp_path / "not-well-formed.musicxml"
    p.write_text("<score-partwise><part>")
    with pytest.raises(BadInputError, match="not well-formed"):
        load_score(p)
    q = tmp_path / "not-a-zip.mxl"
    q.write_bytes(b"PK but not really")
    with pytest.raises(BadInputError, match="not a zip"):
        load_score(q)


def test_abc_file_with_many_tunes(tmp_path):
    p = tmp_path / "two-tunes.abc"
    p.write_text("X:1\nT:First\nM:3/4\nL:1/4\nK:G\nGAB|c2d|]\n\nX:2\nT:Second\nO:Europa, Deutschland\nM:2/4\nL:1/8\nK:Am\nABcd|e4|]\n")
    res = read_pieces(p)
    assert [s.meta.title for s in res.scores] == ["First", "Second"]
    assert res.scores[0].meta.key == "G major" and res.scores[1].meta.key == "A minor"
    assert res.scores[0].meta.time_signature == "3/4"
    assert "region:Deutschland" in res.scores[1].meta.tags
    assert res.scores[0].n_notes == 5 and res.scores[1].n_notes == 5


def test_abc_without_tunes(tmp_path):
    p = tmp_path / "no-x-field.abc"
    p.write_text("just some words\n")
    with pytest.raises(BadInputError, match="no tune"):
        load_score(p)


def test_midi_round_trip(tmp_path, chorale_like):
    p = save_midi(chorale_like, tmp_path / "c.mid")
    back = load_score(p)
    assert back.n_tracks == 4
    for a, b in zip(chorale_like.music.tracks, back.music.tracks):
        assert [(n.time, n.duration, n.pitch) for n in a.notes] == [(n.time, n.duration, n.pitch) for n in b.notes]


def test_musicxml_written_and_read_back(tmp_path, chorale_like):
    p = save_musicxml(chorale_like, tmp_path / "c.musicxml")
    assert b"<score-partwise" in p.read_bytes()[:2000]
    back = load_score(p)
    assert sorted(back.pitches().tolist()) == sorted(chorale_like.pitches().tolist())
    assert back.time_signature() == "4/4"


@pytest.mark.parametrize("corpus", ["bach-chorales", "palestrina", "essen", "monteverdi"])
def test_bundled_corpus_formats_read(corpus):
    s = read_pieces(corpus_files(corpus)[0]).scores[0]
    assert s.n_notes > 10 and s.meta.source


def test_cli_bad_file_is_one_line_no_traceback(tmp_path):
    p = tmp_path / "text-really.mid"
    p.write_text("hello")
    r = subprocess.run([sys.executable, "-m", "tunesmith", "info", str(p)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert str(p) in r.stderr and "not a MIDI file" in r.stderr


def test_cli_info_reads_a_chorale():
    f = corpus_files("bach-chorales")[0]
    r = subprocess.run([sys.executable, "-m", "tunesmith", "info", str(f), "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    import json

    d = json.loads(r.stdout.splitlines()[0])
    assert len(d["tracks"]) >= 4 and d["notes"] > 50 and d["time_signature"]


def test_symusic_score_is_the_music_type(chorale_like):
    assert isinstance(chorale_like.music, symusic.Score)
    # and it survives a MIDI round trip note for note
    again = symusic.Score.from_midi(bytes(chorale_like.music.dumps_midi()))
    assert [len(t.notes) for t in again.tracks] == [len(t.notes) for t in chorale_like.music.tracks]


def test_json_is_strict_and_writes_are_atomic_through_fresh_temporary_files(tmp_path):
    import json
    import os

    import numpy as np

    from tunesmith.fileio import atomic_write_bytes, dumps, write_json

    text = dumps({"a": float("nan"), "b": [float("inf"), -float("inf"), 1.5], "c": np.float32(np.nan),
                  "d": np.array([1.0, np.inf])})
    assert json.loads(text) == {"a": None, "b": [None, None, 1.5], "c": None, "d": [1.0, None]}
    assert "NaN" not in text and "Infinity" not in text
    # a link planted where a predictable temporary name would be is never followed
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    for name in ("out.json.part", ".out.json.part", "out.json.tmp"):
        os.symlink(victim, tmp_path / name)
    write_json(tmp_path / "out.json", {"x": 1})
    assert victim.read_text() == "keep me" and json.loads((tmp_path / "out.json").read_text()) == {"x": 1}
    assert sorted(p.name for p in tmp_path.iterdir() if not p.is_symlink()) == ["out.json", "victim.txt"]
    atomic_write_bytes(tmp_path / "out.json", b"{}")
    assert (tmp_path / "out.json").read_bytes() == b"{}"


def test_musicxml_states_key_tempo_and_clefs(tmp_path):
    """A score editor shows the key signature (no accidental on every note) and the tempo."""
    import re

    from tests.conftest import make_score

    from tunesmith.music.io import save_musicxml

    sc = make_score([[(0, 480, 62), (480, 480, 65), (960, 960, 69)], [(0, 1920, 38)]])
    sc.meta.key = "D minor"
    out = save_musicxml(sc, tmp_path / "d.musicxml")
    text = out.read_text()
    keys = re.findall(r"<key>\s*<fifths>(-?\d+)</fifths>\s*<mode>(\w+)</mode>", text)
    assert keys and set(keys) == {("-1", "minor")} and len(keys) == 2  # one per part
    assert "<per-minute>120</per-minute>" in text
    assert len(re.findall(r"<clef>", text)) >= 2
    from tunesmith.fileio import FILE_MODE

    assert out.stat().st_mode & 0o777 == FILE_MODE  # as open() would make it, not mkstemp's 0600
    sc.meta.key = None  # no stated key: the estimated one
    text = save_musicxml(sc, tmp_path / "e.musicxml").read_text()
    assert re.findall(r"<key>\s*<fifths>(-?\d+)</fifths>", text)


def test_musicxml_writes_an_upbeat_as_a_pickup_measure_and_spells_notes_in_the_key(tmp_path):
    """A tune whose first note comes on the last beat is engraved with a pickup measure
    (measure 0, implicit), not a bar of rests, and reads back note for note; a tune in D-flat
    major gets five flats and its notes spelled with them (MIDI carries no spelling)."""
    import re

    from tests.conftest import make_score

    Q = 480
    # 4/4, upbeat A-flat on beat 4, then D-flat major
    tune = [(3 * Q, Q, 68), (4 * Q, Q, 73), (5 * Q, Q, 75), (6 * Q, Q, 77), (7 * Q, Q, 78), (8 * Q, 2 * Q, 80),
            (10 * Q, 2 * Q, 77), (12 * Q, 4 * Q, 73)]
    sc = make_score([tune])
    sc.meta.key = "C# major"  # as a key finder may name it
    out = save_musicxml(sc, tmp_path / "up.musicxml")
    text = out.read_text()
    measures = re.findall(r"<measure ([^>]*)>", text)
    assert 'implicit="yes"' in measures[0] and 'number="0"' in measures[0] and 'number="1"' in measures[1]
    first = text.split("</measure>")[0]
    assert "<rest" not in first and first.count("<pitch>") == 1
    assert re.findall(r"<fifths>(-?\d+)</fifths>", text) == ["-5"]
    steps = re.findall(r"<step>([A-G])</step>\s*<alter>(-?\d+)</alter>", text)
    assert ("C", "1") not in steps and ("D", "-1") in steps  # D-flat, never C-sharp
    assert "<accidental>" not in text  # every note is in the key
    back = load_score(out)
    notes = lambda s: [(n.time, n.pitch) for t in s.music.resample(480, min_dur=1).tracks for n in t.notes]  # noqa: E731
    assert notes(back) == notes(sc)
    # G minor keeps its leading tone F-sharp (not G-flat) and its B-flat; C-sharp to D stays sharp
    sc = make_score([[(0, Q, 67), (Q, Q, 66), (2 * Q, Q, 67), (3 * Q, Q, 70), (4 * Q, Q, 61), (5 * Q, 3 * Q, 62)]])
    sc.meta.key = "G minor"
    text = save_musicxml(sc, tmp_path / "g.musicxml").read_text()
    steps = re.findall(r"<step>([A-G])</step>\s*<alter>(-?\d+)</alter>", text)
    assert ("F", "1") in steps and ("B", "-1") in steps and ("C", "1") in steps
    assert ("G", "-1") not in steps and ("D", "-1") not in steps and ("A", "1") not in steps
    assert notes(load_score(tmp_path / "g.musicxml")) == notes(sc)
    # a 3/4 piece in four parts: every part in 3/4 (the meter once reached the first part only)
    sc = make_score([[(i * Q, Q, 72 - 5 * v) for i in range(6)] for v in range(4)], time_sigs=((0, 3, 4),))
    text = save_musicxml(sc, tmp_path / "w.musicxml").read_text()
    assert re.findall(r"<beats>(\d+)</beats>", text) == ["3"] * 4


@pytest.mark.timeout(60)
@pytest.mark.parametrize("numerator,denominator", [(0, 4), (4, 0), (1, 64)])
def test_piano_roll_picture_of_an_odd_meter_finishes(tmp_path, numerator, denominator):
    """A time signature of 0/4 used to make the bar-line loop run forever (growing to GBs)."""
    import symusic
    from tests.conftest import make_score

    from tunesmith.music.plot import save_pianoroll_png

    sc = make_score([[(0, 480, 60), (480, 480 * 400, 62)]])
    sc.music.time_signatures.clear()
    sc.music.time_signatures.append(symusic.TimeSignature(0, numerator, denominator))
    out = save_pianoroll_png(sc, tmp_path / "odd.png")
    assert out.read_bytes()[:4] == b"\x89PNG" and [p.name for p in tmp_path.iterdir()] == ["odd.png"]


def _odd_midi(path, meta):
    import mido

    mf = mido.MidiFile(ticks_per_beat=480)
    t = mido.MidiTrack()
    mf.tracks.append(t)
    for m in meta:
        t.append(m)
    t.append(mido.Message("note_on", note=60, velocity=80, time=0))
    t.append(mido.Message("note_off", note=60, velocity=0, time=960))
    t.append(mido.Message("note_on", note=64, velocity=80, time=0))
    t.append(mido.Message("note_off", note=64, velocity=0, time=960))
    mf.save(str(path))
    return path


@pytest.mark.parametrize("case", ["tempo 0", "time signature 0/4", "key signature +9"])
def test_odd_meta_events_are_normalised_at_reading_for_every_command(tmp_path, case):
    import mido

    meta = {"tempo 0": [mido.MetaMessage("set_tempo", tempo=0, time=0)],
            "time signature 0/4": [mido.MetaMessage("time_signature", numerator=0, denominator=4, time=0)],
            "key signature +9": [mido.MetaMessage("key_signature", key="C", time=0)]}[case]
    f = _odd_midi(tmp_path / "odd.mid", meta)
    if case == "key signature +9":  # mido refuses to write an out-of-range key: patch the byte (sf = 9)
        data = bytearray(f.read_bytes())
        i = data.index(b"\xff\x59\x02")
        data[i + 3] = 9
        f.write_bytes(bytes(data))
    from tunesmith.music.io import load_score

    s = load_score(f)
    assert all(1 <= t.qpm <= 1000 for t in s.music.tempos)
    assert len(s.music.tempos) >= (1 if case == "tempo 0" else 0)
    assert all(t.numerator >= 1 for t in s.music.time_signatures)
    assert all(-7 <= k.key <= 7 for k in s.music.key_signatures)
    for args in (["info", str(f)], ["render", str(f), "--out", str(tmp_path / "o.wav")],
                 ["harmonize", str(f), "--iterations", "2", "--formats", "mid,png", "--out", str(tmp_path / "h")]):
        r = subprocess.run([sys.executable, "-m", "tunesmith", *args], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0 and "Traceback" not in r.stderr, (args, r.stderr)


def test_a_pickup_bar_keeps_the_bar_lines_where_they_are_written(tmp_path):
    from tunesmith.music.corpora import corpus_files
    from tunesmith.music.io import load_score

    # ABC (abc2midi would start the pickup at 0): 6/8, an eighth-note pickup
    (tmp_path / "pickup.abc").write_text("X:1\nT:Pickup\nM:6/8\nL:1/8\nK:D\nA|dfa agf|e2d d2|]\n")
    m = load_score(tmp_path / "pickup.abc").music
    q = m.ticks_per_quarter
    assert [n.time / q for n in m.tracks[0].notes][:3] == [2.5, 3.0, 3.5]
    assert list(m.get_downbeats()[:3] / q) == [0.0, 3.0, 6.0]  # 'd' falls on the downbeat
    # a chorale with a quarter-note pickup in MusicXML (read through music21)
    f = next(f for f in corpus_files("bach-chorales") if f.name.startswith("bwv102.7"))
    s = load_score(f).music
    first = min(t.notes[0].time for t in s.tracks if len(t.notes))
    assert first / s.ticks_per_quarter == 3.0
    # no pickup: nothing moves
    (tmp_path / "plain.abc").write_text("X:1\nT:Plain\nM:4/4\nL:1/4\nK:C\nCDEF|G4|]\n")
    assert load_score(tmp_path / "plain.abc").music.tracks[0].notes[0].time < 480 // 16  # (abc2midi starts at tick 1)


def test_third_party_messages_go_to_a_log(tmp_path, monkeypatch, capfd):
    """C code writing to file descriptor 2 (FluidSynth) and Python code printing to stderr or
    warning (music21) inside third_party_log reach the log, not the terminal; the terminal
    gets one note per process."""
    import warnings

    import tunesmith.fileio as fileio

    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path))
    monkeypatch.delenv("TUNESMITH_VERBOSE", raising=False)
    monkeypatch.setattr(fileio, "_NOTED", set())
    for _ in range(2):
        with fileio.third_party_log("synth"):
            os.write(2, b"fluidsynth: error: Failed to allocate a synthesis process\n" * 100)
            print("we are out of midi channels! help!", file=sys.stderr)
            warnings.warn("MusicXML warning", stacklevel=1)
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "synth printed messages" in err
    log = (tmp_path / "logs" / "synth.log").read_text()
    assert log.count("Failed to allocate") == 200 and "out of midi channels" in log and "MusicXML warning" in log
    monkeypatch.setenv("TUNESMITH_VERBOSE", "1")
    with fileio.third_party_log("synth"):
        os.write(2, b"shown\n")
    assert capfd.readouterr().err == "shown\n"


def test_tied_notes_are_merged_as_music21_merges_them():
    """Ties merged without music21's stripTies (which took most of the time reading a quartet):
    a tie marked start and stop, a tie whose end is not marked, tied chord notes, and a second
    voice striking the tied pitch again are read as stripTies reads them."""
    from music21 import chord, note, stream, tie

    from tunesmith.music.convert import _tied_notes

    def n(p, ql, t=None):
        x = note.Note(p, quarterLength=ql)
        if t:
            x.tie = tie.Tie(t)
        return x

    s = stream.Part()
    for x in (n("C4", 2, "start"), n("C4", 1, "stop"), n("D4", 1), n("E4", 1, "start"), n("E4", 1), n("E4", 1)):
        s.append(x)
    c1, c2 = chord.Chord(["C4", "E4"], quarterLength=1), chord.Chord(["C4", "G4"], quarterLength=1)
    c1.notes[0].tie = tie.Tie("start")
    c2.notes[0].tie = tie.Tie("stop")
    s.append([c1, c2])
    got = sorted(tuple(x) for x in _tied_notes(s.flatten().notes, 4, 0))
    assert got == [(0, 12, 60), (12, 4, 62), (16, 8, 64), (24, 4, 64), (28, 4, 64), (28, 8, 60), (32, 4, 67)]
    # a real chorale: the same notes as stripTies gives
    from music21 import converter

    f = str(next(f for f in corpus_files("bach-chorales") if f.name.startswith("bwv10.7.")))
    for part, fresh in zip(converter.parse(f).parts, converter.parse(f, forceSource=True).parts):
        flat = part.flatten()
        flat.stripTies(inPlace=True)
        ref = sorted((int(round(float(e.offset) * 480)), max(1, int(round(float(e.quarterLength) * 480))), int(p.midi))
                     for e in flat.notes if float(e.quarterLength) > 0 for p in e.pitches)
        assert sorted(tuple(x) for x in _tied_notes(fresh.flatten().notes, 480, 0)) == ref


def test_musicxml_of_a_line_whose_notes_run_into_the_next(tmp_path):
    """A line in 2/2 that begins three quarters before a bar line with a note held a sixteenth into
    the next (as the folk model once wrote one, seed 102): music21's beaming failed on it ("cannot
    access qLenPos 4.0"), and generate stopped with a traceback after writing MIDI and WAV. The
    MusicXML is now written, the overlapping note released where the next begins."""
    from tests.conftest import make_score

    from tunesmith.music.io import released_before_next

    notes = [(1560, 480, 70), (1800, 360, 67), (2040, 360, 67), (2520, 120, 72), (2640, 120, 72), (2760, 360, 74),
             (3120, 360, 70), (3480, 120, 72), (3600, 120, 74), (3720, 120, 72), (3960, 120, 72)]
    s = make_score([notes])
    s.music.time_signatures.clear()
    s.music.time_signatures.append(symusic.TimeSignature(0, 2, 2))
    back = load_score(save_musicxml(s, tmp_path / "line.musicxml"))
    assert [n.pitch for t in back.music.tracks for n in t.notes] == [p for _, _, p in notes]
    cut = released_before_next(s).music.tracks[0].notes
    assert [n.duration for n in cut] == [240, 240] + [d for _, d, _ in notes][2:]  # both ran into the next
    # a chord's notes, and a note held under a moving line, are left alone
    held = make_score([[(0, 480, 60), (0, 480, 64), (0, 1920, 48), (480, 480, 62), (960, 960, 65)]])
    assert [n.duration for n in released_before_next(held).music.tracks[0].notes] == [480, 480, 1920, 480, 960]


def test_musicxml_keeps_thirty_seconds_and_the_notes_after_them(tmp_path):
    """The generators write onsets and lengths in thirty-seconds, and music21's quantizer read a
    file's notes on sixteenths and eighth triplets: a thirty-second snapped onto its neighbour's
    onset or onto a triplet, and every note after it moved (2 of 30 folk tunes' MusicXML disagreed
    with their MIDI). The sheet music now holds the MIDI's notes; a triplet still reads as one."""
    from tests.conftest import make_score

    from tunesmith.music.convert import notation_grid

    # a dotted sixteenth and a thirty-second, then a line displaced by a thirty-second, then a triplet
    notes = [(0, 180, 67), (180, 60, 69), (240, 60, 71), (300, 120, 72), (420, 120, 74), (540, 60, 76),
             (600, 120, 77), (720, 240, 76), (960, 160, 74), (1120, 160, 72), (1280, 160, 71), (1440, 480, 67)]
    s = make_score([notes])
    assert notation_grid(s.music) == (8, 3)
    back = load_score(save_musicxml(s, tmp_path / "fig.musicxml"))
    scale = 480 / back.music.tpq
    assert [(round(n.time * scale), round(n.duration * scale), n.pitch) for t in back.music.tracks
            for n in t.notes] == notes
    # sixteenths and triplets keep music21's default grid; a performance off every grid too
    assert notation_grid(make_score([[(0, 120, 60), (160, 160, 62)]]).music) == (4, 3)
    assert notation_grid(make_score([[(0, 117, 60), (131, 170, 62)]]).music) == (4, 3)
