"""The crafted corpus (tests/hostile.py) through every command that reads a file: each case
gives a result or one clear line (exit status 2), never a traceback (issue #19)."""

import shutil
from pathlib import Path

import pytest
from tests.hostile import cases, write_cases

from tunesmith.music.corpora import corpus_files

NAMES = [c[0] for c in cases()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    made = {name: (path, expect) for name, path, expect in write_cases(folder / "files")}
    ref = folder / "reference"
    ref.mkdir()
    for f in corpus_files("bach-chorales")[:4]:
        shutil.copy(f, ref / f.name)
    return made, ref


def _commands(f: Path, out: Path, ref: Path) -> dict[str, list[str]]:
    alone = out / "alone"
    alone.mkdir(parents=True, exist_ok=True)
    shutil.copy(f, alone / f.name)
    mixed = out / "mixed"  # the case beside a good piece: a bad file is skipped, the rest evaluated
    mixed.mkdir(parents=True, exist_ok=True)
    shutil.copy(f, mixed / f.name)
    shutil.copy(corpus_files("bach-chorales")[5], mixed / "good.mxl")
    return {
        "info": ["info", str(f)],
        "render": ["render", str(f), "--out", str(out / "r.wav")],
        "data prepare": ["data", "prepare", str(alone), "--out", str(out / "ds"), "--quiet", "--workers", "1"],
        "generate --primer": ["generate", "--model", "folk", "--primer", str(f), "--bars", "1", "--formats",
                              "mid,musicxml,png", "--out", str(out / "g")],
        "harmonize": ["harmonize", str(f), "--model", "bach-chorales", "--formats", "mid,musicxml,png", "--out",
                      str(out / "h")],
        "infill": ["infill", str(f), "--bars", "1", "--iterations", "2", "--formats", "mid", "--out", str(out / "i")],
        "evaluate": ["evaluate", str(mixed), "--reference", str(ref), "--no-fair", "--quiet", "--out",
                     str(out / "e")],
        "audio play-score": ["audio", "play-score", str(f), "--out", str(out / "p.wav")],
    }


def _check(name, command, expect, rc, err):
    assert "Traceback" not in err, (name, command, err)
    assert rc in (0, 2), (name, command, rc, err)
    if rc == 2:
        errors = [ln for ln in err.splitlines() if ln.startswith("tunesmith: error:")]
        assert len(errors) == 1 and len(errors[0]) < 400, (name, command, err)
    if expect == "refused" and command != "evaluate":  # evaluate skips the bad file and keeps the good one
        assert rc == 2, (name, command, "should have been refused")
    if command == "evaluate":
        assert rc == 0, (name, err)


@pytest.mark.parametrize("name", NAMES)
def test_every_crafted_case_reads_or_is_one_line(name, corpus, tmp_path, cli):
    made, ref = corpus
    f, expect = made[name]
    cmds = _commands(f, tmp_path, ref)
    for command in ("info", "render"):
        r = cli(*cmds[command])
        rc, err = r.returncode, r.stderr
        _check(name, command, expect, rc, err)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_every_crafted_case_through_every_command(name, corpus, tmp_path, cli):
    made, ref = corpus
    f, expect = made[name]
    for command, argv in _commands(f, tmp_path, ref).items():
        if command in ("info", "render", "evaluate"):  # evaluate: every case at once, below
            continue
        r = cli(*argv)
        rc, err = r.returncode, r.stderr
        _check(name, command, expect, rc, err)


@pytest.mark.slow
def test_evaluate_skips_every_crafted_case_and_keeps_the_rest(corpus, tmp_path, cli):
    """Every crafted file in one folder beside two good pieces: evaluate reads them all, skips
    each unreadable one with one warning naming it, and evaluates the rest."""
    made, ref = corpus
    folder = tmp_path / "all"
    folder.mkdir()
    for f, _ in made.values():  # one stem per file (a stem written in two formats is one piece)
        shutil.copy(f, folder / f"{f.suffix[1:]}-{f.name}")
    for f in corpus_files("bach-chorales")[5:7]:
        shutil.copy(f, folder / f.name)
    r = cli("evaluate", folder, "--reference", ref, "--no-fair", "--quiet", "--out", tmp_path / "e")
    rc, err = r.returncode, r.stderr
    assert rc == 0 and "Traceback" not in err, err
    for name, (f, expect) in made.items():
        if expect == "refused":
            assert sum(f"{f.suffix[1:]}-{f.name}" in ln and "skipped" in ln for ln in err.splitlines()) == 1, name


def test_output_names_that_are_not_utf8_or_too_long(corpus, tmp_path):
    import subprocess
    import sys

    made, _ = corpus
    f = str(made["a valid MusicXML melody"][0]).encode()
    odd = bytes(tmp_path) + b"/\xff\xfe-name.wav"
    r = subprocess.run([sys.executable.encode(), b"-m", b"tunesmith", b"render", f, b"--out", odd],
                       capture_output=True, timeout=120)
    assert r.returncode == 0 and b"Traceback" not in r.stderr and Path(odd.decode("utf-8", "surrogateescape")).is_file()
    long = str(tmp_path / ("a" * 300 + ".wav"))
    r = subprocess.run([sys.executable, "-m", "tunesmith", "render", f.decode(), "--out", long], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "longer than the 255" in r.stderr
    assert [p.name for p in tmp_path.iterdir()] == [odd.rsplit(b"/", 1)[1].decode("utf-8", "surrogateescape")]


@pytest.mark.slow
def test_every_crafted_case_through_the_mir_commands(corpus, tmp_path, cli, monkeypatch):
    """analyze, classify and search (over an index of the reference chorales) read each crafted
    case or refuse it with one line; a readable case with notes is analysed, classified and
    searched with (issue #15)."""
    made, ref = corpus
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    assert cli("index", ref, "--quiet").returncode == 0
    assert len(made) >= 20
    searched = 0
    for name, (f, expect) in made.items():
        for command in (["analyze", f, "--json"], ["classify", f], ["search", f, "--top", "2"]):
            r = cli(*command)
            _check(name, command[0], expect, r.returncode, r.stderr)
            if expect == "ok" and r.returncode == 2:  # only a piece without (enough) notes may be refused
                assert "notes" in r.stderr or "too short" in r.stderr, (name, command[0], r.stderr)
            searched += command[0] == "search" and r.returncode == 0 and "reference/" in r.stdout
    # the readable cases with a melody were searched with, over the index of the reference folder
    assert searched >= sum(e == "ok" for _, e in made.values()) // 2
