"""Generation controls, from the Python API and the CLI."""

import shutil
import subprocess
import sys

import numpy as np
import pytest

from tunesmith.errors import OptionError
from tunesmith.generate.api import generate_to_files, load_model
from tunesmith.music.corpora import corpus_files
from tunesmith.music.io import load_score, save_midi
from tunesmith.music.keys import parse_key, scale_pitch_classes


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A debug Transformer trained for a few dozen steps on a dozen chorales (seconds)."""
    from tunesmith.cli import main

    root = tmp_path_factory.mktemp("gen")
    src = root / "chorales"
    src.mkdir()
    for f in corpus_files("bach-chorales")[:12]:
        shutil.copy(f, src / f.name)
    rc = main(["train", "--family", "transformer", "--size", "debug", "--data", str(src), "--out", str(root / "run"),
               "--epochs", "2", "--max-steps", "40", "--quiet"])
    assert rc == 0
    return root / "run"


def n_bar_tokens(mm, toks):
    return sum(1 for t in toks if mm.tokenizer.names[t] == "Bar_None")


def test_bars_exact_and_valid_tokens(tiny_model):
    mm = load_model(str(tiny_model))
    for bars in (1, 3, 6):
        g = mm.generate(bars=bars, seed=bars)
        pickup = int("pickup" in g.report)  # an upbeat's bar comes before the bars asked for
        assert n_bar_tokens(mm, g.tokens) == bars + pickup
        assert mm.tokenizer.grammar_errors([mm.tokenizer.bos_id] + g.tokens) == 0
        m = g.score.music
        ts = m.time_signatures[0]
        bar = m.tpq * 4 * ts.numerator // ts.denominator
        assert all(n.end <= (bars + pickup) * bar for t in m.tracks for n in t.notes)
        assert (min(n.time for t in m.tracks for n in t.notes) > 0) == bool(pickup)


def test_same_seed_same_bytes(tiny_model, tmp_path):
    a = generate_to_files(str(tiny_model), tmp_path / "a", bars=4, seed=7, formats="mid")
    b = generate_to_files(str(tiny_model), tmp_path / "b", bars=4, seed=7, formats="mid")
    c = generate_to_files(str(tiny_model), tmp_path / "c", bars=4, seed=8, formats="mid")
    read = lambda r: open(r[0]["files"][0], "rb").read()  # noqa: E731
    assert read(a) == read(b) and read(a) != read(c)


def test_api_save_load_round_trip(tiny_model, tmp_path):
    mm = load_model(str(tiny_model))
    mm.save(tmp_path / "saved")
    again = load_model(str(tmp_path / "saved"))
    assert again.generate(bars=2, seed=9).tokens == mm.generate(bars=2, seed=9).tokens


def test_cache_and_recompute_sample_the_same(tiny_model):
    mm = load_model(str(tiny_model))
    # float32 steps: the cache is exact (the int8 one-token steps a CPU samples with by default
    # change logits by about 1e-3, which can flip a draw that falls on a boundary)
    mm.model.int8_sampling = False
    for seed, bars in ((5, 2), (6, 12)):  # 12 bars outgrow the 256-token context: it slides alike
        a = mm.generate(bars=bars, seed=seed).tokens
        assert a == mm.generate(bars=bars, seed=seed, use_cache=False).tokens
    assert len(a) > 256


def test_primer_kept_note_for_note_with_its_meter_and_key(tiny_model, tmp_path):
    primer = load_score(corpus_files("bach-chorales")[20])
    primer.music = primer.music.clip(0, primer.tpq * 8)  # two bars of a real chorale
    mm = load_model(str(tiny_model))
    g = mm.generate(primer=primer, bars=2, seed=1)
    out = g.score.music
    want = sorted((n.time, n.pitch, n.duration) for t in primer.music.tracks for n in t.notes)
    last_onset = max(w[0] for w in want)  # the continuation may add voices from here on
    got = sorted((n.time, n.pitch, n.duration) for t in out.tracks for n in t.notes)
    assert [g for g in got if g[0] < last_onset] == [w for w in want if w[0] < last_onset]
    assert all(w in got for w in want)
    pend = primer.music.end()
    assert {(t.numerator, t.denominator) for t in out.time_signatures} == {(4, 4)}
    from tunesmith.music.keys import score_key

    tonic, mode = score_key(primer)
    new = [n.pitch for t in out.tracks for n in t.notes if n.time >= pend]
    assert new and all(p % 12 in scale_pitch_classes(tonic, mode) for p in new)


def test_key_option_transposes_primer_and_constrains(tiny_model):
    primer = load_score(corpus_files("bach-chorales")[20])
    primer.music = primer.music.clip(0, primer.tpq * 8)
    mm = load_model(str(tiny_model))
    g = mm.generate(primer=primer, bars=2, seed=2, key="F# minor")
    tonic, mode = parse_key("F# minor")
    assert g.score.meta.key.startswith("F#")
    pitches = [n.pitch for t in g.score.music.tracks for n in t.notes]
    inside = np.mean([p % 12 in scale_pitch_classes(tonic, mode) for p in pitches])
    assert inside > 0.85


@pytest.mark.parametrize("kw, option", [
    ({"temperature": 0}, "--temperature"), ({"temperature": -1}, "--temperature"),
    ({"top_p": 0}, "--top-p"), ({"top_p": 1.5}, "--top-p"), ({"bars": 0}, "--bars"),
    ({"bars": 100000}, "--bars"), ({"top_k": -3}, "--top-k"), ({"num": 0}, "--num"),
    ({"key": "H major"}, "--key"),
])
def test_bad_options_rejected_before_work(tiny_model, tmp_path, kw, option):
    with pytest.raises(OptionError) as e:
        generate_to_files(str(tiny_model), tmp_path / "o", **kw)
    assert e.value.option == option
    assert not (tmp_path / "o").exists()


def test_unknown_model_name_cli(tmp_path):
    r = subprocess.run([sys.executable, "-m", "tunesmith", "generate", "--model", "no-such-model", "--out",
                        str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown model 'no-such-model'" in r.stderr and "Traceback" not in r.stderr


def test_cli_writes_all_formats(tiny_model, tmp_path):
    from tunesmith.cli import main

    assert main(["generate", "--model", str(tiny_model), "--out", str(tmp_path / "o"), "--bars", "2", "--seed", "4"]) == 0
    files = sorted(p.suffix for p in (tmp_path / "o").iterdir())
    assert files == [".json", ".mid", ".musicxml", ".png", ".wav"]
    import soundfile as sf

    info = sf.info(str(next((tmp_path / "o").glob("*.wav"))))
    assert info.samplerate == 44100 and info.frames > 0
    assert load_score(next((tmp_path / "o").glob("*.musicxml"))).n_notes > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bach-chorales", "folk"])
def test_bundled_models_generate(name, tmp_path):
    mm = load_model(name)
    g = mm.generate(bars=8, seed=0, key="G major")
    assert g.score.n_notes > 8 and g.key == "G major"
    from tunesmith.music.keys import estimate_key

    def heard(score):
        return estimate_key(np.concatenate([t.notes.numpy()["pitch"] for t in score.music.tracks]))[:2]

    # the key the notes are heard in (Krumhansl-Schmuckler), over six seeds: G major or its relative
    # minor — or, for a chorale, one of its closely related keys, as Bach's own do: his 8-bar
    # openings are heard in their stated key or its relative 202 times in 286 (they tonicize the
    # dominant and the subdominant) and within the closely related keys 281 times
    pieces = [g] + [mm.generate(bars=8, seed=s, key="G major") for s in range(1, 6)]
    heard_keys = [heard(p.score) for p in pieces]
    home = sum(k in ((7, "major"), (4, "minor")) for k in heard_keys)
    if name == "bach-chorales":
        related = {(7, "major"), (4, "minor"), (2, "major"), (11, "minor"), (0, "major"), (9, "minor")}
        assert sum(k in related for k in heard_keys) >= 5 and home >= 3, heard_keys
        for p in pieces:  # and each ends on the tonic chord over G (the cadence in the asked key)
            ends = [max(t.notes, key=lambda n: n.time) for t in p.score.music.tracks]
            assert ends[-1].pitch % 12 == 7 and {n.pitch % 12 for n in ends} <= {7, 11, 2}, ends
    else:
        # a folk tune's key is read where the line rests (the tune reader, music.keys.tune_key, which
        # finds the stated tonic of held-out tunes for 0.909, Krumhansl-Schmuckler 0.853): the rule
        # ends each tune on its tonic, G, and the reader, as analyze reads a tune, hears G major (or
        # E minor); Krumhansl-Schmuckler hears G or a closely related key (a tune in G that dwells on
        # D is D major to it)
        from tunesmith.music.keys import score_mode
        from tunesmith.music.score import Meta, Score

        read = [score_mode(Score(p.score.music, Meta()))[::2] for p in pieces]
        assert sum(k in ((7, "major"), (4, "minor")) for k in read) >= 5, read
        assert all(max(p.score.music.tracks[0].notes, key=lambda n: n.time).pitch % 12 == 7 for p in pieces)
        related = {(7, "major"), (4, "minor"), (2, "major"), (11, "minor"), (0, "major"), (9, "minor")}
        assert all(k in related for k in heard_keys), heard_keys
    if name == "bach-chorales":  # SATB tokens under strict rules: four voices, no parallels unless relaxed
        assert len(g.score.music.tracks) == 4 and all(len(t.notes) for t in g.score.music.tracks)
        from tunesmith.evaluate.metrics import extract_notes
        from tunesmith.evaluate.theory import voice_leading

        vl = voice_leading(extract_notes(g.score))
        if g.report["n_relaxed"] == 0:
            assert vl["parallel_fifths"] == 0 and vl["parallel_octaves"] == 0 and vl["voice_crossing"] == 0
    save_midi(g.score, tmp_path / "x.mid")


def _abc_tunes(n: int, origin: str | None, seed: int) -> str:
    rng = np.random.default_rng(seed)
    notes = "CDEFGABcdefg"
    out = []
    for i in range(n):
        bars = " | ".join("".join(notes[j] for j in rng.integers(0, len(notes), 4)) for _ in range(8))
        head = f"X:{i + 1}\nT: Tune {seed}-{i}\n" + (f"O: Europa, {origin}\n" if origin else "")
        out.append(head + f"M: 2/4\nL: 1/8\nK: G\n{bars} |]\n")
    return "\n".join(out)


@pytest.fixture(scope="module")
def style_model(tmp_path_factory):
    """A debug Transformer trained with style tokens on constructed tunes from two collections
    (the folders are named as in music21's corpus, which is how a piece's collection is known)."""
    from tunesmith.cli import main

    root = tmp_path_factory.mktemp("style")
    (root / "data" / "essenFolksong").mkdir(parents=True)
    (root / "data" / "oneills1850").mkdir(parents=True)
    (root / "data" / "essenFolksong" / "a.abc").write_text(_abc_tunes(10, "Schlesien", 1))
    (root / "data" / "oneills1850" / "b.abc").write_text(_abc_tunes(10, None, 2))
    rc = main(["train", "--family", "transformer", "--size", "debug", "--data", str(root / "data"), "--styles",
               "--out", str(root / "run"), "--epochs", "2", "--max-steps", "20", "--quiet"])
    assert rc == 0
    return root / "run"


def test_style_vocabulary_and_ids():
    from tunesmith.train.data import style_ids, style_vocabulary

    class DS:
        name = "folk"

        def split(self, s):
            return [{"source": "/x/essenFolksong/a.abc", "meta": {"tags": ["region:Schlesien"]}}] * 3 + [
                {"source": "/x/essenFolksong/a.abc", "meta": {"tags": ["region:Baden"]}},
                {"source": "/x/oneills1850/b.abc", "meta": {}}]

    import tunesmith.train.data as data

    old = data.MIN_STYLE_PIECES
    data.MIN_STYLE_PIECES = 2
    try:
        v = style_vocabulary(DS())
    finally:
        data.MIN_STYLE_PIECES = old
    assert v == ["collection:essen", "collection:oneills-1850", "region:Schlesien", "region:other", "region:none"]
    rows = DS().split("train")
    assert style_ids(rows[0], "folk", v, 100) == [100, 102]
    assert style_ids(rows[3], "folk", v, 100) == [100, 103]  # a rare region: 'other'
    assert style_ids(rows[4], "folk", v, 100) == [101, 104]


def test_style_control(style_model, tiny_model, tmp_path):
    from tunesmith.cli import main
    from tunesmith.errors import ParameterError

    mm = load_model(str(style_model))
    assert "style" in mm.capabilities and set(mm.style_names()) == {"essen", "oneills-1850"}
    g = mm.generate(bars=4, seed=3, style="oneills-1850")
    assert g.report["style"] == ["collection:oneills-1850", "region:none"]
    assert n_bar_tokens(mm, g.tokens) == 4 + int("pickup" in g.report)
    assert all(t < mm.tokenizer.vocab_size for t in g.tokens)
    free = mm.generate(bars=4, seed=3)  # no style asked: the model chooses one of each slot
    assert free.report["style"][0].startswith("collection:") and free.report["style"][1].startswith("region:")
    with pytest.raises(ParameterError, match="unknown style 'Bayern'"):
        mm.generate(bars=4, style="Bayern")
    with pytest.raises(ParameterError, match="style"):  # a model trained without style tokens refuses it
        generate_to_files(str(tiny_model), tmp_path / "x", bars=2, style="essen", formats="mid")
    assert main(["generate", "--model", str(style_model), "--style", "essen", "--bars", "2", "--formats", "mid",
                 "--out", str(tmp_path / "o")]) == 0
    info = __import__("json").loads(next((tmp_path / "o").glob("*.json")).read_text())
    assert info["settings"]["style"] == "essen" and info["rules"]["style"][0] == "collection:essen"


def test_token_cap_is_reported_not_hidden(tiny_model, tmp_path, monkeypatch, capsys):
    import json

    import tunesmith.generate.api as api
    from tunesmith.cli import main

    class Capped(api.RemiConstraint):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.max_tokens = 40

    monkeypatch.setattr(api, "RemiConstraint", Capped)
    g = load_model(str(tiny_model)).generate(bars=8, seed=1)
    assert g.repairs == 1 and g.bars < 8
    assert f"after {g.bars} of 8 bars" in g.report["stopped_early"]
    assert main(["generate", "--model", str(tiny_model), "--bars", "8", "--seed", "1", "--formats", "mid",
                 "--out", str(tmp_path)]) == 0
    cap = capsys.readouterr()
    assert "token cap" in cap.err and f"{g.bars} bars" in cap.out
    assert json.loads(next(tmp_path.glob("*.json")).read_text())["bars"] == g.bars


def test_tempo_and_instruments(tiny_model, tmp_path, capsys):
    import json

    import symusic

    from tunesmith.cli import main
    from tunesmith.music.arrange import parse_instruments

    assert parse_instruments("piano,Violin, 42,choir") == [0, 40, 42, 52]
    with pytest.raises(OptionError, match="did you mean Cello"):
        parse_instruments("cell")
    assert main(["generate", "--model", str(tiny_model), "--bars", "2", "--formats", "mid", "--tempo", "72",
                 "--instruments", "flute", "--out", str(tmp_path)]) == 0
    mid = symusic.Score(str(next(tmp_path.glob("*.mid"))))
    assert [round(t.qpm) for t in mid.tempos] == [72] and {t.program for t in mid.tracks} == {73}
    info = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert info["settings"]["tempo"] == 72 and info["settings"]["instruments"] == "flute"
    assert main(["generate", "--model", str(tiny_model), "--tempo", "1000", "--out", str(tmp_path / "x")]) == 2
    assert "--tempo: quarter notes per minute" in capsys.readouterr().err
    wav = tmp_path / "r.wav"
    assert main(["render", str(next(tmp_path.glob("*.mid"))), "--out", str(wav), "--tempo", "144"]) == 0
    assert wav.is_file()


@pytest.mark.parametrize("name", ["bach-chorales", "chorale-cnn", "chorale-gan", "folk"])
def test_bundled_models_play_at_a_declared_tempo(name):
    """Defaults agree across models: chorales play at 90, folk at the 120 its card declares, never
    at a step of the tokenizer's tempo grid (the folk model used to play at 121.29)."""
    g = load_model(name).generate(bars=1, seed=3, **({"iterations": 2} if name == "chorale-cnn" else {}))
    assert [round(t.qpm, 3) for t in g.score.music.tempos] == [120.0 if name == "folk" else 90.0]


def test_long_operations_report_progress(tiny_model):
    from tunesmith.progress import reporting

    seen = []
    with reporting(lambda done, total, unit: seen.append((done, total, unit))):
        load_model(str(tiny_model)).generate(bars=5, seed=2)
    assert [d for d, _, u in seen if u == "bars"] == [1, 2, 3, 4, 5] and {t for _, t, _ in seen} == {5}
    seen.clear()
    with reporting(lambda done, total, unit: seen.append((done, total, unit))):
        load_model("chorale-cnn").generate(bars=2, seed=1, iterations=3)
    assert [d for d, _, u in seen if u == "Gibbs rounds"] == [0, 1, 2, 3]
    seen.clear()
    with reporting(lambda done, total, unit: seen.append((done, total, unit))):
        load_model("bach-chorales").generate(bars=3, seed=1)
    assert [d for d, _, u in seen if u == "bars"] == [0, 1, 2]


def test_seconds_instead_of_bars(tiny_model, tmp_path, capsys):
    import json

    from tunesmith.cli import main

    assert main(["generate", "--model", str(tiny_model), "--seconds", "12", "--tempo", "120", "--formats", "mid",
                 "--out", str(tmp_path)]) == 0
    info = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert info["settings"]["bars"] == 6 and info["settings"]["tempo"] == 120  # 12 s of 4/4 at 120
    assert main(["generate", "--model", str(tiny_model), "--seconds", "12", "--bars", "4", "--out",
                 str(tmp_path / "x")]) == 2
    assert "--seconds: give --bars or --seconds" in capsys.readouterr().err


def test_a_model_card_can_set_the_default_top_p(tiny_model, tmp_path):
    import json

    from tunesmith.models.registry import resolve

    ck = tmp_path / "ck"
    shutil.copytree(resolve(str(tiny_model)), ck)
    cfg = json.loads((ck / "config.json").read_text())
    assert "sampling" not in cfg
    plain = load_model(str(ck))
    cfg["sampling"] = {"top_p": 0.5}
    (ck / "config.json").write_text(json.dumps(cfg))
    mm = load_model(str(ck))
    runs = [(mm.generate(bars=3, seed=s).tokens, mm.generate(bars=3, seed=s, top_p=0.5).tokens,
             plain.generate(bars=3, seed=s).tokens, plain.generate(bars=3, seed=s, top_p=0.95).tokens) for s in range(4)]
    assert all(a == b and c == d for a, b, c, d in runs)  # left out: the card's 0.5, and 0.95 without one
    assert any(a != c for a, _, c, _ in runs)
    (info,) = generate_to_files(str(ck), tmp_path / "out", bars=2, formats="mid")
    assert info["settings"]["top_p"] == 0.5  # the value used is written down
    (info,) = generate_to_files(str(ck), tmp_path / "out2", bars=2, formats="mid", top_p=0.8)
    assert info["settings"]["top_p"] == 0.8


def test_a_piece_whose_last_format_fails_leaves_no_files(tmp_path, monkeypatch, chorale_like):
    """MIDI and WAV are written before the MusicXML: when that fails, they are removed again — a
    piece's files are all there or none is (generate once left a MIDI and a WAV beside a traceback)."""
    import tunesmith.music.io as io
    from tunesmith.generate.api import write_formats

    def broken(score, path):
        raise RuntimeError("the notation failed")

    monkeypatch.setattr(io, "save_musicxml", broken)
    with pytest.raises(RuntimeError, match="notation"):
        write_formats(chorale_like, tmp_path / "piece", ["mid", "wav", "musicxml", "png"])
    assert list(tmp_path.iterdir()) == []


def test_the_chorale_model_refuses_a_tune_as_primer_and_says_what_would_take_it(tmp_path, cli):
    (tmp_path / "tune.abc").write_text("X:1\nM:4/4\nL:1/4\nK:G\nG A B c|d2 B2|c A B G|A4|]\n")
    r = cli("generate", "--model", "bach-chorales", "--primer", str(tmp_path / "tune.abc"), "--bars", "2",
            "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "needs exactly four voices" in r.stderr and "--model folk" in r.stderr
    assert "tunesmith harmonize" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_tune_in_a_church_mode_keeps_its_mode(tmp_path):
    """A continuation of Cooley's reel (K:Edor) stated "E minor", and its sheet music had E minor's
    one sharp with a sharp before every C; a transposed tune's "E dor" stayed "E dor". The key is
    now named as analyze names it, and the mode moves with a transposition."""
    from tunesmith.music.io import load_score, save_musicxml
    from tunesmith.music.keys import transpose_key_name

    f = tmp_path / "cooley.abc"
    f.write_text("X:1\nT:Cooley's A\nM:4/4\nL:1/8\nK:Edor\nEBBA B2 EB|B2 AB dBAG|FDAD BDAD|FDAD dAFD|"
                 "EBBA B2 EB|B2 AB defg|afec dBAF|DEFD E4|\n")
    g = load_model("folk").generate(primer=load_score(f), bars=2, seed=0)
    assert g.key == g.score.meta.key == "E dorian"
    xml = save_musicxml(g.score, tmp_path / "c.musicxml").read_text()
    assert "<fifths>2</fifths>" in xml and "<mode>dorian</mode>" in xml
    assert transpose_key_name("E dor", 2) == "F# dorian" and transpose_key_name("A mixolydian", -2) == "G mixolydian"
    assert load_score(f).transpose(-2).meta.key == "D dorian"
