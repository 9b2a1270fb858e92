"""The evaluation suite: set comparison, originality, voice leading, listening tests, the CLI."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import make_score

from tunesmith.evaluate import compare, originality, theory
from tunesmith.evaluate.metrics import all_metrics, extract_notes


def _random_piece(rng, *, lo=60, hi=72, n=32, step=480, voices=1):
    tracks = []
    for v in range(voices):
        pitches = rng.integers(lo - 7 * v, hi - 7 * v, n)
        tracks.append([(i * step, step, int(p)) for i, p in enumerate(pitches)])
    return make_score(tracks)


# --------------------------------------------------------------------------- comparing sets


def test_same_distribution_overlaps_and_different_does_not():
    rng = np.random.default_rng(0)
    a = [all_metrics(_random_piece(rng)) for _ in range(40)]
    b = [all_metrics(_random_piece(rng)) for _ in range(40)]
    far = [all_metrics(_random_piece(rng, lo=40, hi=80, step=120)) for _ in range(40)]
    same = compare.mgeval_compare(a, b)
    diff = compare.mgeval_compare(far, b)
    assert same["pitch_range"]["overlap"] > 0.7
    assert diff["pitch_range"]["overlap"] < 0.3
    assert diff["average_ioi"]["kl"] > same["average_ioi"]["kl"]
    assert 0 <= same["pitch_class_histogram"]["overlap"] <= 1


def test_kl_and_overlap_of_known_densities():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, 3000)
    kl, oa, _ = compare.kl_and_overlap(x, rng.normal(0, 1, 3000))
    assert kl < 0.02 and oa > 0.93
    kl, oa, _ = compare.kl_and_overlap(x, rng.normal(2, 1, 3000))
    # two unit Gaussians 2 apart: KL = 2, overlap = 2Φ(−1) ≈ 0.317
    assert kl == pytest.approx(2.0, abs=0.25)
    assert oa == pytest.approx(0.317, abs=0.04)


def test_frechet_and_two_sample_test_tell_sets_apart():
    rng = np.random.default_rng(2)
    ref = rng.normal(0, 1, (150, 6))
    same = rng.normal(0, 1, (150, 6))
    shifted = rng.normal(0.8, 1, (150, 6))
    f_same = compare.frechet(same, ref, n_boot=50)
    f_shift = compare.frechet(shifted, ref, n_boot=50)
    assert f_shift["value"] > 6 * 0.8**2 * 0.7 > f_same["value"]
    assert f_shift["ci95"][0] < f_shift["ci95"][1]
    assert compare.two_sample_test(shifted, ref)["accuracy"] > 0.8
    t = compare.two_sample_test(same, ref)
    assert 0.35 < t["accuracy"] < 0.65 and t["p_value"] > 0.01


def test_embedding_is_key_invariant(chorale_like):
    n1 = extract_notes(chorale_like)
    n2 = extract_notes(chorale_like.transpose(5))
    e1 = compare.embed([all_metrics(n1)], [compare.embedding_extras(n1)])
    e2 = compare.embed([all_metrics(n2)], [compare.embedding_extras(n2)])
    assert e1.shape == (1, 62)
    assert np.allclose(e1, e2, equal_nan=True)


# --------------------------------------------------------------------------- originality


def test_originality_flags_copies_and_passes_new_music():
    rng = np.random.default_rng(3)
    train = [_random_piece(rng, voices=2) for _ in range(20)]
    idx = originality.TrainingIndex([extract_notes(s) for s in train])
    copied = idx.check(extract_notes(train[7].transpose(3)))  # transposition does not hide a copy
    assert copied.flagged and copied.copied_from == 7 and copied.nearest == 7
    assert copied.ngram_share[8] == 1.0 and copied.longest_run_onsets == 32
    assert copied.longest_run_bars == pytest.approx(8.0)
    fresh = idx.check(extract_notes(_random_piece(rng, voices=2)))
    assert not fresh.flagged and fresh.ngram_share[8] == 0.0
    # three bars lifted into a new piece after two bars of its own: flagged. (The run starts at
    # the quote's second onset: the first one's interval is from the new piece's own notes.)
    src = train[4].music.tracks
    quote = [[(n.time - 480 * 4, n.duration, n.pitch) for n in tr.notes if 480 * 12 <= n.time < 480 * 24]
             for tr in src]
    new = make_score([[(i * 480, 480, int(p)) for i, p in enumerate(rng.integers(60 - 7 * v, 72 - 7 * v, 8))] + q
                      for v, q in enumerate(quote)])
    lifted = idx.check(extract_notes(new))
    assert lifted.flagged and lifted.copied_from == 4 and lifted.longest_run_bars == pytest.approx(2.75)


@pytest.fixture(scope="module")
def chorale_dataset(tmp_path_factory):
    """The first 60 Bach chorales of music21's corpus, prepared as a dataset."""
    from tunesmith.music.corpora import corpus_files
    from tunesmith.music.dataset import Dataset, prepare

    src = tmp_path_factory.mktemp("chorales-src")
    for f in corpus_files("bach-chorales")[:60]:
        shutil.copy(f, src / f.name)
    r = prepare(str(src), tmp_path_factory.mktemp("chorales") / "ds", workers=2, progress=False)
    return Dataset(r.path)


def test_originality_on_real_chorales(chorale_dataset):
    train = [extract_notes(s) for _, s in chorale_dataset.scores("train")]
    held = [extract_notes(s) for _, s in chorale_dataset.scores("valid")]
    held += [extract_notes(s) for _, s in chorale_dataset.scores("test")]
    idx = originality.TrainingIndex(train)
    assert all(idx.check(train[i]).flagged for i in range(0, len(train), 5))
    res = [idx.check(n) for n in held]
    assert len(res) >= 5
    assert not any(r.flagged for r in res), [r.to_dict() for r in res if r.flagged]


def test_the_copy_guard_is_built_once_per_dataset_and_kept_on_disk(chorale_dataset):
    from tunesmith.fileio import tunesmith_home, write_npz
    from tunesmith.generate.copyguard import CopyGuard, guard_for_dataset, score_melody

    guard_for_dataset.cache_clear()
    built = guard_for_dataset(str(chorale_dataset.path))
    want = CopyGuard.from_melodies(score_melody(chorale_dataset.load(e)) for e in chorale_dataset.split("train"))
    assert len(built.hashes) > 1000 and np.array_equal(built.hashes, want.hashes)
    (stored,) = (tunesmith_home() / "guard").glob(f"{chorale_dataset.name}-*.npz")
    write_npz(stored, hashes=np.array([7, 3], np.uint64))  # a stand-in: the next process must read the file
    guard_for_dataset.cache_clear()
    assert list(guard_for_dataset(str(chorale_dataset.path)).hashes) == [3, 7]
    stored.write_bytes(b"not an npz")  # unreadable: built again, and rewritten
    guard_for_dataset.cache_clear()
    assert np.array_equal(guard_for_dataset(str(chorale_dataset.path)).hashes, want.hashes)
    with np.load(stored) as z:
        assert np.array_equal(z["hashes"], want.hashes)
    # a model names its training data by which pieces were in which split (wherever the corpus
    # is installed), an older model by its manifest hash; other data: no guard
    name, ds = str(chorale_dataset.path), chorale_dataset
    for manifest, split, ok in ((None, ds.split_hash, True), ("0" * 64, ds.split_hash, True),
                                (ds.manifest_hash, "0" * 64, False), (ds.manifest_hash, None, True),
                                (ds.info["manifest_sha256_as_written"], None, True), ("0" * 64, None, False)):
        guard_for_dataset.cache_clear()
        assert (guard_for_dataset(name, manifest, split) is not None) == ok, (manifest, split)
    guard_for_dataset.cache_clear()



def test_the_first_guard_on_a_machine_shows_its_preparation(tmp_path, monkeypatch, capsys):
    """The first `generate` of a model with a copy guard prepares its training data (about 40 s
    for folk): with progress on, the preparation and the guard's building each show a bar; off
    (and once built), nothing is printed."""
    import shutil

    from tunesmith.generate.copyguard import guard_for_dataset
    from tunesmith.music.corpora import corpus_files

    src = tmp_path / "src"
    src.mkdir()
    for f in corpus_files("bach-chorales")[:5]:
        shutil.copy(f, src / f.name)
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    guard_for_dataset.cache_clear()
    capsys.readouterr()
    assert guard_for_dataset(str(src), progress=True) is not None
    err = capsys.readouterr().err
    assert "prepare src" in err and "copy guard for" in err, err
    guard_for_dataset.cache_clear()
    assert guard_for_dataset(str(src), progress=True) is not None  # prepared and stored: quiet
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home2"))
    guard_for_dataset.cache_clear()
    assert guard_for_dataset(str(src)) is not None  # progress off: quiet even on first use
    assert capsys.readouterr().err == ""
    guard_for_dataset.cache_clear()


# --------------------------------------------------------------------------- voice leading


def _satb(s, a, t, b):
    return make_score([[(i * 480, 480, p) for i, p in enumerate(v)] for v in (s, a, t, b)])


def test_parallel_fifths():
    r = theory.voice_leading(extract_notes(_satb([72, 74], [64, 64], [60, 59], [53, 55])))
    assert r["parallel_fifths"] == 50.0  # one in two beats = 50 per 100 beats
    assert r["parallel_octaves"] == r["hidden_fifths"] == r["hidden_octaves"] == 0
    assert r["voice_crossing"] == r["spacing"] == r["out_of_range"] == 0


def test_hidden_octave_crossing_spacing_range():
    r = theory.voice_leading(extract_notes(_satb([69, 72], [65, 67], [60, 64], [53, 60])))
    assert r["hidden_octaves"] == 50.0 and r["parallel_octaves"] == 0 and r["parallel_fifths"] == 0
    # the alto (by mean pitch) above the soprano in the second slice; soprano–alto 17 semitones
    # apart in the first; a bass note below E2
    r = theory.voice_leading(extract_notes(_satb([79, 66], [62, 69], [55, 58], [38, 43])))
    assert r["voice_crossing"] == 50.0
    assert r["spacing"] == 50.0
    assert r["out_of_range"] == 50.0
    assert all(math.isnan(v) for v in theory.voice_leading(extract_notes(make_score([[(0, 480, 60)]]))).values())


def test_chorale_like_is_clean(chorale_like):
    r = theory.voice_leading(extract_notes(chorale_like))
    assert r["voice_crossing"] == 0 and r["spacing"] == 0


# --------------------------------------------------------------------------- listening tests


def test_mos_and_bradley_terry(tmp_path):
    from tunesmith.evaluate.listening import analyse

    rows = ["rater,item,system,rating"]
    for r in range(3):
        for i, (x, y) in enumerate([(5, 2), (4, 3), (5, 3)]):
            rows += [f"r{r},p{i},bach,{x}", f"r{r},p{i},lstm,{y}"]
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    rng = np.random.default_rng(0)
    strength = {"bach": 1.5, "lstm": 0.0, "gan": -1.0}
    pref = ["rater,item,system_a,system_b,winner"]
    for r in range(10):
        for i in range(20):
            for a, b in [("bach", "lstm"), ("lstm", "gan"), ("bach", "gan")]:
                p = 1 / (1 + math.exp(-(strength[a] - strength[b])))
                pref.append(f"r{r},p{i},{a},{b},{'a' if rng.random() < p else b}")
    pref.append("r0,p0,bach,lstm,tie")
    (tmp_path / "p.csv").write_text("\n".join(pref) + "\n")
    res = analyse([tmp_path / "r.csv", tmp_path / "p.csv"])
    m = res["ratings"][0]["systems"]
    assert m["bach"]["mos"] == pytest.approx(14 / 3) and m["lstm"]["mos"] == pytest.approx(8 / 3)
    sd = np.std([5, 4, 5] * 3, ddof=1)
    from scipy import stats

    assert m["bach"]["ci95"][1] - m["bach"]["mos"] == pytest.approx(stats.t.ppf(0.975, 8) * sd / 3)
    assert res["ratings"][0]["pairs"][0]["p_value"] < 0.001
    bt = res["preferences"][0]
    s = {k: v["score"] for k, v in bt["systems"].items()}
    assert s["bach"] == 0.0 and s["gan"] < s["lstm"] < 0  # bach is the reference (alphabetical first)
    assert s["lstm"] == pytest.approx(-1.5, abs=0.4) and s["gan"] == pytest.approx(-2.5, abs=0.5)
    assert all(p["p_value"] < 0.01 for p in bt["pairs"])
    assert -1 <= bt["agreement"]["krippendorff_alpha"] <= 1


def test_krippendorff_alpha_is_one_for_perfect_agreement(tmp_path):
    from tunesmith.evaluate.listening import analyse

    rows = ["rater,item,system,rating"] + [f"r{r},p{i},s{j},{(i + j) % 5 + 1}" for r in range(3)
                                            for i in range(4) for j in range(2)]
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    assert analyse([tmp_path / "r.csv"])["ratings"][0]["agreement"]["krippendorff_alpha"] == pytest.approx(1.0)


@pytest.mark.parametrize("content, problem", [
    ("", "empty"),
    ("a,b,c\n1,2,3\n", "neither"),
    ("rater,item,system,rating\nr1,p1,x,great\n", "line 2: rating 'great' is not a number"),
    ("rater,item,system_a,system_b,winner\nr1,p1,x,y,z\n", "line 2: winner 'z'"),
    ("rater,item,system_a,system_b,winner\nr1,p1,x,x,a\n", "compared with itself"),
    ("rater,item,system,rating\nr1,,x,3\n", "line 2: an empty field"),
])
def test_listening_cli_bad_input(tmp_path, content, problem, cli):
    f = tmp_path / "bad.csv"
    f.write_text(content)
    r = cli("evaluate", "listening", f)
    assert r.returncode == 2
    assert problem in r.stderr and str(f) in r.stderr and "Traceback" not in r.stderr


# --------------------------------------------------------------------------- the command


def test_evaluate_cli_end_to_end(tmp_path, chorale_dataset):
    from tunesmith.music.io import save_midi

    gen = tmp_path / "gen"
    gen.mkdir()
    for i, (_, s) in enumerate(chorale_dataset.scores("valid")):
        save_midi(s, gen / f"held{i}.mid")
    entry, copy = next(chorale_dataset.scores("train"))
    save_midi(copy, gen / "copy.mid")
    (gen / "broken.mid").write_bytes(b"MThd garbage")
    out = tmp_path / "report"
    r = subprocess.run([sys.executable, "-m", "tunesmith", "evaluate", str(gen), "--reference", str(chorale_dataset.path),
                        "--reference-split", "all", "--out", str(out), "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "broken.mid" in r.stderr and "skipped" in r.stderr
    assert "Fréchet distance" in r.stdout and "1 of" in r.stdout
    res = json.loads((out / "metrics.json").read_text())
    flagged = [p["piece"] for p in res["originality"]["per_piece"] if p["flagged"]]
    assert flagged == ["copy.mid"]
    # the copied source is named as people name it (folder/file stem), not by a content hash
    source = Path(entry["source"]).stem
    row = next(p for p in res["originality"]["per_piece"] if p["flagged"])
    assert row["copied_from_name"] == f"{chorale_dataset.name}/{source}"
    assert res["theory"]["reference"]["four_voice_pieces"] > 40
    assert set(res["features"]) == set(compare.COMPARED)
    assert res["frechet"]["embedding"] == compare.EMBEDDING
    assert 0 <= res["two_sample_test"]["accuracy"] <= 1
    md = (out / "report.md").read_text()
    assert "## Originality" in md and "copy.mid" in md and "parallel fifths" in md and f"/{source}" in md
    # the fair yardstick: crops as long as the generated pieces (their median), real-vs-real beside
    fa = res["fair"]
    n_gen = len(list(gen.glob("*.mid"))) - 1
    assert fa["reference"]["crops"] == 20 and fa["two_sample"]["n_per_class"] == n_gen
    assert fa["two_sample"]["auc"] is None  # too few pieces for five folds: said, not invented
    # the 20 crops split in two halves by piece (the smaller half's size; whole pieces stay together)
    assert 5 <= fa["two_sample_baseline"]["n_per_class"] <= 10
    assert fa["figures"]["pieces"] == n_gen
    assert "## Fair comparison" in md and "real vs real" in md
    assert "<table>" in (out / "report.html").read_text()
    for png in ("mgeval_kde.png", "metric_distributions.png", "originality.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_evaluate_cli_bad_arguments(tmp_path, cli):
    r = cli("evaluate", tmp_path / "nope", "--reference", "bach-chorales")
    assert r.returncode == 2 and "nope" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "empty").mkdir()
    r = cli("evaluate", tmp_path / "empty", "--reference", "bach-chorales")
    assert r.returncode == 2 and "no music files" in r.stderr


def test_a_piece_written_in_several_formats_counts_once(tmp_path):
    """`generate` writes song.mid and song.musicxml of one piece: the set has one piece."""
    from tunesmith.evaluate.suite import load_set
    from tunesmith.music.io import save_midi, save_musicxml

    a = make_score([[(0, 480, 60), (480, 480, 62), (960, 960, 64)]])
    b = make_score([[(0, 960, 67), (960, 960, 65)]])
    for stem, sc in (("one", a), ("two", b)):
        save_midi(sc, tmp_path / f"{stem}.mid")
        save_musicxml(sc, tmp_path / f"{stem}.musicxml")
    save_musicxml(b, tmp_path / "three.musicxml")  # a piece in one format only still counts
    s = load_set(str(tmp_path), split=None, limit=None, progress=False)
    assert sorted(s.names) == ["one.mid", "three.musicxml", "two.mid"]
    assert "2 other format(s) of the same pieces not counted again" in s.description


def test_report_html_escapes_every_name(tmp_path):
    """A folder named like markup must appear as text in report.html, never run as markup."""
    import shutil

    from tunesmith.cli import main
    from tunesmith.music.corpora import corpus_files

    gen = tmp_path / "<img src=x onerror=alert(1)>"
    gen.mkdir()
    for f in corpus_files("bach-chorales")[:3]:
        shutil.copy(f, gen / f"<b>{f.name}")
    ref = tmp_path / "ref"
    ref.mkdir()
    for f in corpus_files("bach-chorales")[3:6]:
        shutil.copy(f, ref / f.name)
    assert main(["evaluate", str(gen), "--reference", str(ref), "--no-fair", "--quiet", "--out",
                 str(tmp_path / "r")]) == 0
    page = (tmp_path / "r" / "report.html").read_text()
    assert "<img src=x" not in page and "<b>" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<table>" in page
