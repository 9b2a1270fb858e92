"""Round trips Score → representation → Score over real pieces and edge cases."""

import numpy as np
import pytest
from tests.conftest import make_score

from tunesmith.music.corpora import corpus_files
from tunesmith.music.io import read_pieces
from tunesmith.represent import frames
from tunesmith.represent.pianoroll import pianoroll_to_score, quantize, score_to_pianoroll
from tunesmith.represent.tokens import EventTokenizer

TOK = EventTokenizer()


def notes_of(music, by_program=True):
    out = set()
    for t in music.tracks:
        for n in t.notes:
            out.add((t.program if by_program else 0, n.time, n.duration, n.pitch))
    return out


def real_pieces(n_per_corpus=None):
    """At least 100 real pieces from every bundled corpus (a fixed, deterministic choice: the
    parsing is most of the test's time)."""
    plan = {"bach-chorales": 25, "essen": 30, "oneills-1850": 20, "ryans-mammoth": 20, "palestrina": 4, "monteverdi": 4}
    pieces = []
    for corpus, n in plan.items():
        files = corpus_files(corpus)
        got = 0
        for f in files[:: max(1, len(files) // n)]:
            for s in read_pieces(f).scores[:3]:
                pieces.append((f"{corpus}:{f.name}", s))
                got += 1
            if got >= n:
                break
    return pieces


@pytest.fixture(scope="module")
def pieces():
    ps = real_pieces()
    assert len(ps) >= 100, len(ps)
    return ps


def assert_remi_round_trip(score):
    ids = TOK.encode(score)
    # Compare on a common grid (decoding and preprocessing pick different ticks per quarter).
    back = TOK.decode(ids).music.resample(480, min_dur=1)
    expect = TOK.quantized(score).resample(480, min_dur=1)
    assert notes_of(back) == notes_of(expect)
    assert [(t.numerator, t.denominator) for t in back.time_signatures][:1] == \
           [(t.numerator, t.denominator) for t in expect.time_signatures][:1]


def test_remi_round_trip_real_pieces(pieces):
    for name, s in pieces:
        try:
            assert_remi_round_trip(s)
        except AssertionError as e:
            raise AssertionError(f"REMI round trip failed on {name}") from e


def test_remi_keeps_voices_apart(chorale_like):
    back = TOK.decode(TOK.encode(chorale_like)).music
    assert len(back.tracks) == 4


EDGE_CASES = {
    "empty-bars": make_score([[(0, 480, 60), (480 * 12, 480, 62)]]),
    "overlapping-notes": make_score([[(0, 960, 60), (240, 960, 64), (480, 480, 67)]]),
    "tied-long-note": make_score([[(0, 480 * 6, 60), (480 * 6, 240, 62)]]),
    "pickup-bar": make_score([[(480 * 3, 480, 67), (480 * 4, 960, 72)]]),
    "meter-change": make_score([[(i * 480, 480, 60 + i) for i in range(10)]], time_sigs=((0, 3, 4), (480 * 3, 4, 4))),
    "tempo-change": make_score([[(i * 480, 480, 60 + i) for i in range(8)]], tempos=((0, 90.0), (480 * 4, 140.0))),
    "multiple-voices": make_score([[(0, 480, 72)], [(0, 480, 64)], [(0, 480, 55)]], programs=[0, 0, 0]),
    "drums": make_score([[(0, 480, 60)], [(0, 120, 36), (240, 120, 38)]], programs=[0, 0], drums=(1,)),
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_remi_round_trip_edge_cases(name):
    assert_remi_round_trip(EDGE_CASES[name])


def test_remi_meter_and_tempo_changes_survive():
    back = TOK.decode(TOK.encode(EDGE_CASES["meter-change"])).music
    assert [(t.numerator, t.denominator) for t in back.time_signatures] == [(3, 4), (4, 4)]
    back = TOK.decode(TOK.encode(EDGE_CASES["tempo-change"])).music
    assert len({round(t.qpm) for t in back.tempos}) == 2


def test_tokenizer_config_round_trip(tmp_path):
    TOK.save(tmp_path / "tokenizer.json")
    again = EventTokenizer.load(tmp_path / "tokenizer.json")
    assert again.tok.vocab == TOK.tok.vocab


def test_frame_tokens_are_a_bijection():
    rng = np.random.default_rng(0)
    for density in (0.0, 0.02, 0.1, 0.5):
        roll = (rng.random((57, 88)) < density).astype(np.uint8)
        toks = frames.roll_to_tokens(roll)
        assert (toks == frames.EOF).sum() == 57
        np.testing.assert_array_equal(frames.tokens_to_roll(toks), roll)


def test_frame_tokens_sorted_and_grammar_allows_them():
    roll = np.zeros((3, 88), np.uint8)
    roll[0, [40, 3, 60]] = 1
    roll[2, [10]] = 1
    toks = frames.roll_to_tokens(roll)
    assert toks.tolist() == [3, 40, 60, frames.EOF, frames.EOF, 10, frames.EOF]
    table = frames.allowed_mask_table()
    prev = frames.BOS
    for t in toks:
        assert table[prev, t]
        prev = t
    assert not table[40, 3]  # descending pitch inside a frame is not allowed


def test_frames_score_round_trip():
    roll = np.zeros((8, 88), np.uint8)
    roll[0:3, 39] = 1  # middle C held three steps
    roll[4, [43, 46]] = 1
    s = frames.roll_to_score(roll, steps_per_quarter=1)
    # A score ends with its last note, so trailing silent frames are not kept.
    np.testing.assert_array_equal(frames.score_to_roll(s, steps_per_quarter=1), roll[:5])


def test_pianoroll_round_trip_real_pieces(pieces):
    for name, s in pieces[::5]:
        pr = score_to_pianoroll(s, steps_per_quarter=4)
        back = pianoroll_to_score(pr, tpq=4)
        q = quantize(s, 4)
        # Equal up to the grid, except notes of one pitch that overlap in one track (a roll cannot hold both).
        exp = notes_of(q)
        got = notes_of(back.music)
        missing = exp - got
        assert len(missing) <= 0.02 * len(exp) + 1, f"{name}: {len(missing)} of {len(exp)} notes lost"


def test_pianoroll_shape_and_repeated_notes():
    s = make_score([[(0, 240, 60), (240, 240, 60)], [(0, 480, 48)]])
    pr = score_to_pianoroll(s, steps_per_quarter=4)
    assert pr.frames.shape == (2, 4, 128)
    back = pianoroll_to_score(pr, tpq=480)
    assert [(n.time, n.duration) for n in back.music.tracks[0].notes] == [(0, 240), (240, 240)]
