"""Exact values for the sampling controls, the REMI grammar constraint and key parsing."""

import math

import numpy as np
import pytest
import torch

from tunesmith.errors import OptionError
from tunesmith.generate.constraints import RemiConstraint
from tunesmith.generate.sampler import SamplingControls, filter_logits
from tunesmith.music.keys import key_name, parse_key, scale_pitch_classes
from tunesmith.represent.tokens import EventTokenizer

LOGITS = torch.log(torch.tensor([0.4, 0.3, 0.2, 0.1]))


def test_filter_logits_without_controls_is_the_softmax():
    p = filter_logits(LOGITS, SamplingControls(1.0, 0, 1.0), None)
    assert torch.allclose(p, torch.tensor([0.4, 0.3, 0.2, 0.1]), atol=1e-6)


def test_temperature_sharpens_and_flattens_exactly():
    p = filter_logits(LOGITS, SamplingControls(0.5, 0, 1.0), None)
    q = torch.tensor([0.16, 0.09, 0.04, 0.01])
    assert torch.allclose(p, q / q.sum(), atol=1e-6)
    flat = filter_logits(LOGITS, SamplingControls(10.0, 0, 1.0), None)
    q = torch.tensor([0.4, 0.3, 0.2, 0.1]) ** 0.1
    assert torch.allclose(flat, q / q.sum(), atol=1e-6)


def test_top_k_keeps_the_k_likeliest_and_renormalises():
    p = filter_logits(LOGITS, SamplingControls(1.0, 2, 1.0), None)
    assert torch.allclose(p, torch.tensor([4 / 7, 3 / 7, 0, 0]), atol=1e-6)
    assert torch.equal(filter_logits(LOGITS, SamplingControls(1.0, 10, 1.0), None) > 0, torch.ones(4, dtype=torch.bool))


@pytest.mark.parametrize("top_p,kept", [(0.4, [0.4]), (0.5, [0.4, 0.3]), (0.7, [0.4, 0.3]),
                                        (0.71, [0.4, 0.3, 0.2]), (0.95, [0.4, 0.3, 0.2, 0.1])])
def test_top_p_keeps_the_smallest_prefix_reaching_the_mass(top_p, kept):
    p = filter_logits(LOGITS, SamplingControls(1.0, 0, top_p), None)
    want = torch.zeros(4)
    want[: len(kept)] = torch.tensor(kept) / sum(kept)
    assert torch.allclose(p, want, atol=1e-6)


def test_grammar_mask_comes_before_top_k_and_top_p():
    allowed = torch.tensor([False, True, True, True])
    p = filter_logits(LOGITS, SamplingControls(1.0, 1, 1.0), allowed)
    assert torch.allclose(p, torch.tensor([0.0, 1.0, 0.0, 0.0]))
    p = filter_logits(LOGITS, SamplingControls(1.0, 0, 0.6), allowed)  # 0.5, 1/3, 1/6 → keep 0.5 + 1/3
    assert torch.allclose(p, torch.tensor([0.0, 0.6, 0.4, 0.0]), atol=1e-6)


def test_draws_follow_the_filtered_distribution_and_never_a_dropped_token():
    from tunesmith.generate.sampler import draw

    g = torch.Generator().manual_seed(0)
    x = LOGITS.numpy()
    n = 20000
    counts = np.bincount([draw(x, SamplingControls(1.0, 0, 1.0), g) for _ in range(n)], minlength=4) / n
    assert np.abs(counts - [0.4, 0.3, 0.2, 0.1]).max() < 0.015
    kept = {draw(x, SamplingControls(1.0, 0, 0.7), g) for _ in range(2000)}  # 0.4 + 0.3 reach 0.7
    assert kept == {0, 1}
    assert {draw(x, SamplingControls(1.0, 1, 1.0), g) for _ in range(200)} == {0}
    a = [draw(x, SamplingControls(), torch.Generator().manual_seed(5)) for _ in range(3)]
    assert a == [draw(x, SamplingControls(), torch.Generator().manual_seed(5)) for _ in range(3)]  # seeded


@pytest.mark.parametrize("controls,flag", [((0.0, 0, 1.0), "--temperature"), ((11.0, 0, 1.0), "--temperature"),
                                           ((1.0, -1, 1.0), "--top-k"), ((1.0, 0, 0.0), "--top-p"),
                                           ((1.0, 0, 1.5), "--top-p")])
def test_sampling_controls_out_of_range(controls, flag):
    with pytest.raises(OptionError, match=f"^{flag}:"):
        SamplingControls(*controls).check()


@pytest.mark.parametrize("text,want", [("G", (7, "major")), ("G major", (7, "major")), ("g", (7, "minor")),
                                       ("F# minor", (6, "minor")), ("f#m", (6, "minor")), ("Am", (9, "minor")),
                                       ("Bbm", (10, "minor")), ("Eb maj", (3, "major")), ("Cb", (11, "major")),
                                       ("B♭ minor", (10, "minor")), ("E#", (5, "major")), ("c min", (0, "minor"))])
def test_parse_key(text, want):
    assert parse_key(text) == want


@pytest.mark.parametrize("text", ["H major", "G dorian", "", "G##", "major"])
def test_parse_key_refuses_what_is_not_a_key(text):
    with pytest.raises(OptionError, match="is not a key"):
        parse_key(text)


def test_key_names_and_scales():
    assert key_name(*parse_key("f# minor")) == "F# minor"
    # the spelling with fewer accidentals: five flats, not seven sharps; five sharps, not seven flats
    assert key_name(*parse_key("C# major")) == "Db major" and key_name(*parse_key("Ab minor")) == "G# minor"
    assert key_name(1, "minor") == "C# minor" and key_name(8, "major") == "Ab major"
    assert sorted(scale_pitch_classes(7, "major")) == [0, 2, 4, 6, 7, 9, 11]
    assert sorted(scale_pitch_classes(9, "minor")) == [0, 2, 4, 5, 7, 8, 9, 11] or \
        sorted(scale_pitch_classes(9, "minor")) == sorted({(9 + i) % 12 for i in (0, 2, 3, 5, 7, 8, 9, 10, 11)})


# ---- the REMI grammar -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def tok():
    return EventTokenizer()


def _names(tok, mask):
    return {tok.names[i] for i in np.flatnonzero(mask)}


def test_grammar_walks_bar_timesig_position_program_pitch_duration(tok):
    con = RemiConstraint(tok, bars=1, time_signature="3/4", scale_pcs={0, 2, 4, 5, 7, 9, 11}, programs={0})
    assert _names(tok, con.allowed()) == {"Bar_None"}
    assert con.feed(tok.bar_id)
    assert _names(tok, con.allowed()) == {"TimeSig_3/4"}  # the asked meter only
    con.feed(tok.tok.vocab["TimeSig_3/4"])
    allowed = _names(tok, con.allowed())
    positions = {n for n in allowed if n.startswith("Position_")}
    assert "Bar_None" in allowed and positions == {f"Position_{i}" for i in range(3 * con.res)}  # 3 beats only
    con.feed(tok.tok.vocab["Position_0"])  # (a later first note is an upbeat: see the next test)
    later = {n for n in _names(tok, con.allowed()) if n.startswith("Position_")}
    assert later == set()  # straight after a Position comes a Tempo or a Program
    assert {n for n in _names(tok, con.allowed()) if n.startswith("Program_")} == {"Program_0"}
    con.feed(tok.tok.vocab["Program_0"])
    pitches = {int(n.split("_")[1]) % 12 for n in _names(tok, con.allowed())}
    assert pitches == {0, 2, 4, 5, 7, 9, 11}  # only the key's scale
    pitch = next(i for i, n in enumerate(tok.names) if n == "Pitch_60")
    con.feed(pitch)
    assert all(n.startswith("Duration_") for n in _names(tok, con.allowed()))
    dur = int(np.flatnonzero(con.allowed())[0])
    con.feed(dur)
    after = _names(tok, con.allowed())
    assert {n for n in after if n.startswith("Position_")} == {f"Position_{i}" for i in range(1, 3 * con.res)}
    assert tok.names[tok.eos_id] in after  # one bar asked, one bar opened: the piece may end
    assert not con.feed(tok.bar_id)  # a second bar is refused: exactly `bars` bars


def test_grammar_admits_an_upbeat_and_does_not_count_its_bar(tok):
    """Most folk tunes begin with an upbeat, written Position_0 Tempo Position_N …: after the
    tempo a later position is allowed, and the pickup bar is not one of the bars asked for."""
    con = RemiConstraint(tok, bars=1, time_signature="3/4")
    for name in ("Bar_None", "TimeSig_3/4", "Position_0"):
        assert con.feed(tok.tok.vocab[name])
    tempo = next(i for i, n in enumerate(tok.names) if n.startswith("Tempo_"))
    con.feed(tempo)
    later = {n for n in _names(tok, con.allowed()) if n.startswith("Position_")}
    assert later == {f"Position_{i}" for i in range(1, 3 * con.res)}
    pitch = next(i for i, n in enumerate(tok.names) if n == "Pitch_67")
    for t in (tok.tok.vocab[f"Position_{2 * con.res}"], tok.tok.vocab["Program_0"], pitch):
        assert con.feed(t)
    assert con.pickup and con.bars == 2
    con.feed(int(np.flatnonzero(con.allowed())[0]))  # its duration
    assert tok.names[tok.eos_id] not in _names(tok, con.allowed())  # the asked bar has not begun
    assert con.feed(tok.bar_id)  # the first full bar
    # a tune that begins on the downbeat has no pickup
    con = RemiConstraint(tok, bars=1, time_signature="3/4")
    for name in ("Bar_None", "TimeSig_3/4", "Position_0", "Program_0"):
        assert con.feed(tok.tok.vocab[name])
    con.feed(pitch)
    assert not con.pickup and con.bars == 1


def test_grammar_never_doubles_a_note_on_one_instrument_and_ends_on_the_added_tonic(tok):
    """A pitch already struck by this instrument at this onset is not offered again (another
    instrument may double it). Under the ending rule, a tune the model would end off the tonic
    gets one more note, on the tonic, and ends there: nothing comes after it."""
    vocab = tok.tok.vocab
    con = RemiConstraint(tok, bars=1, time_signature="2/4", programs={0, 40}, end_on_tonic=True, tonic=7)
    dur = vocab[next(n for n in vocab if n.startswith("Duration_"))]
    for name in ("Bar_None", "TimeSig_2/4", "Position_0", "Program_0", "Pitch_64"):
        assert con.feed(vocab[name])
    con.feed(dur)
    con.feed(vocab["Program_0"])
    assert "Pitch_64" not in _names(tok, con.allowed()) and "Pitch_65" in _names(tok, con.allowed())
    con.feed(vocab["Pitch_60"])
    con.feed(dur)
    con.feed(vocab["Program_40"])
    assert {"Pitch_64", "Pitch_60"} <= _names(tok, con.allowed())  # the violin may double the piano
    con.feed(vocab["Pitch_69"])
    con.feed(dur)
    after = _names(tok, con.allowed())  # the last note (A) is not the tonic (G): the tune may not end yet
    assert tok.names[tok.eos_id] not in after and "Bar_None" not in after
    assert after and all(n.startswith("Position_") for n in after)
    con.feed(vocab[f"Position_{con.res}"])
    con.feed(vocab["Program_0"])
    assert {int(n.split("_")[1]) % 12 for n in _names(tok, con.allowed())} == {7}
    con.feed(vocab["Pitch_67"])
    con.feed(dur)
    assert _names(tok, con.allowed()) == {tok.names[tok.eos_id]}  # the added tonic ends the tune
    assert con.relaxed == 0


def test_grammar_stops_at_the_token_cap_and_counts_the_repair(tok):
    con = RemiConstraint(tok, bars=4, max_tokens=3)
    for t in (tok.bar_id, tok.tok.vocab["TimeSig_4/4"], tok.tok.vocab["Position_0"]):
        assert con.feed(t)
    assert not con.feed(tok.tok.vocab["Program_0"]) and con.forced_stops == 1
    assert math.isfinite(con.n_new)


# --------------------------------------------------------------------------- the originality guard

TUNE = [67, 69, 71, 72, 74, 72, 71, 69, 67, 66, 67]  # a training tune, in eighths (6/8)


def test_copy_guard_masks_the_note_that_would_complete_eight_notes_of_a_training_tune(tok):
    from tunesmith.generate.copyguard import CopyGuard

    guard = CopyGuard.from_melodies([(np.array(TUNE), np.arange(len(TUNE)) * 0.5)])
    con = RemiConstraint(tok, bars=2, time_signature="6/8", programs={0}, guard=guard)
    vocab = tok.tok.vocab
    con.feed(tok.bar_id)
    con.feed(vocab["TimeSig_6/8"])
    res = con.res  # positions per eighth (the 6/8 beat)
    shift = 5  # transposed: the guard hears intervals and rhythm, not pitches
    for k, p in enumerate(TUNE[:7]):
        con.feed(vocab[f"Position_{k * res}"])
        con.feed(vocab["Program_0"])
        con.feed(vocab[f"Pitch_{p + shift}"])
        con.feed(vocab[next(n for n in vocab if n.startswith("Duration_"))])
    con.feed(vocab[f"Position_{7 * res}"])
    con.feed(vocab["Program_0"])
    allowed = _names(tok, con.allowed())
    assert f"Pitch_{TUNE[7] + shift}" not in allowed  # the eighth note of the copy
    assert f"Pitch_{TUNE[7] + shift + 1}" in allowed and f"Pitch_{TUNE[7] + shift - 2}" in allowed
    assert con.copy_masked == 1 and con.copy_relaxed == 0


def test_copy_guard_leaves_other_rhythms_and_short_runs_alone():
    from tunesmith.generate.copyguard import CopyGuard

    on = np.arange(len(TUNE)) * 0.5
    guard = CopyGuard.from_melodies([(np.array(TUNE), on)])
    cand = np.array([TUNE[7], TUNE[7] + 2])
    assert list(guard.copies(TUNE[:7], list(on[:7]), on[7], cand)) == [True, False]
    assert not guard.copies(TUNE[:7], list(on[:7]), on[7] + 0.25, cand).any()  # a dotted rhythm: not the tune
    assert not guard.copies(TUNE[1:7], list(on[1:7]), on[7], cand).any()  # seven notes are not a copy yet
    assert not guard.copies(TUNE[:7], list(on[:7] * 2), on[7] * 2, cand).any()  # twice as slow in the score
