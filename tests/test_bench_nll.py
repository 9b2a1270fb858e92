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
    r = subprocess.run(base + ["--model", "gru", "--size", "debug", "--train-minutes", "0.3", "--out", str(tmp_path / "r")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    first = json.loads((tmp_path / "r" / "bench_nll.json").read_text())
    assert 3 < first["test_nll_per_frame"] < 60 and first["test_frames"] == 4725
    r = subprocess.run(base + ["--checkpoint", str(tmp_path / "r"), "--out", str(tmp_path / "e")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    again = json.loads((tmp_path / "e" / "bench_nll.json").read_text())
    assert again["test_nll_per_frame"] == pytest.approx(first["test_nll_per_frame"], rel=1e-6)


SHIPPED_JSB = Path(__file__).resolve().parents[1] / "src" / "tunesmith" / "assets" / "benchmarks" / "jsb-lstm"


@needs_data
@pytest.mark.slow
def test_shipped_jsb_checkpoint_reproduces_benchmarks_md(tmp_path):
    """The figure in BENCHMARKS.md (via benchmarks/results-polyphonic.json) is what the
    shipped checkpoint gives on the test split."""
    root = Path(__file__).resolve().parents[1]
    rows = json.loads((root / "benchmarks" / "results-polyphonic.json").read_text())["rows"]
    want = next(r for r in rows if r["checkpoint"] == "jsb-lstm")
    r = subprocess.run([sys.executable, "-m", "tunesmith", "bench", "nll", "--data", str(JSB), "--checkpoint",
                        str(SHIPPED_JSB), "--out", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads((tmp_path / "bench_nll.json").read_text())
    assert got["test_nll_per_frame"] == pytest.approx(want["test_nll_per_frame"], abs=5e-4)
    assert f"**{want['test_nll_per_frame']:.3f}**" in (root / "BENCHMARKS.md").read_text()
    assert got["test_nll_per_frame"] < 5.56  # below the best published row (RNN-NADE)
