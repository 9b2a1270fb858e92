"""The polyphonic benchmark command (needs ../shared/benchmarks; skipped without it)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tunesmith.evaluate.polyphonic import load_mat
from tunesmith.represent import frames

JSB = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "bl-polyphonic" / "JSB_Chorales.mat"
needs_data = pytest.mark.skipif(not JSB.is_file(), reason=f"benchmark data not found at {JSB} (clone without ../shared)")


@needs_data
def test_mat_reads_with_the_published_split_sizes():
    d = load_mat(JSB)
    assert [len(d[s]) for s in ("train", "valid", "test")] == [229, 76, 77]
    assert sum(len(r) for r in d["test"]) == 4725
    r = d["test"][0]
    np.testing.assert_array_equal(frames.tokens_to_roll(frames.roll_to_tokens(r)), r)


@needs_data
def test_published_table_is_read_from_the_benchmark_readme(tmp_path):
    from tunesmith.evaluate.polyphonic import published_results

    jsb, nott = published_results(JSB), published_results(JSB.with_name("Nottingham.mat"))
    assert jsb["RNN-NADE"] == 5.56 and nott["RNN-NADE"] == 2.31 and jsb["LSTM"] == 8.45
    assert min(jsb, key=jsb.get) == "RNN-NADE" and len(jsb) == len(nott) >= 7
    assert published_results(tmp_path / "other.mat") == {}  # a file of this layout without the table


def test_mat_errors(tmp_path):
    from scipy.io import savemat

    from tunesmith.errors import BadInputError

    p = tmp_path / "wrong-keys.mat"
    savemat(p, {"foo": np.zeros((2, 2))})
    with pytest.raises(BadInputError, match="traindata"):
        load_mat(p)
    q = tmp_path / "not-mat.mat"
    q.write_text("hello")
    with pytest.raises(BadInputError, match="not a readable .mat"):
        load_mat(q)


@needs_data
@pytest.mark.slow
def test_train_then_checkpoint_reproduces_the_figure(tmp_path):
    base = [sys.executable, "-m", "tunesmith", "bench", "nll", "--data", str(JSB), "--quiet"]
    r = subprocess.run(base + ["--family", "gru", "--size", "debug", "--train-minutes", "0.3", "--out", str(tmp_path / "r")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    first = json.loads((tmp_path / "r" / "bench_nll.json").read_text())
    assert 3 < first["test_nll_per_frame"] < 60 and first["test_frames"] == 4725
    r = subprocess.run(base + ["--checkpoint", str(tmp_path / "r"), "--out", str(tmp_path / "e")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    again = json.loads((tmp_path / "e" / "bench_nll.json").read_text())
    assert again["test_nll_per_frame"] == pytest.approx(first["test_nll_per_frame"], rel=1e-6)


SHIPPED = Path(__file__).resolve().parents[1] / "src" / "tunesmith" / "assets" / "benchmarks"
SHIPPED_NAMES = sorted(p.name for p in SHIPPED.iterdir() if (p / "config.json").is_file())


def test_a_checkpoint_is_shipped_for_both_data_sets():
    data = {json.loads((SHIPPED / n / "config.json").read_text())["benchmark_data"] for n in SHIPPED_NAMES}
    assert data == {"JSB_Chorales", "Nottingham"}


@needs_data
@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_shipped_checkpoint_reproduces_benchmarks_md(name):
    """The shipped checkpoint gives the figure benchmarks/polyphonic.py recorded on a fixed subset
    (the first test pieces; the whole split is re-scored by make bench), and the whole-split
    figure in BENCHMARKS.md is that file's and below every published row."""
    from tunesmith.evaluate.polyphonic import frame_corpus, nll_first_test_pieces, published_results
    from tunesmith.models import registry
    from tunesmith.models.checkpoint import load_weights

    root = Path(__file__).resolve().parents[1]
    cfg = json.loads((SHIPPED / name / "config.json").read_text())
    data = JSB.parent / f"{cfg['benchmark_data']}.mat"
    rows = json.loads((root / "benchmarks" / "results-polyphonic.json").read_text())["rows"]
    want = next(r for r in rows if r["checkpoint"] == name)
    model = registry.build(cfg["family"], cfg["model"])
    load_weights(model, SHIPPED / name)
    got, frames_scored = nll_first_test_pieces(model, frame_corpus(load_mat(data), data.stem),
                                               want["test_first_pieces"]["pieces"])
    assert frames_scored == want["test_first_pieces"]["frames"]
    assert got == pytest.approx(want["test_first_pieces"]["nll_per_frame"], abs=5e-4)
    assert f"**{want['test_nll_per_frame']:.3f}**" in (root / "BENCHMARKS.md").read_text()
    published = published_results(data)
    assert len(published) >= 7
    assert want["test_nll_per_frame"] < min(published.values())


def test_shipped_checkpoint_by_name_on_another_file(tmp_path, capsys, monkeypatch):
    """--checkpoint takes a shipped checkpoint's name; results go under runs/, never into
    the package; a file other than the one it was trained on is noted."""
    from scipy.io import savemat

    from tunesmith.cli import main

    rng = np.random.default_rng(0)
    rolls = np.empty((1, 2), dtype=object)
    for k in range(2):
        r = np.zeros((12, 88))
        r[np.arange(12), rng.integers(30, 60, 12)] = 1
        rolls[0, k] = r
    p = tmp_path / "mine.mat"
    savemat(p, {"traindata": rolls, "validdata": rolls, "testdata": rolls})
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "nll", "--data", str(p), "--checkpoint", "jsb-lstm"]) == 0
    res = json.loads((tmp_path / "runs" / "bench-mine-jsb-lstm" / "bench_nll.json").read_text())
    assert res["test_frames"] == 24 and res["family"] == "lstm" and 0 < res["test_nll_per_frame"] < 50
    err = capsys.readouterr().err
    assert "trained on another file" in err


@pytest.mark.parametrize("limit", [7, 8, 33, 1000])
def test_sliding_window_scores_every_token_once(limit):
    """A piece longer than the model's context is scored in overlapping windows; with a
    uniform model the total is (tokens − 1)·log V whatever the window."""
    import math
    from types import SimpleNamespace

    import torch

    from tunesmith.evaluate.polyphonic import frame_corpus, nll_per_frame

    class Uniform(torch.nn.Module):
        config = SimpleNamespace(block_size=limit)

        def forward(self, x, targets=None, allowed=None):
            return torch.zeros(*x.shape, frames.VOCAB_SIZE), None

        def log_prob(self, x, allowed=None):
            return torch.full((x.shape[0],), -(x.shape[1] - 1) * math.log(frames.VOCAB_SIZE))

    rng = np.random.default_rng(1)
    rolls = [(rng.random((n, 88)) < 0.03).astype(float) for n in (5, 40)]
    c = frame_corpus({"train": rolls, "valid": rolls, "test": rolls})
    nll, n = nll_per_frame(Uniform(), c, "test")
    tokens = sum(len(s) - 1 for s in c.splits["test"])
    assert n == 45 and nll * n == pytest.approx(tokens * math.log(frames.VOCAB_SIZE))


def _toy_mat(path, pieces=6, frames_per_piece=20, seed=0):
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    rolls = np.empty((1, pieces), dtype=object)
    for k in range(pieces):
        r = np.zeros((frames_per_piece, 88))
        r[np.arange(frames_per_piece), rng.integers(30, 60, frames_per_piece)] = 1
        r[np.arange(frames_per_piece), rng.integers(20, 30, frames_per_piece)] = 1
        rolls[0, k] = r
    savemat(path, {"traindata": rolls, "validdata": rolls[:, :2], "testdata": rolls[:, 2:4]})
    return path


def test_bench_training_resumes_with_the_runs_own_settings(tmp_path):
    from tunesmith.cli import main

    p = _toy_mat(tmp_path / "toy.mat")
    run = tmp_path / "run"
    base = ["bench", "nll", "--data", str(p), "--out", str(run), "--quiet", "--size", "debug", "--batch-size", "2"]
    assert main(base + ["--family", "gru", "--epochs", "1"]) == 0
    first = json.loads((run / "bench_nll.json").read_text())
    # another family than the run's is refused; without --family the run's own family and settings continue
    assert main(base + ["--family", "lstm", "--epochs", "3", "--resume"]) == 2
    assert main(base + ["--epochs", "3", "--resume"]) == 0
    second = json.loads((run / "bench_nll.json").read_text())
    assert first["family"] == second["family"] == "gru"
    assert second["steps"] == 3 * first["steps"]
    assert [r["epoch"] for r in json.loads((run / "metrics.json").read_text())] == [1, 2, 3]
    other = _toy_mat(tmp_path / "other.mat", seed=5)
    assert main(["bench", "nll", "--data", str(other), "--out", str(run), "--quiet", "--resume"]) == 2


@pytest.mark.parametrize("family", ["lstm", "transformer"])
def test_batched_scoring_equals_one_piece_at_a_time(family):
    import torch

    from tunesmith.evaluate.polyphonic import frame_corpus, nll_per_frame
    from tunesmith.models.registry import build_model, make_config

    rng = np.random.default_rng(2)
    rolls = [(rng.random((n, 88)) < 0.04).astype(float) for n in (3, 9, 17, 30, 31)]
    c = frame_corpus({"train": rolls, "valid": rolls, "test": rolls})
    torch.manual_seed(0)
    m = build_model(family, make_config(family, frames.VOCAB_SIZE, "debug"))
    one, n1 = nll_per_frame(m, c, "test", batch_tokens=1)
    batched, n2 = nll_per_frame(m, c, "test")
    assert n1 == n2 == 90 and batched == pytest.approx(one, rel=1e-5)
