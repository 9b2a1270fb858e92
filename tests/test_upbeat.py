"""A MIDI file's upbeat: MIDI has none, so a piece that begins with one is written with its first
note at time 0 and its bar lines off the music's; the reader places it back."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import symusic

from tunesmith.cli import main
from tunesmith.music.corpora import corpus_files
from tunesmith.music.io import load_score, save_midi
from tunesmith.music.meter import estimate_pickup, estimated_upbeat, from_first_note
from tunesmith.music.score import Meta, Score


def _chorale(name: str):
    return load_score(next(f for f in corpus_files("bach-chorales") if f.name.startswith(name + ".")))


def _as_midi_writes_it(score, path, *, jitter: float = 0.0, seed: int = 0):
    """The score as a MIDI file holds it: its first note at time 0 (an upbeat's missing beats
    dropped), optionally with its onsets played a little off the grid (``jitter`` quarters)."""
    m = score.music
    moved = from_first_note(m)
    if not len(moved.tempos):
        moved.tempos.append(symusic.Tempo(0, qpm=90.0))
    if jitter:
        rng = np.random.default_rng(seed)
        for t in moved.tracks:
            for n in t.notes:
                n.time = max(0, int(n.time + rng.normal(0, jitter) * m.tpq)) if n.time else 0
    path.write_bytes(bytes(moved.dumps_midi()))
    return path


def _first_onset_q(score) -> float:
    return min(int(t.notes[0].time) for t in score.music.tracks if len(t.notes)) / score.music.tpq


def test_a_chorale_written_with_its_upbeat_at_time_0_gets_its_bars_back(tmp_path, capsys):
    s = _chorale("bwv269")  # 3/4, a one-quarter upbeat (padded in the corpus: first note on beat 3)
    assert _first_onset_q(s) == pytest.approx(2.0)
    mid = _as_midi_writes_it(s, tmp_path / "bwv269.mid")
    back = load_score(mid)
    assert estimated_upbeat(back) == pytest.approx(1.0)
    assert _first_onset_q(back) == pytest.approx(2.0)  # the upbeat is beat 3 of bar 1 again
    assert back.music.time_signatures[0].time == 0 and back.music.tempos[0].time == 0  # the meta events stay
    ref = [(n.time, n.pitch) for n in s.music.tracks[0].notes]
    assert [(n.time, n.pitch) for n in back.music.tracks[0].notes] == ref
    assert main(["info", str(mid)]) == 0
    assert "upbeat           1 quarter note(s), estimated" in capsys.readouterr().out
    assert main(["analyze", str(mid), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["upbeat_estimated_quarters"] == 1.0 and d["meter"] == "3/4"


def test_files_whose_bars_are_right_are_left_alone(tmp_path):
    # a chorale that begins on the downbeat, written from time 0
    s = _chorale("bwv26.6")
    assert _first_onset_q(s) == 0.0
    back = load_score(_as_midi_writes_it(s, tmp_path / "downbeat.mid"))
    assert estimated_upbeat(back) is None and _first_onset_q(back) == 0.0
    # an upbeat padded with rest, as tunesmith and notation programs write it
    padded = load_score(save_midi(_chorale("bwv269"), tmp_path / "padded.mid"))
    assert estimated_upbeat(padded) is None and _first_onset_q(padded) == pytest.approx(2.0)
    # a file tunesmith wrote says its bars are its score's: even a first note at 0 stays on a downbeat
    raw = symusic.Score(str(_as_midi_writes_it(_chorale("bwv269"), tmp_path / "unpadded.mid")))
    ours = load_score(save_midi(Score(raw, Meta(title="ours")), tmp_path / "ours.mid"))
    assert estimated_upbeat(ours) is None and _first_onset_q(ours) == 0.0
    # a performance recorded as MIDI (onsets off the grid): its onsets say little of where bars are
    played = load_score(_as_midi_writes_it(_chorale("bwv269"), tmp_path / "played.mid", jitter=0.05))
    assert estimated_upbeat(played) is None and _first_onset_q(played) == 0.0
    # a meter no template describes
    five = _chorale("bwv269").music.copy()
    five.time_signatures.clear()
    five.time_signatures.append(symusic.TimeSignature(0, 5, 4))
    s5 = _chorale("bwv269")
    s5.music = five
    assert estimated_upbeat(load_score(_as_midi_writes_it(s5, tmp_path / "five.mid"))) is None


def test_the_upbeat_of_a_tune_from_its_notes():
    # a 2/4 tune: an eighth-note upbeat into long notes on the downbeats, ending on one
    bars = [[(0, 1, 67), (1, 0.5, 69), (1.5, 0.5, 71)], [(0, 1.5, 72), (1.5, 0.5, 71)], [(0, 1, 69), (1, 1, 67)],
            [(0, 0.5, 65), (0.5, 0.5, 64), (1, 1, 62)], [(0, 1.5, 64), (1.5, 0.5, 62)], [(0, 2, 60)]] * 2
    notes = [(0.0, 0.5, 62)] + [(0.5 + 2 * b + a, d, p) for b, bar in enumerate(bars) for a, d, p in bar]
    x = np.array(notes, float)
    assert estimate_pickup(x[:, 0], x[:, 1], x[:, 2], 2, 4) == pytest.approx(0.5)
    # the same tune from its first downbeat: no upbeat
    y = x[1:] - [0.5, 0, 0]
    assert estimate_pickup(y[:, 0], y[:, 1], y[:, 2], 2, 4) == 0.0


@pytest.fixture(scope="module")
def chorale_home(tmp_path_factory):
    """A tunesmith home whose search index holds five chorales."""
    from tunesmith.mir.search import build_part

    folder = tmp_path_factory.mktemp("chorales")
    for name in ("bwv269", "bwv26.6", "bwv267", "bwv281", "bwv344"):
        f = next(f for f in corpus_files("bach-chorales") if f.name.startswith(name + "."))
        shutil.copy(f, folder / f.name)
    home = tmp_path_factory.mktemp("home")
    build_part(str(folder), progress=False, home=home / "index")
    return home


def test_a_bar_range_of_such_a_file_finds_the_piece_at_those_bars(tmp_path, chorale_home, monkeypatch, capsys):
    from tunesmith.mir.search import SearchIndex, query_melody

    mid = _as_midi_writes_it(_chorale("bwv269"), tmp_path / "bwv269.mid")
    q = query_melody(mid, bars=(3, 6))
    assert q.upbeat == 1.0
    hits = SearchIndex.load(chorale_home / "index").search(q, top=3)
    assert hits[0].name.endswith("bwv269")
    # the bars as the file's reader now counts them are the indexed piece's: every note in place
    assert hits[0].score == pytest.approx(1.0) and hits[0].bars == (3, 6)
    # the command says the upbeat was read, so that the bar numbers make sense
    monkeypatch.setenv("TUNESMITH_HOME", str(chorale_home))
    assert main(["search", str(mid), "--bars", "3-6", "--top", "1"]) == 0
    out = capsys.readouterr()
    assert "bwv269  (bars 3–6)" in out.out and "an upbeat of 1 quarter note(s) was read" in out.err



def test_its_sound_begins_where_the_file_does(tmp_path):
    """`render` (and `play`) sound a user's file as the file has it: the rest the reading puts
    before its upbeat is no silence of the file's. A piece written into the studio or by
    `generate` renders as its score stands, the same as its MIDI."""
    import soundfile as sf

    from tunesmith.music.render import render_wav

    mid = _as_midi_writes_it(_chorale("bwv269"), tmp_path / "bwv269.mid")
    s = load_score(mid)
    assert estimated_upbeat(s) == 1.0 and s.music.tempos[0].qpm == pytest.approx(90.0)
    assert main(["render", str(mid), "--out", str(tmp_path / "file.wav"), "--sample-rate", "16000"]) == 0
    audio, sr = sf.read(tmp_path / "file.wav")
    # the first note sounds at once, not after the two beats (1.33 s at 90 qpm) the reading put before it
    assert np.flatnonzero(np.abs(audio) > 0.01)[0] / sr < 0.1
    audio, sr = sf.read(render_wav(s, tmp_path / "score.wav", sample_rate=16000))
    assert 1.2 < np.flatnonzero(np.abs(audio) > 0.01)[0] / sr < 1.45


def test_an_index_an_older_version_built_asks_to_be_rebuilt(chorale_home, tmp_path, monkeypatch, capsys):
    import shutil as sh

    home = tmp_path / "home"
    sh.copytree(chorale_home, home)
    meta = next((home / "index").glob("part-*.json"))
    d = json.loads(meta.read_text())
    d["format_version"] = 2  # before MIDI files' upbeats were read
    meta.write_text(json.dumps(d))
    monkeypatch.setenv("TUNESMITH_HOME", str(home))
    assert main(["search", "K:G\nGABc dedB"]) == 2
    err = capsys.readouterr().err
    assert "built by an older version of tunesmith" in err and "run 'tunesmith index' again" in err
    # indexing the folder again rebuilds its part, and the search works
    assert main(["index", d["name"], "--quiet"]) == 0
    capsys.readouterr()
    assert main(["search", "K:G\nGABc dedB", "--top", "1"]) == 0
    assert "1." in capsys.readouterr().out


def test_an_upbeat_written_as_a_short_first_bar(tmp_path, capsys):
    """Notation programs export a pickup as a short first bar: a 1/4 signature for the upbeat,
    the piece's 3/4 after it. Read as one bar of 3/4 holding the upbeat at its end, not as 1/4."""
    s = _chorale("bwv269")
    m = from_first_note(s.music)
    m.time_signatures.clear()
    m.time_signatures.append(symusic.TimeSignature(0, 1, 4))
    m.time_signatures.append(symusic.TimeSignature(m.tpq, 3, 4))
    mid = tmp_path / "short.mid"
    mid.write_bytes(bytes(m.dumps_midi()))
    back = load_score(mid)
    assert back.time_signature() == "3/4" and "upbeat:written:1" in back.meta.tags
    assert [(ts.time, ts.numerator) for ts in back.music.time_signatures][0] == (0, 3)
    assert [(n.time, n.pitch) for n in back.music.tracks[0].notes] == [(n.time, n.pitch) for n in s.music.tracks[0].notes]
    assert main(["analyze", str(mid), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bars"] == 22  # as the chorale's own score
    assert main(["render", str(mid), "--out", str(tmp_path / "short.wav"), "--sample-rate", "16000"]) == 0
    import soundfile as sf

    audio, sr = sf.read(tmp_path / "short.wav")
    assert np.flatnonzero(np.abs(audio) > 0.01)[0] / sr < 0.1  # sounds from the file's start
    # a meter that comes back later is a change of meter, not an upbeat: left as written
    m.time_signatures.append(symusic.TimeSignature(m.tpq * 10, 1, 4))
    mid.write_bytes(bytes(m.dumps_midi()))
    again = load_score(mid)
    assert not any(t.startswith("upbeat:") for t in again.meta.tags) and again.time_signature() == "1/4"
