"""The meter of a recording: bars and where they begin, read from its (transcribed) notes."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_score
from tunesmith.cli import main
from tunesmith.errors import OptionError
from tunesmith.music.meter import METERS, estimate_meter, voice_spans

BEAT = 0.6  # seconds
Q = 480
# a waltz tune: a long note on every downbeat (3, 2+1, 3, 3, 2+1, …)
WALTZ = [(76, 3), (74, 2), (72, 1), (71, 3), (72, 3), (74, 2), (76, 1), (77, 3), (76, 3)] * 2
# a hymn: q q q q | h h | q q q q | w over a bass in half notes
HYMN = [(0, 1, 72), (1, 1, 74), (2, 1, 76), (3, 1, 77), (4, 2, 79), (6, 2, 76), (8, 1, 77), (9, 1, 76),
        (10, 1, 74), (11, 1, 71), (12, 4, 72)]
HYMN_BASS = [(0, 2, 48), (2, 2, 43), (4, 2, 45), (6, 2, 41), (8, 2, 43), (10, 2, 43), (12, 4, 36)]


def _notes(parts, shift: float = 0.0) -> np.ndarray:
    """(start s, end s, pitch, amplitude) rows from (beat, beats, pitch) triples."""
    return np.array([[(a + shift) * BEAT, (a + shift + d) * BEAT, p, 0.8] for part in parts for a, d, p in part])


def _waltz(pickup: int = 0) -> list[tuple[int, int, int]]:
    out, t = ([(0, 1, 71)] if pickup else []), pickup
    for p, d in WALTZ[:16]:
        out.append((t, d, p))
        t += d
    return out


@pytest.mark.parametrize("pickup", [0, 1])
def test_a_waltz_tune_is_read_in_three_with_its_bars_where_they_begin(pickup):
    m = estimate_meter(_notes([_waltz(pickup)]), 100.0)
    assert m.time_signature == "3/4" and m.beats_per_bar == 3
    # bar 1's line: at the first note, or two beats before a one-beat pickup
    assert abs(m.downbeat_seconds - (-2 * BEAT if pickup else 0.0)) < 0.07, m.downbeat_seconds
    assert abs(m.bar_seconds - 3 * BEAT) < 0.05
    assert 0 < m.confidence <= 1


def test_a_given_meter_places_its_bars_and_an_upbeat_before_them():
    notes = _notes([[(0, 1, 67)] + [(a + 1, d, p) for a, d, p in HYMN], [(a + 1, d, p) for a, d, p in HYMN_BASS]])
    m = estimate_meter(notes, 100.0, meter="4/4")
    assert m.time_signature == "4/4" and m.beats_per_bar == 4
    assert abs(m.downbeat_seconds - (-3 * BEAT)) < 0.07, m.downbeat_seconds  # the upbeat is beat 4 of bar 0
    m = estimate_meter(notes, 100.0, meter="3/4")
    assert m.time_signature == "3/4" and abs(m.bar_seconds - 3 * BEAT) < 0.05
    assert set(METERS) == {"2/4", "3/4", "4/4", "6/8", "9/8", "12/8"}


def test_too_few_notes_give_no_meter():
    assert estimate_meter(_notes([[(i, 1, 60 + i) for i in range(5)]]), 100.0) is None


def test_a_bass_note_under_after_beats_holds_to_the_next_bass_note():
    # bass C on 1, a chord on 2 and 3, bass G on the next 1: the bass holds three beats although
    # it was played (and transcribed) as a quarter note; the chord notes hold one beat each
    start = np.array([0, 1, 1, 2, 2, 3], float)
    dur = np.ones(6)
    pitch = np.array([48, 64, 67, 64, 67, 43])
    span = voice_spans(start, dur, pitch)
    assert span[0] == 3.0 and list(span[1:5]) == [1.0, 1.0, 1.0, 1.0]
    assert span[5] == 1.0  # the last note: its own duration


def test_a_recording_of_a_waltz_is_transcribed_in_three_with_its_upbeat(tmp_path, capsys):
    from tunesmith.mir.api import analyze
    from tunesmith.music.audio import transcribe, transcription_meter
    from tunesmith.music.render import render_wav

    s = make_score([[(a * Q, d * Q, p) for a, d, p in _waltz(pickup=1)]])  # 120 qpm
    wav = render_wav(s, tmp_path / "waltz.wav", sample_rate=22050)
    t = transcribe(wav)
    m = transcription_meter(t)
    assert t.time_signature() == "3/4" and m["time_signature"] == "3/4" and not m["given"]
    # the upbeat (beat 3) is bar 0: bar 1's line two beats (1 s at 120 qpm) before the recording's first note
    assert abs(m["first_bar_line_seconds"] + 1.0) < 0.07, m
    assert t.bars() == 13  # the pickup bar and twelve of the tune
    first = min(n.time for tr in t.music.tracks for n in tr.notes)
    assert abs(first / t.tpq - 2.0) < 0.1  # the upbeat on beat 3 of the pickup bar
    d = analyze(wav).to_dict()
    assert d["meter"] == "3/4" and d["meter_assumed"] is False and d["meter_estimated"]["time_signature"] == "3/4"
    assert main(["transcribe", str(wav), "--out", str(tmp_path / "w.mid")]) == 0
    assert "3/4 (estimated, confidence" in capsys.readouterr().out
    # told the meter, only where its bars begin is estimated
    assert main(["transcribe", str(wav), "--out", str(tmp_path / "w2.mid"), "--meter", "2/4"]) == 0
    assert "2/4 as given" in capsys.readouterr().out
    import tunesmith

    a = tunesmith.analyze(wav, meter="2/4")
    assert a.meter == "2/4" and a.to_dict()["meter_estimated"]["given"] is True
    assert main(["analyze", str(wav), "--meter", "2/4"]) == 0
    assert "meter        2/4 (given" in capsys.readouterr().out


JIG = "GBG DGB|d2e dBG|FAF DFA|c2d cAF|GBG DGB|d2e dBG|cBA DEF|G3 G2 z|"


def test_a_recording_of_a_jig_is_transcribed_in_six_eight(tmp_path):
    """A jig played on a flute at 100 quarter notes a minute: its bar is three quarters long, as a
    waltz's, but its eighths go in threes, its second beat on the bar's fourth eighth. It was read
    3/4 (a bar of three tracked quarter-note beats); the onsets, against templates of 3/4 and 6/8
    scores read in quarter-note beats, now say 6/8. A waltz stays 3/4 (the test above)."""
    import symusic

    from tunesmith.music.audio import transcribe, transcription_meter
    from tunesmith.music.io import load_score
    from tunesmith.music.render import render_wav

    (tmp_path / "jig.abc").write_text("X:1\nT:Jig\nM:6/8\nL:1/8\nK:G\n" + JIG + JIG.replace("G3 G2 z", "G3 G3") + "\n")
    s = load_score(tmp_path / "jig.abc")
    s.music.tempos.clear()
    s.music.tempos.append(symusic.Tempo(0, 100.0))
    for t in s.music.tracks:
        t.program = 73
    t = transcribe(render_wav(s, tmp_path / "jig.wav", sample_rate=22050))
    m = transcription_meter(t)
    assert t.time_signature() == "6/8" and abs(m["bar_seconds"] - 1.8) < 0.05, m
    from tunesmith.mir.analysis import analyze_score

    mel = analyze_score(t).to_dict()["melody"]  # one line heard: its melody is read, and it is the jig's
    assert mel["notes"] >= 0.9 * sum(len(x.notes) for x in s.music.tracks) and mel["lowest_name"] == "D4", mel
    from tunesmith.music.melody import melody_of

    assert "several voices" not in melody_of(t).describe()  # one line heard: no warning
    # one line heard: each note released where the next begins (a flute's notes ring on into the next)
    ns = sorted((n.time, n.end) for n in t.music.tracks[0].notes)
    assert "one-line" in t.meta.tags and all(a[1] <= b[0] for a, b in zip(ns, ns[1:]) if b[0] > a[0])
    # and as sheet music: the jig's first two bars as written (GBG DGB | d2e dBG)
    from tunesmith.cli import main

    assert main(["transcribe", str(tmp_path / "jig.wav"), "--out", str(tmp_path / "jig.musicxml")]) == 0
    import music21

    bars = list(music21.converter.parse(str(tmp_path / "jig.musicxml")).parts[0].getElementsByClass("Measure"))
    got = [[(n.nameWithOctave, float(n.quarterLength)) for n in m.notes] for m in bars[:2]]
    assert got == [[("G4", 0.5), ("B4", 0.5), ("G4", 0.5), ("D4", 0.5), ("G4", 0.5), ("B4", 0.5)],
                   [("D5", 1.0), ("E5", 0.5), ("D5", 0.5), ("B4", 0.5), ("G4", 0.5)]], got


def test_an_unknown_meter_is_refused_before_any_work(tmp_path, cli):
    from tunesmith.music.audio import transcribe

    with pytest.raises(OptionError, match="--meter"):
        transcribe(tmp_path / "missing.wav", meter="5/4")
    wav = tmp_path / "x.wav"
    wav.write_bytes(b"")
    r = cli("transcribe", wav, "--meter", "7/4")
    assert r.returncode == 2 and "--meter" in r.stderr and "7/4" in r.stderr and "Traceback" not in r.stderr
    # analyze takes a recording's meter too, and refuses one for a score, which carries its own
    from tunesmith.music.corpora import corpus_files

    chorale = corpus_files("bach-chorales")[0]
    r = cli("analyze", chorale, "--meter", "3/4")
    assert r.returncode == 2 and "a score carries its own" in r.stderr and "Traceback" not in r.stderr
    r = cli("analyze", wav, "--meter", "5/4")
    assert r.returncode == 2 and "5/4" in r.stderr


def test_beats_tracked_on_the_off_beats_are_moved_to_where_the_held_notes_begin():
    from tunesmith.music.meter import on_the_beat

    # quarter, eighth, eighth in every beat: the quarters (held longest) begin on the beats
    parts = [[(b, 0.5, 67), (b + 0.5, 0.25, 69), (b + 0.75, 0.25, 71)] for b in range(12)]
    notes = _notes([[x for part in parts for x in part]])
    off = (np.arange(-1, 13) + 0.5) * BEAT  # a grid on the off-beats
    on = on_the_beat(notes, off)
    assert np.allclose(on / BEAT, np.round(on / BEAT), atol=1e-6), on[:4]
    assert np.array_equal(on_the_beat(notes, on), on)  # beats already on the beat stay


def test_a_recording_of_four_notes_keeps_bars_from_its_start(tmp_path, capsys):
    import soundfile as sf

    from tunesmith.music.audio import transcribe, transcription_meter

    sr = 22050
    t = np.arange(int(sr * 0.5)) / sr
    audio = np.concatenate([0.4 * np.sin(2 * np.pi * 440 * 2 ** ((m - 69) / 12) * t) * np.exp(-2 * t)
                            for m in (60, 64, 67, 72)])
    wav = tmp_path / "four.wav"
    sf.write(wav, audio.astype(np.float32), sr)
    s = transcribe(wav)
    assert "meter:assumed" in s.meta.tags and transcription_meter(s) is None and s.time_signature() == "4/4"
    given = transcribe(wav, meter="3/4")
    assert given.time_signature() == "3/4" and "meter:given-from-start" in given.meta.tags
    assert main(["transcribe", str(wav), "--out", str(tmp_path / "f.mid"), "--meter", "3/4"]) == 0
    assert "3/4 as given, bars from the recording's start" in capsys.readouterr().out


MUSS_I_DENN = ("X:1\nT:Muss ich denn\nM:2/4\nL:1/16\nK:F\nFA | c2ccc2fd | c2ccA2\ndd | c3BG2c2 | A4z2\n"
               "FA | c2ccc2fd | c2ccA2\ndd | c3BG2c2 | A4z2\ncc | G2G2G2c2 | A2A2A2\nFF | B3dfefd | c4z2\n"
               "FA | c2ccc2fd | c2ccA2\ndd | c3BG2c2 | A4z2\n")


def test_a_slow_tune_in_sixteenths_is_read_at_its_tempo_not_its_double(tmp_path):
    """'Muss i denn' is written in 2/4 in sixteenths; played on the piano at 82 quarter notes a
    minute, its onsets fit 164 as well (its sixteenths are eighths there), the prior around 100 qpm
    cannot choose between them, and the tempo was read at 164. The bar the notes make at each level
    of the tempo now chooses: 82, and two bars of 2/4 are two bars."""
    import symusic

    from tunesmith.music.audio import basic_pitch_notes, estimate_tempo, transcribe
    from tunesmith.music.io import load_score
    from tunesmith.music.render import render_wav

    (tmp_path / "tune.abc").write_text(MUSS_I_DENN)
    s = load_score(tmp_path / "tune.abc")
    s.music.tempos.clear()
    s.music.tempos.append(symusic.Tempo(0, 82.0))
    wav = render_wav(s, tmp_path / "tune.wav", sample_rate=22050)
    notes = np.array(basic_pitch_notes(wav), float)
    onsets = np.unique(np.round(notes[:, 0], 3))
    assert abs(estimate_tempo(onsets, metrical_weight=0) / 164 - 1) < 0.04  # the onsets alone: the double
    assert abs(estimate_tempo(onsets, notes=notes) / 82 - 1) < 0.04
    t = transcribe(wav)
    assert abs(t.tempo() / 82 - 1) < 0.04, t.tempo()
