"""The CLI as a user runs it: listings, rendering, option errors, kill -9 and resume."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tunesmith.cli import main
from tunesmith.music.corpora import corpus_files


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "tunesmith", *args], capture_output=True, text=True, **kw)


def test_data_list_shows_corpora_with_counts(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("bach-chorales", "essen", "oneills-1850", "ryans-mammoth", "palestrina", "monteverdi", "folk"):
        line = next(ln for ln in out.splitlines() if ln.startswith(name + " "))
        assert int(line.split()[2]) > 0


def test_render_writes_audible_wav(tmp_path, capsys):
    f = corpus_files("bach-chorales")[3]
    assert main(["render", str(f), "--out", str(tmp_path / "c.wav"), "--sample-rate", "22050"]) == 0
    audio, sr = sf.read(tmp_path / "c.wav")
    assert sr == 22050 and audio.ndim == 1 and len(audio) > sr * 10
    assert np.abs(audio).max() > 0.1
    assert "real time" in capsys.readouterr().out
    # a louder window where the music plays, near silence after the release tail
    spec = np.abs(np.fft.rfft(audio[: sr * 2]))
    assert spec[int(100 * 2): int(2000 * 2)].sum() > spec[int(5000 * 2):].sum()


def test_render_bad_soundfont_and_bad_out(tmp_path):
    f = corpus_files("bach-chorales")[3]
    fake = tmp_path / "fake.sf2"
    fake.write_bytes(b"not a soundfont")
    r = run("render", str(f), "--out", str(tmp_path / "x.wav"), "--soundfont", str(fake))
    assert r.returncode == 2 and "not a SoundFont" in r.stderr and not (tmp_path / "x.wav").exists()
    r = run("render", str(f), "--out", str(tmp_path / "x.aiff"))  # mp3, flac and ogg are written since #18
    assert r.returncode == 2 and "--out" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--lr", "0"], "--lr"), (["--epochs", "0"], "--epochs"), (["--dropout", "1.5"], "--dropout"),
    (["--layers", "0"], "--layers"), (["--data", "no-such-corpus-or-folder"], "neither a bundled corpus"),
])
def test_train_option_errors(tmp_path, args, message, cli):
    base = ["train", "--family", "lstm", "--data", "bach-chorales", "--out", str(tmp_path / "r"), "--size", "debug"]
    r = cli(*(base + args))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_kill_9_then_resume_from_cli(tmp_path, cli):
    src = tmp_path / "music"
    src.mkdir()
    for f in corpus_files("bach-chorales")[:40]:
        shutil.copy(f, src / f.name)
    args = [sys.executable, "-m", "tunesmith", "train", "--family", "gru", "--size", "debug", "--data", str(src),
            "--out", str(tmp_path / "run"), "--epochs", "3", "--checkpoint-every", "2", "--batch-size", "4",
            "--seq-len", "128", "--quiet"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and not (tmp_path / "run" / "last" / "trainer.json").exists():
        time.sleep(0.2)
    assert (tmp_path / "run" / "last" / "trainer.json").exists(), "no checkpoint appeared"
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    r = cli(*args[3:], "--resume")  # resumed in this process
    assert r.returncode == 0, r.stderr[-2000:]
    assert "trained gru" in r.stdout
    r = cli("generate", "--model", tmp_path / "run", "--bars", "2", "--out", tmp_path / "o", "--formats", "mid")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("args, message", [
    (["generate", "--model", "folk", "--temprature", "0.5", "--out", "o"],
     "unknown option --temprature (did you mean --temperature?)"),
    (["generate", "--model", "folk", "--bar", "8", "--out", "o"], "unknown option --bar (did you mean --bars?)"),
    # another command's option is answered by the command given, never with "did you mean" itself
    (["analyze", "x.mid", "--out", "o"],
     "tunesmith analyze: error: unknown option --out (another command's option; see tunesmith analyze --help)"),
    (["evaluate", "listening", "x.csv", "--bars", "3"], "tunesmith evaluate listening: error: unknown option --bars"),
    (["train", "--model", "lstm", "--data", "bach-chorales", "--out", "o"], "--model was renamed: use --family"),
    (["train", "--family", "lstm", "--data", "bach-chorales", "--out", "o", "--max-minutes", "3"],
     "--max-minutes was renamed: use --train-minutes"),
    (["audio", "train", "--data", "d", "--out", "o", "--max-minutes", "3"],
     "--max-minutes was renamed: use --train-minutes"),
])
def test_misspelled_abbreviated_and_renamed_options_get_one_clear_line(tmp_path, args, message, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = cli(*args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


def test_top_level_help_is_a_clean_table_of_contents():
    r = run("--help")
    assert r.returncode == 0 and "SUPPRESS" not in r.stdout and "%%" not in r.stdout
    for command in ("generate", "train", "harmonize", "infill", "evaluate", "audio", "bench", "data"):
        assert f"    {command}" in r.stdout


def _parsers(parser, path=()):
    """Every (command words, parser) of the CLI, sub-commands of sub-commands included."""
    import argparse

    yield path, parser
    for act in parser._actions:
        if isinstance(act, argparse._SubParsersAction):
            for name, sp in act.choices.items():
                yield from _parsers(sp, (*path, name))
    for name, sp in getattr(parser, "_subcommands", {}).items():
        yield from _parsers(sp, (*path, name))


def test_every_help_shows_defaults_and_the_bundled_models():
    import argparse

    from tunesmith.cli import build_parser
    from tunesmith.models.registry import bundled

    seen = set()
    for path, parser in _parsers(build_parser()):
        seen.add(" ".join(path))
        text = " ".join(parser.format_help().split())  # (fills in the help of options that have none)
        for act in parser._actions:
            d = act.default
            if not act.option_strings or d is None or d is False or d == [] or d == argparse.SUPPRESS:
                continue
            if act.help == argparse.SUPPRESS:
                continue
            shown = " ".join(parser._get_formatter()._expand_help(act).split()) if act.help else ""
            assert "default" in shown, f"tunesmith {' '.join(path)} {act.option_strings[0]}: no default in its help"
        if path in (("generate",),):
            assert all(m in text for m in bundled("tokens") + bundled("roll")), path
        if path[:1] == ("audio",) and any("--model" in a.option_strings for a in parser._actions):
            assert all(m in text for m in bundled("notes")), path
    assert {"evaluate listening", "harmonize", "infill", "audio generate", "data prepare"} <= seen
    harmonize = " ".join(dict(_parsers(build_parser()))[("harmonize",)].format_help().split())
    assert "bach-chorales" in harmonize and "chorale-cnn" in harmonize


def test_evaluate_listening_is_a_real_sub_command(tmp_path):
    r = run("evaluate", "--help")
    assert r.returncode == 0 and "tunesmith evaluate listening" in r.stdout
    r = run("evaluate", "listening", "--help")
    assert r.returncode == 0 and "usage: tunesmith evaluate listening" in r.stdout and "--reference" not in r.stdout
    r = run("evaluate", "listening", "--temprature", "1", "x.csv")
    assert r.returncode == 2 and "unknown option --temprature" in r.stderr
    assert "evaluate-listening" not in (Path(__file__).parents[1] / "src/tunesmith/cli.py").read_text()


def test_small_and_empty_datasets_are_explained(tmp_path, capsys, monkeypatch):
    import symusic

    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    only = tmp_path / "onlytext"
    only.mkdir()
    (only / "song.mid").write_text("not a midi file")
    assert main(["data", "prepare", str(only), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no readable pieces in 1 file(s)" in err and "Traceback" not in err
    # a MIDI file without notes is no training piece, and info estimates no key for it
    empty = tmp_path / "empty.mid"
    s = symusic.Score(480)
    s.tracks.append(symusic.Track(name="silence"))
    s.dump_midi(str(empty))
    assert main(["info", str(empty)]) == 0
    out = capsys.readouterr().out
    assert "major" not in out and "no notes" in out
    few = tmp_path / "few"
    few.mkdir()
    shutil.copy(empty, few / "empty.mid")
    for f in corpus_files("bach-chorales")[:3]:
        shutil.copy(f, few / f.name)
    assert main(["data", "prepare", str(few), "--quiet"]) == 0
    cap = capsys.readouterr()
    assert "3 pieces from 4 files" in cap.out and "1 skipped" in cap.out
    info = json.loads(next((tmp_path / "home" / "datasets").glob("few-*/dataset.json")).read_text())
    if not info["splits"]["test"] or not info["splits"]["valid"]:
        assert "warning" in cap.err and "split" in cap.err
    skipped = json.loads(next((tmp_path / "home" / "datasets").glob("few-*/skipped.json")).read_text())
    assert [x["why"] for x in skipped] == ["no notes"]


def test_an_unwritable_output_folder_is_one_line_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out in ("/proc/tunesmith-out", str(blocker / "sub"), str(blocker)):
        assert main(["generate", "--model", "folk", "--bars", "2", "--out", out]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--out" in err and "Traceback" not in err
    assert not os.path.exists("/proc/tunesmith-out")


def test_a_missing_piece_number_is_named_as_the_user_counts(tmp_path, capsys):
    """--piece counts from 1; the error names the number asked for and the numbers there are."""
    abc = tmp_path / "two.abc"
    abc.write_text("X:1\nT:One\nM:4/4\nL:1/4\nK:G\nGABc|d2d2|\n\nX:2\nT:Two\nM:4/4\nL:1/4\nK:D\nDEFG|A2A2|\n")
    assert main(["analyze", str(abc), "--piece", "3"]) == 2
    err = capsys.readouterr().err
    assert "no piece number 3" in err and "numbered 1–2" in err and err.count("\n") == 1
    assert main(["analyze", str(abc), "--piece", "2"]) == 0
    assert "D major" in capsys.readouterr().out


def test_help_needs_no_heavy_library():
    """Every command's help (and parsing) starts without loading PyTorch, music21, librosa,
    matplotlib or scikit-learn: those load only when a command needs them."""
    code = ("import sys\nfrom tunesmith.cli import build_parser\np = build_parser()\n"
            "for argv in (['--help'], ['generate', '--help'], ['train', '--help'], ['studio', '--help']):\n"
            "    try:\n        p.parse_args(argv)\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in ('torch', 'music21', 'librosa', 'matplotlib', 'sklearn', 'fastapi') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_audio_formats_and_play(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATH", str(tmp_path / "nobin"))  # no audio player on the PATH
    src = corpus_files("bach-chorales")[0]
    for ext in ("flac", "ogg", "mp3"):
        out = tmp_path / f"c.{ext}"
        assert main(["render", str(src), "--out", str(out)]) == 0
        data, sr = sf.read(str(out))
        assert sr == 44100 and len(data) / sr > 10 and float(np.abs(data).max()) > 0.1
        assert oct(out.stat().st_mode & 0o777) != "0o600"
    assert main(["render", str(src), "--out", str(tmp_path / "c.aiff")]) == 2
    capsys.readouterr()
    assert main(["play", str(src)]) == 0
    out = capsys.readouterr().out
    assert "no audio player" in out and (tmp_path / "home" / "play").glob("*.wav")


def test_generate_suggests_an_evaluate_command_that_runs(tmp_path, capsys):
    """The 'next:' line named `tunesmith evaluate OUT`, which is refused without --reference; it now
    names the model's training corpus, also written to the piece's .json, and that command runs."""
    out = tmp_path / "gen"
    assert main(["generate", "--model", "folk", "--bars", "2", "--out", str(out), "--formats", "mid"]) == 0
    nxt = [x for x in capsys.readouterr().out.splitlines() if x.startswith("next:")][0]
    assert f"tunesmith evaluate {out} --reference folk" in nxt
    assert json.loads((out / "folk-000.json").read_text())["settings"]["trained_on"] == "folk"
    assert main(["evaluate", str(out), "--reference", "folk", "--quiet", "--max-reference", "20",
                 "--out", str(tmp_path / "report")]) == 0
    err = capsys.readouterr().err
    assert "RuntimeWarning" not in err, err  # one piece: the report's "–", not NumPy's warnings
