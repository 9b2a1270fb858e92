"""The CLI as a user runs it: listings, rendering, option errors, kill -9 and resume."""

import os
import shutil
import signal
import subprocess
import sys
import time

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
    r = run("render", str(f), "--out", str(tmp_path / "x.mp3"))
    assert r.returncode == 2 and "--out" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--lr", "0"], "--lr"), (["--epochs", "0"], "--epochs"), (["--dropout", "1.5"], "--dropout"),
    (["--layers", "0"], "--layers"), (["--data", "no-such-corpus-or-folder"], "neither a bundled corpus"),
])
def test_train_option_errors(tmp_path, args, message):
    base = ["train", "--family", "lstm", "--data", "bach-chorales", "--out", str(tmp_path / "r"), "--size", "debug"]
    r = run(*(base + args))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_kill_9_then_resume_from_cli(tmp_path):
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
    r = subprocess.run(args + ["--resume"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "trained gru" in r.stdout
    r = run("generate", "--model", str(tmp_path / "run"), "--bars", "2", "--out", str(tmp_path / "o"), "--formats", "mid")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("args, message", [
    (["generate", "--model", "folk", "--temprature", "0.5", "--out", "o"],
     "unknown option --temprature (did you mean --temperature?)"),
    (["generate", "--model", "folk", "--bar", "8", "--out", "o"], "unknown option --bar (did you mean --bars?)"),
    (["train", "--model", "lstm", "--data", "bach-chorales", "--out", "o"], "--model was renamed: use --family"),
    (["train", "--family", "lstm", "--data", "bach-chorales", "--out", "o", "--max-minutes", "3"],
     "--max-minutes was renamed: use --train-minutes"),
    (["audio", "train", "--data", "d", "--out", "o", "--max-minutes", "3"],
     "--max-minutes was renamed: use --train-minutes"),
])
def test_misspelled_abbreviated_and_renamed_options_get_one_clear_line(tmp_path, args, message):
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


def test_top_level_help_is_a_clean_table_of_contents():
    r = run("--help")
    assert r.returncode == 0 and "SUPPRESS" not in r.stdout and "%%" not in r.stdout
    for command in ("generate", "train", "harmonize", "infill", "evaluate", "audio", "bench", "data"):
        assert f"    {command}" in r.stdout
