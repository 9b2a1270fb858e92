"""Kill -9 at several points of data prepare, generate, evaluate and audio dataset, then run
the same command again: the result equals an uninterrupted run, and no half-written file is
ever taken for a whole one (issue #19; training is covered family by family in
tests/test_families.py)."""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tunesmith.music.corpora import corpus_files

KILL_AFTER = (0.35, 0.7)  # fractions of the uninterrupted run's wall time


def _tree(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every visible file's content hash (hidden temporaries left by a kill are not results),
    with the output folder's own name and MusicXML's encoding date taken out."""
    import re

    def content(p: Path) -> bytes:
        data = p.read_bytes().replace(str(folder).encode(), b"OUT")
        return re.sub(rb"<encoding-date>[^<]*</encoding-date>", b"", data) if p.suffix == ".musicxml" else data

    return {str(p.relative_to(folder)): hashlib.sha256(content(p)).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith(".")
            and not any(s in p.name for s in skip)}


def _run(cmd, env, kill_after=None) -> float | None:
    """Seconds the command took; None when it was killed before it finished."""
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "tunesmith", *cmd], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, start_new_session=True)
    if kill_after is None:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()[-2000:]
        return time.perf_counter() - t0
    try:
        p.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # the command and its workers, with no cleanup
        p.wait()
        return None
    return time.perf_counter() - t0


def _setup(tmp_path: Path) -> tuple[dict, Path, Path]:
    env = dict(os.environ, TUNESMITH_HOME=str(tmp_path / "home"))
    src = tmp_path / "src"
    src.mkdir()
    for f in corpus_files("bach-chorales")[:30]:
        shutil.copy(f, src / f.name)
    gen = tmp_path / "gen"
    gen.mkdir()
    for f in corpus_files("bach-chorales")[30:33]:
        shutil.copy(f, gen / f.name)
    return env, src, gen


def _commands(src: Path, gen: Path, out: Path) -> dict[str, tuple[list[str], list[str], tuple[str, ...]]]:
    """name → (first command, the same command run again after a kill, file names not compared)."""
    prepare = ["data", "prepare", str(src), "--out", str(out), "--workers", "2", "--quiet"]
    generate = ["generate", "--model", "bach-chorales", "--num", "2", "--bars", "3", "--formats",
                "mid,musicxml,wav,png", "--out", str(out)]
    evaluate = ["evaluate", str(gen), "--reference", str(src), "--max-reference", "8", "--no-fair", "--quiet",
                "--out", str(out)]
    notes = ["audio", "dataset", "--out", str(out), "--programs", "0,24,40,73,56,19", "--pitches", "36-84", "--quiet"]
    return {"data prepare": (prepare, prepare, ()),
            "generate": (generate, [*generate, "--force"], ()),
            "evaluate": (evaluate, evaluate, ("report.md", "report.html", "metrics.json")),
            "audio dataset": (notes, notes, ())}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["data prepare", "generate", "evaluate", "audio dataset"])
def test_killed_at_several_points_then_rerun_equals_uninterrupted(name, tmp_path):
    env, src, gen = _setup(tmp_path)
    first, again, skip = _commands(src, gen, tmp_path / "straight")[name]
    took = _run(first, env)
    want = _tree(tmp_path / "straight", skip)
    assert want
    first, again, _ = _commands(src, gen, tmp_path / "killed")[name]
    killed = [_run(first if k == 0 else again, env, kill_after=max(0.5, frac * took)) is None
              for k, frac in enumerate(KILL_AFTER)]
    assert killed[0], "the first kill came after the command had finished"
    _run(again, env)
    assert _tree(tmp_path / "killed", skip) == want
    if name == "evaluate":  # its reports carry the time taken; the figures must agree
        import json

        a = json.loads((tmp_path / "straight" / "metrics.json").read_text())
        b = json.loads((tmp_path / "killed" / "metrics.json").read_text())
        a.pop("seconds", None)
        b.pop("seconds", None)
        assert a == b
