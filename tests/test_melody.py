"""Which line harmonize takes as the melody, and that it says so (issue #18 item 2)."""

import symusic

from tunesmith.cli import main
from tunesmith.music.melody import melody_of
from tunesmith.music.score import Score


def song(names=("Piano", "Melody", "Bass"), lead_in_bars=2) -> symusic.Score:
    """Piano chords high up, a monophonic tune in the middle, a bass; the tune starts after
    ``lead_in_bars`` bars of accompaniment."""
    m = symusic.Score(480)
    m.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    piano, tune, bass = (symusic.Track(name=n, program=p) for n, p in zip(names, (0, 73, 33)))
    for beat in range(4 * 10):
        for pitch in (76, 79, 84):
            piano.notes.append(symusic.Note(beat * 480, 480, pitch, 60))
        bass.notes.append(symusic.Note(beat * 480, 480, 43, 70))
    scale = [67, 69, 71, 72, 74, 72, 71, 69]
    for k in range(4 * (10 - lead_in_bars)):
        tune.notes.append(symusic.Note((4 * lead_in_bars + k) * 480, 480, scale[k % 8], 90))
    tune.notes.append(symusic.Note(4 * lead_in_bars * 480, 240, 55, 50))  # a grace note under the first one
    for t in (piano, tune, bass):
        m.tracks.append(t)
    return m


def test_the_named_track_wins_and_is_reduced_to_one_line():
    m = melody_of(Score(song()))
    assert (m.track_index, m.why, m.skipped_bars, m.reduced) == (2, "named", 2, 1)
    notes = m.score.music.tracks[0].notes.numpy()
    assert notes["time"][0] == 0 and notes["pitch"][0] == 67 and m.bars == 8
    assert "track 2 'Melody' (named)" in m.describe() and "2 silent bars" in m.describe()


def test_a_recorded_melody_to_harmonize_is_the_played_line_not_the_overtones():
    """A sung or played tune's transcription has quiet overtones an octave above its notes, a few
    milliseconds off their onsets: harmonize takes the loud played notes, held to the next one."""
    from tunesmith.music.score import Meta

    m = symusic.Score(480)
    m.tempos.append(symusic.Tempo(0, 120.0))  # 0.05 s = 48 ticks
    tr = symusic.Track("Transcription", 0, False)
    for t, p in [(0, 67), (480, 69), (960, 71), (1440, 72)]:
        tr.notes.append(symusic.Note(t, 470, p, 100))
    tr.notes.append(symusic.Note(490, 60, 81, 55))  # the octave above 69, 10 ticks late
    tr.notes.append(symusic.Note(1430, 80, 84, 60))  # the octave above 72, 10 ticks early
    tr.notes.sort(key=lambda n: (n.time, n.pitch))
    m.tracks.append(tr)
    mel = melody_of(Score(m, Meta(tags=["transcribed"])))
    notes = mel.score.music.tracks[0].notes.numpy()
    assert notes["pitch"].tolist() == [67, 69, 71, 72] and mel.reduced == 2
    assert notes["time"].tolist() == [0, 480, 960, 1440]
    assert melody_of(Score(m)).score.music.tracks[0].notes.numpy()["pitch"].max() == 84  # a score: the top line


def test_without_names_the_monophonic_line_beats_the_higher_chords():
    m = melody_of(Score(song(names=("A", "B", "C"))))
    assert (m.track_index, m.why) == (2, "most melodic line")


def test_a_chosen_track_by_name_or_number_and_a_wrong_one():
    import pytest

    from tunesmith.errors import ParameterError

    assert melody_of(Score(song()), "piano").track_index == 1
    assert melody_of(Score(song()), 3).track_name == "Bass"
    with pytest.raises(ParameterError, match="no track 'Vocals'.*1 'Piano', 2 'Melody', 3 'Bass'"):
        melody_of(Score(song()), "Vocals")


def test_harmonize_says_which_track_it_used(tmp_path, capsys):
    f = tmp_path / "Song. With dots.mid"
    song().dump_midi(str(f))
    assert main(["harmonize", str(f), "--iterations", "2", "--formats", "mid", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "melody: track 2 'Melody' (named), 8 bars" in out
    assert (tmp_path / "o" / "Song. With dots-harmonize-000.mid").is_file()
    assert main(["harmonize", str(f), "--melody-track", "9", "--out", str(tmp_path / "p")]) == 2
    assert "--melody-track: no track '9'" in capsys.readouterr().err


def test_harmonize_with_particles_from_the_cli(tmp_path, capsys):
    """--particles runs the SATB-token model's particle filter and is recorded; a Coconet
    model (Gibbs sampling) or a count out of range is refused before anything is written."""
    import json

    f = tmp_path / "song.mid"
    song().dump_midi(str(f))
    assert main(["harmonize", str(f), "--model", "bach-chorales", "--particles", "3", "--formats", "mid",
                 "--out", str(tmp_path / "o")]) == 0
    info = json.loads((tmp_path / "o" / "song-harmonize-000.json").read_text())
    assert info["settings"]["particles"] == 3 and (tmp_path / "o" / "song-harmonize-000.mid").is_file()
    capsys.readouterr()
    assert main(["harmonize", str(f), "--particles", "4", "--out", str(tmp_path / "p")]) == 2  # chorale-cnn
    assert "--particles: particles are for harmonizing with an SATB token model" in capsys.readouterr().err
    assert main(["harmonize", str(f), "--model", "bach-chorales", "--particles", "0", "--out", str(tmp_path / "q")]) == 2
    assert "--particles: must be between 1 and 64" in capsys.readouterr().err
    assert not (tmp_path / "p").exists() and not (tmp_path / "q").exists()


def test_a_tune_stated_in_a_church_mode_is_harmonized_in_its_tonic(tmp_path, capsys):
    """Cooley's reel states K:Edor. The key parser knows major and minor only, so the melody's key was
    estimated from its notes, and the harmonization came out "A major", its rules asking for G sharp
    under a tune that sings G natural. A church mode is now read as its tonic's major or minor key
    (dorian is minor, mixolydian major), which the rules and the harmonization's name keep."""
    from tunesmith.music.io import load_score
    from tunesmith.music.keys import score_key

    f = tmp_path / "cooley.abc"
    f.write_text("X:1\nT:Cooley's A\nM:4/4\nL:1/8\nK:Edor\nEBBA B2 EB|B2 AB dBAG|FDAD BDAD|FDAD dAFD|"
                 "EBBA B2 EB|B2 AB defg|afec dBAF|DEFD E4|\n")
    assert score_key(load_score(f)) == (4, "minor")
    g = tmp_path / "mix.abc"
    g.write_text("X:1\nT:Mix\nM:6/8\nL:1/8\nK:Amix\n|:A3 AGE|A3 ABc|d3 cBA|G3 GAB|A3 AGE|A3 ABc|dcB GAB|A3 A2:|\n")
    assert score_key(load_score(g)) == (9, "major")
    assert main(["harmonize", str(f), "--iterations", "8", "--formats", "mid", "--out", str(tmp_path / "o")]) == 0
    assert "[key E minor," in capsys.readouterr().out


def test_a_church_mode_tune_written_as_midi_keeps_its_tonic_and_k_none_states_no_key(tmp_path, capsys):
    """A MIDI key signature says major or minor only. Cooley's reel (K:Edor) carried E dorian's
    signature, two sharps, written major, and the MIDI file tunesmith wrote of it read back as
    "D major" (harmonized in D). It is now written with E minor's signature, as the tune's key is
    read (dorian is minor), and reads back E minor; the sheet music keeps the mode's own signature.
    And ABC's K:none states no key: abc2midi's C-major signature was taken for one."""
    from tunesmith.music.io import load_score, save_midi

    abc = tmp_path / "cooley.abc"
    abc.write_text("X:1\nT:Cooley's A\nM:4/4\nL:1/8\nK:Edor\nEBBA B2 EB|B2 AB dBAG|FDAD BDAD|FDAD dAFD|"
                   "EBBA B2 EB|B2 AB defg|afec dBAF|DEFD E4|\n")
    tune = load_score(abc)
    assert [(k.key, k.tonality) for k in tune.music.key_signatures] == [(2, 0)]  # the mode's, from abc2midi
    back = load_score(save_midi(tune, tmp_path / "cooley.mid"))
    assert back.meta.key == "E minor" and [(k.key, k.tonality) for k in back.music.key_signatures] == [(1, 1)]
    mix = tmp_path / "mix.abc"
    mix.write_text("X:1\nT:Mix\nM:6/8\nL:1/8\nK:Amix\n|:A3 AGE|A3 ABc|d3 cBA|G3 GAB|A3 AGE|A3 ABc|dcB GAB|A3 A2:|\n")
    assert load_score(save_midi(load_score(mix), tmp_path / "mix.mid")).meta.key == "A major"
    plain = tmp_path / "g.abc"  # a major key is written as it was
    plain.write_text("X:1\nT:G\nM:4/4\nL:1/8\nK:G\nGABc dBAG|FGAB cAFD|GABc dBAG|FADF G4|\n")
    g = load_score(save_midi(load_score(plain), tmp_path / "g.mid"))
    assert g.meta.key == "G major" and [(k.key, k.tonality) for k in g.music.key_signatures] == [(1, 0)]
    none = tmp_path / "none.abc"
    none.write_text("X:1\nT:No key\nM:4/4\nL:1/8\nK:none\nEBBA B2 EB|B2 AB dBAG|FDAD BDAD|FDAD dAFD|\n")
    s = load_score(none)
    assert s.meta.key is None and not len(s.music.key_signatures)
    assert load_score(save_midi(s, tmp_path / "none.mid")).meta.key is None
    assert main(["info", str(none)]) == 0
    assert "(estimated)" in capsys.readouterr().out


def test_a_melody_that_states_no_key_is_read_by_the_tune_reader(tmp_path, capsys):
    """A melody given as MIDI (or a recording) states no key, and generation, harmonize and
    ``generate --primer`` estimated it by Krumhansl–Schmuckler, which reads Cooley's reel (E dorian,
    resting on E) as B minor: the tune was harmonized in B minor and a continuation held to end on
    B. The key of one line is now read where the line rests (``music.keys.tune_key``), as
    ``analyze`` reads it; several voices keep the profile."""

    from tunesmith.music.io import load_score, save_midi, save_musicxml
    from tunesmith.music.keys import estimate_key, score_key, score_mode
    from tunesmith.music.score import Meta, Score

    abc = tmp_path / "cooley.abc"
    abc.write_text("X:1\nT:Cooley's A\nM:4/4\nL:1/8\nK:Edor\nEBBA B2 EB|B2 AB dBAG|FDAD BDAD|FDAD dAFD|"
                   "EBBA B2 EB|B2 AB defg|afec dBAF|DEFD E4|\n")
    tune = load_score(abc)
    keyless = Score(tune.music.copy(), Meta(title="Cooley's A"))
    keyless.music.key_signatures.clear()  # as a recording's transcription, or a DAW's MIDI export
    a = keyless.music.tracks[0].notes.numpy()
    assert estimate_key(a["pitch"], a["duration"])[:2] == (11, "minor")  # Krumhansl-Schmuckler: B minor
    assert score_key(keyless) == (4, "minor")
    mid = save_midi(keyless, tmp_path / "cooley.mid")
    assert load_score(mid).meta.key is None and score_key(load_score(mid)) == (4, "minor")
    assert main(["harmonize", str(mid), "--iterations", "8", "--formats", "mid", "--out", str(tmp_path / "o")]) == 0
    assert "[key E minor," in capsys.readouterr().out
    # a tune stated in a church mode has the mode's signature in its sheet music (K:Edor was written
    # with E minor's one sharp and a sharp before every C) ...
    xml = save_musicxml(tune, tmp_path / "cooley.musicxml").read_text()
    assert "<fifths>2</fifths>" in xml and "<mode>dorian</mode>" in xml and "<accidental>" not in xml
    assert load_score(tmp_path / "cooley.musicxml").meta.key == "E dorian"
    # ... as has a keyless one whose notes name the mode
    mix = tmp_path / "mix.abc"
    mix.write_text("X:1\nT:Mix\nM:6/8\nL:1/8\nK:Amix\n|:A3 AGE|A3 ABc|d3 cBA|G3 GAB|A3 AGE|A3 ABc|dcB GAB|A3 A2:|\n")
    assert load_score(abc).meta.key == "E dorian" and load_score(mix).meta.key == "A mixolydian"  # K:Edor, K:Amix
    mix = Score(load_score(mix).music.copy(), Meta())
    assert score_mode(mix) == (9, "mixolydian", "major")
    mix.music.key_signatures.clear()
    capsys.readouterr()
    assert main(["info", str(save_midi(mix, tmp_path / "mix.mid"))]) == 0
    assert "A mixolydian (estimated)" in capsys.readouterr().out
    xml = save_musicxml(mix, tmp_path / "mix.musicxml").read_text()
    assert "<fifths>2</fifths>" in xml and "<mode>mixolydian</mode>" in xml and "<accidental>" not in xml
    # several voices are read by the profile as before
    chords = Score(tune.music.copy(), Meta())
    bass = chords.music.tracks[0].copy()
    for n in bass.notes:
        n.pitch -= 12
    chords.music.tracks.append(bass)
    assert score_key(chords) == (11, "minor")


def test_a_key_signature_without_a_mode_states_no_key(tmp_path, capsys):
    """MusicXML's <key> may give the signature alone (<fifths>, no <mode>, as MuseScore writes it):
    one flat is F major, D minor or G dorian, and the reader took it for F major, so a D-minor tune
    was harmonized in F major. It now states no key and the notes decide."""
    from tunesmith.music.io import load_score
    from tunesmith.music.keys import score_key

    steps = [("D", 2), ("E", 1), ("F", 1), ("G", 2), ("A", 2), ("B", 1), ("A", 1), ("G", 1), ("F", 1), ("E", 2),
             ("D", 2), ("A", 2), ("F", 1), ("E", 1), ("D", 4)]
    bars, bar, held = [], [], 0
    for step, d in steps:
        alter = "<alter>-1</alter>" if step == "B" else ""
        bar.append(f"<note><pitch><step>{step}</step>{alter}<octave>4</octave></pitch><duration>{d}</duration></note>")
        held += d
        if held == 4:
            bars.append("".join(bar))
            bar, held = [], 0
    attrs = "<attributes><divisions>1</divisions><key><fifths>-1</fifths></key><time><beats>4</beats>" \
            "<beat-type>4</beat-type></time></attributes>"
    measures = "".join(f'<measure number="{i + 1}">{attrs if i == 0 else ""}{b}</measure>' for i, b in enumerate(bars))
    f = tmp_path / "dminor.musicxml"
    f.write_text('<?xml version="1.0"?><score-partwise version="3.1"><part-list><score-part id="P1"><part-name>M'
                 f'</part-name></score-part></part-list><part id="P1">{measures}</part></score-partwise>')
    s = load_score(f)
    assert s.meta.key is None and len(s.music.key_signatures) == 1 and s.n_notes == len(steps)
    assert score_key(s) == (2, "minor")
    assert main(["harmonize", str(f), "--iterations", "8", "--formats", "mid", "--out", str(tmp_path / "o")]) == 0
    assert "[key D minor," in capsys.readouterr().out
    # with its mode the signature states the key, as before
    f.write_text(f.read_text().replace("<fifths>-1</fifths>", "<fifths>-1</fifths><mode>major</mode>"))
    assert load_score(f).meta.key == "F major"
