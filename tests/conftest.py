import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest
import symusic

from tunesmith.music.score import Meta, Score

SHARED = Path(__file__).resolve().parents[2] / "shared"


@contextmanager
def tunesmith_home_at(home: Path):
    """TUNESMITH_HOME set to ``home`` for the duration (for fixtures wider than a function,
    where monkeypatch cannot reach), the previous value restored after."""
    old = os.environ.get("TUNESMITH_HOME")
    os.environ["TUNESMITH_HOME"] = str(home)
    try:
        yield home
    finally:
        if old is None:
            os.environ.pop("TUNESMITH_HOME", None)
        else:
            os.environ["TUNESMITH_HOME"] = old


@pytest.fixture
def cli(capsys):
    """``tunesmith ARGS`` run in this process, answered as ``subprocess.run`` answers (returncode,
    stdout, stderr). For refusals and other quick commands: a ``python -m tunesmith`` process costs
    about 4 s of start-up (interpreter, torch) before it can refuse anything. A test that needs the
    real entry point, a crash or a kill still starts a process."""
    import torch

    from tunesmith.cli import main

    def run(*args) -> subprocess.CompletedProcess:
        capsys.readouterr()
        threads = torch.get_num_threads()  # a --threads option must not outlive the command
        try:
            rc = main([str(a) for a in args])
        except SystemExit as e:  # argparse's own errors
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        finally:
            torch.set_num_threads(threads)
        out = capsys.readouterr()
        return subprocess.CompletedProcess([str(a) for a in args], rc, out.out, out.err)

    return run


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory):
    """Datasets prepared by tests go to a temporary TUNESMITH_HOME, not the user's cache."""
    with tunesmith_home_at(tmp_path_factory.mktemp("tunesmith-home")) as home:
        yield home


def share_folk_corpus(home: Path, session_home: Path) -> None:
    """Let a home made for one test module (the studio's own) use the folk corpus prepared,
    and the copy guards built, in the session's home: the first folk tune in a fresh home
    prepares all 1,129 folk files (about 40 s), once per session is enough. Every other data
    set is still prepared in ``home`` (the studio's originality job prepares the chorales in
    its worker, as a fresh studio does)."""
    for rel in ("datasets/folk", "guard"):
        target = session_home / rel
        target.mkdir(parents=True, exist_ok=True)
        link = home / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target, target_is_directory=True)


def make_score(notes_by_track, *, tpq=480, time_sigs=((0, 4, 4),), tempos=((0, 120.0),), programs=None,
               drums=()) -> Score:
    """Build a Score in code: ``notes_by_track`` is a list of lists of (start, duration, pitch) in ticks."""
    m = symusic.Score(tpq)
    for t, n, d in time_sigs:
        m.time_signatures.append(symusic.TimeSignature(t, n, d))
    for t, q in tempos:
        m.tempos.append(symusic.Tempo(t, qpm=q))
    for i, notes in enumerate(notes_by_track):
        prog = programs[i] if programs else 0
        tr = symusic.Track(name=f"Track {i + 1}", program=prog, is_drum=i in drums)
        for s, d, p in notes:
            tr.notes.append(symusic.Note(s, d, p, 80))
        tr.notes.sort()
        m.tracks.append(tr)
    return Score(m, Meta(title="fixture"))


@pytest.fixture
def chorale_like():
    """Four voices, two bars of 4/4 in C major (quarter notes)."""
    q = 480
    s = [(i * q, q, p) for i, p in enumerate([72, 74, 76, 77, 79, 77, 76, 72])]
    a = [(i * q, q, p) for i, p in enumerate([67, 67, 67, 69, 71, 69, 67, 67])]
    t = [(i * q, q, p) for i, p in enumerate([64, 65, 64, 65, 62, 65, 60, 64])]
    b = [(i * q, q, p) for i, p in enumerate([48, 47, 48, 41, 43, 41, 48, 48])]
    return make_score([s, a, t, b])


@pytest.fixture(scope="session")
def notes(tmp_path_factory):
    """A tiny rendered note data set: piano and violin, pitches 60–62, two velocities."""
    from tunesmith.music.notes import AudioDataParams, build

    out = tmp_path_factory.mktemp("notes") / "ds"
    build(out, AudioDataParams(programs=[0, 40], pitch_lo=60, pitch_hi=62, velocities=[60, 100], length=4096,
                               hold=0.15), progress=False)
    return out
