"""Per-piece metrics against values worked out by hand, and against MusPy itself."""

import math

import numpy as np
import pytest
from tests.conftest import make_score

from tunesmith.evaluate import metrics as M


@pytest.fixture
def melody():
    """One voice, tpq 4 (a tick is a sixteenth), 4/4, two bars:
    C4 q, E4 q, G4 h | D4 e, D4 e, (rest 2 beats), C5 q."""
    notes = [(0, 4, 60), (4, 4, 64), (8, 8, 67), (16, 2, 62), (18, 2, 62), (28, 4, 72)]
    return make_score([notes], tpq=4)


def test_mgeval_features_exact(melody):
    n = M.extract_notes(melody)
    assert M.pitch_count(n) == 5
    assert M.note_count(n) == 6
    assert np.allclose(M.pitch_class_histogram(n), np.bincount([0, 0, 2, 2, 4, 7], minlength=12) / 6)
    assert M.pitch_range(n) == 12
    assert M.average_pitch_interval(n) == pytest.approx((4 + 3 + 5 + 0 + 10) / 5)
    assert M.average_ioi(n) == pytest.approx((4 + 4 + 8 + 2 + 10) / 5 / 4)  # in quarters
    # lengths 1, 1, 2, 1/2, 1/2, 1 quarters → classes quarter ×3, half ×1, eighth ×2
    want = np.zeros(12)
    want[[2, 1, 3]] = [3, 1, 2]
    assert np.allclose(M.note_length_histogram(n), want / 6)
    nltm = np.zeros((12, 12))
    for a, b in [(2, 2), (2, 1), (1, 3), (3, 3), (3, 2)]:
        nltm[a, b] += 1
    assert np.allclose(M.note_length_transition_matrix(n), nltm / 5)
    # pitch-class transitions: a note starting where the previous ends (the D at beat 5
    # ends before a rest, so it has no successor)
    pctm = np.zeros((12, 12))
    for a, b in [(0, 4), (4, 7), (7, 2), (2, 2)]:
        pctm[a, b] += 1
    assert np.allclose(M.pitch_class_transition_matrix(n), pctm / 4)
    assert M.bar_pitch_count(n).tolist() == [3, 2]
    assert M.bar_note_count(n).tolist() == [3, 3]
    bar = M.bar_pitch_class_histogram(n)
    assert np.allclose(bar[0], np.bincount([0, 4, 7], minlength=12) / 3)
    assert np.allclose(bar[1], np.bincount([2, 2, 0], minlength=12) / 3)


def test_muspy_features_exact(melody):
    n = M.extract_notes(melody)
    p = np.array([1, 1, 1, 2, 1]) / 6
    assert M.pitch_entropy(n) == pytest.approx(-(p * np.log2(p)).sum())
    q = np.array([2, 2, 1, 1]) / 6
    assert M.pitch_class_entropy(n) == pytest.approx(-(q * np.log2(q)).sum())
    assert M.scale_consistency(n) == 1.0
    assert M.pitch_in_scale_rate(n, 0, "major") == 1.0
    assert M.pitch_in_scale_rate(n, 1, "major") == pytest.approx(2 / 6)  # only the Cs (B#) in C# major
    # 9 beats (0..32 // 4); beat 6 (ticks 24–27) is the only one no note touches
    assert M.empty_beat_rate(n) == pytest.approx(1 / 9)
    assert M.empty_measure_rate(n) == 0.0
    assert M.polyphony(n) == 1.0
    assert M.polyphony_rate(n) == 0.0
    # measure onset patterns {0,4,8}, {0,2,12}, {} → Hamming 4 + 3 over 2 × 16 positions
    assert M.groove_consistency(n) == pytest.approx(1 - 7 / 32)
    assert M.n_pitches_used(n) == 5
    assert M.n_pitch_classes_used(n) == 4
    assert math.isnan(M.tonal_distance(n))  # one voice


def test_polyphony_and_tonal_distance(chorale_like):
    assert M.polyphony(chorale_like) == 4.0
    assert M.polyphony_rate(chorale_like) == 1.0
    same = make_score([[(0, 480, 60)], [(0, 480, 48)]])
    assert M.tonal_distance(same) == pytest.approx(0.0)
    fifth = make_score([[(0, 480, 60)], [(0, 480, 55)]])
    c = np.array([0, 1, 0, 1, 0, 0.5])  # tonal centroid of C (Harte et al.)
    g = np.array([0.5, np.sqrt(3) / 2, 1, 0, np.sqrt(3) / 4, -0.25])  # of G
    assert M.tonal_distance(fifth) == pytest.approx(np.linalg.norm(c - g))


def test_undefined_is_nan():
    empty = make_score([[]])
    one = make_score([[(0, 480, 60)]])
    for f in (M.pitch_count, M.pitch_range, M.pitch_entropy, M.scale_consistency, M.polyphony,
              M.empty_beat_rate):
        assert math.isnan(f(empty)), f.__name__
    assert math.isnan(M.average_pitch_interval(one))
    assert math.isnan(M.average_ioi(one))
    assert np.isnan(M.pitch_class_histogram(empty)).all()
    assert M.note_count(empty) == 0


def test_drums_are_not_pitches():
    s = make_score([[(0, 480, 60)], [(0, 480, 36), (480, 480, 38)]], drums=(1,))
    assert M.pitch_count(s) == 1
    assert M.n_pitches_used(s) == 1


def test_agrees_with_muspy_on_real_files(tmp_path, melody, chorale_like):
    muspy = pytest.importorskip("muspy", reason="MusPy is not installed")
    from tunesmith.music.corpora import corpus_files
    from tunesmith.music.io import load_score, read_pieces, save_midi

    scores = [melody, chorale_like]
    scores += [load_score(f) for f in corpus_files("bach-chorales")[:6]]
    scores += read_pieces(corpus_files("oneills-1850")[0]).scores[:6]
    checked = 0
    for i, sc in enumerate(scores):
        path = save_midi(sc, tmp_path / f"{i}.mid")
        ours = M.notes_of(load_score(path))
        mu = muspy.read_midi(path)
        bar = ours.bar_ticks
        pairs = {
            M.pitch_entropy: muspy.pitch_entropy(mu), M.pitch_class_entropy: muspy.pitch_class_entropy(mu),
            M.scale_consistency: muspy.scale_consistency(mu), M.empty_beat_rate: muspy.empty_beat_rate(mu),
            M.empty_measure_rate: muspy.empty_measure_rate(mu, bar), M.polyphony: muspy.polyphony(mu),
            M.polyphony_rate: muspy.polyphony_rate(mu), M.groove_consistency: muspy.groove_consistency(mu, bar),
            M.n_pitches_used: muspy.n_pitches_used(mu), M.n_pitch_classes_used: muspy.n_pitch_classes_used(mu),
        }
        for f, want in pairs.items():
            assert f(ours) == pytest.approx(want, nan_ok=True), (i, f.__name__)
            checked += 1
        assert M.pitch_in_scale_rate(ours, 2, "minor") == pytest.approx(muspy.pitch_in_scale_rate(mu, 2, "minor"))
    assert checked == 10 * len(scores)


def test_all_metrics_has_every_metric(chorale_like):
    out = M.all_metrics(chorale_like)
    assert set(out) == set(M.SCALAR_METRICS) | set(M.VECTOR_METRICS)
    assert out["pitch_class_transition_matrix"].shape == (12, 12)
