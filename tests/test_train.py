"""Training: a few steps in seconds, atomic checkpoints, exact resume, DDP replicas."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tunesmith.models.registry import make_config
from tunesmith.train.data import TokenCorpus
from tunesmith.train.trainer import TrainConfig, train

V = 30


def toy_corpus(n=40, seed=0):
    """Sequences over a tiny vocabulary: BOS=1, EOS=2, PAD=0, 'pitches' 3..29, with structure to learn."""
    rng = np.random.default_rng(seed)

    def seq():
        start = int(rng.integers(3, 15))
        body = [start + (i % 5) for i in range(int(rng.integers(20, 60)))]
        return np.array([1, *body, 2], dtype=np.int16)

    return TokenCorpus(vocab_size=V, pad_id=0, bos_id=1, eos_id=2, pitch_first_id=3, n_pitch_tokens=27,
                       splits={"train": [seq() for _ in range(n)], "valid": [seq() for _ in range(8)], "test": []})


def tc(**kw):
    base = dict(epochs=3, batch_size=4, seq_len=32, lr=3e-3, warmup_steps=5, checkpoint_every=7,
                augment_transpose=True, seed=3)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("family", ["rnn", "gru", "lstm", "transformer"])
def test_few_steps_learn_and_write_run_folder(tmp_path, family):
    cfg = make_config(family, V, "debug")
    s = train(tmp_path / "run", family, cfg, toy_corpus(), tc(), progress=False)
    hist = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert hist[-1]["valid_nll"] < hist[0]["valid_nll"] < np.log(V) + 0.5
    for f in ("best/model.safetensors", "best/config.json", "last/trainer.safetensors", "curves.png", "metrics.csv"):
        assert (tmp_path / "run" / f).exists(), f
    assert s["steps"] > 0


def test_resume_after_kill_matches_uninterrupted(tmp_path):
    corpus = toy_corpus()
    cfg = make_config("lstm", V, "debug", dropout=0.1)  # dropout: the RNG state must be restored too
    train(tmp_path / "straight", "lstm", cfg, corpus, tc(), progress=False)
    # The same run killed (os._exit, like kill -9) at step 17, between checkpoints (every 7 steps).
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "from tests.test_train import toy_corpus, tc\n"
        "from tunesmith.models.registry import make_config\n"
        "from tunesmith.train.trainer import train\n"
        "train(%r, 'lstm', make_config('lstm', %d, 'debug', dropout=0.1), toy_corpus(), tc(), progress=False)\n"
    ) % (os.getcwd(), str(tmp_path / "killed"), V)
    r = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, TUNESMITH_CRASH_AT_STEP="17"),
                       capture_output=True, text=True)
    assert r.returncode == 137, r.stderr
    assert json.loads((tmp_path / "killed" / "last" / "config.json").read_text())["metrics"]["step"] == 14
    train(tmp_path / "killed", "lstm", cfg, corpus, tc(), resume=True, progress=False)
    a = load_file(str(tmp_path / "straight" / "last" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "last" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_existing_run_needs_resume(tmp_path):
    from tunesmith.errors import TunesmithError

    cfg = make_config("gru", V, "debug")
    train(tmp_path / "r", "gru", cfg, toy_corpus(), tc(epochs=1), progress=False)
    with pytest.raises(TunesmithError, match="--resume"):
        train(tmp_path / "r", "gru", cfg, toy_corpus(), tc(epochs=1), progress=False)
    with pytest.raises(TunesmithError, match="nothing to resume"):
        train(tmp_path / "empty", "gru", cfg, toy_corpus(), tc(epochs=1), resume=True, progress=False)


@pytest.mark.slow
def test_two_process_ddp_keeps_replicas_identical(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(
        "import sys, torch, torch.distributed as dist\n"
        "sys.path.insert(0, %r)\n"
        "from tests.test_train import toy_corpus, tc\n"
        "from tunesmith.models.registry import make_config\n"
        "from tunesmith.train import trainer\n"
        "out = %r\n"
        "captured = {}\n"
        "orig = trainer.build_model\n"
        "def spy(f, c):\n"
        "    m = orig(f, c); captured['m'] = m; return m\n"
        "trainer.build_model = spy\n"
        "trainer.train(out, 'gru', make_config('gru', 30, 'debug'), toy_corpus(), tc(epochs=2), progress=False)\n"
        "flat = torch.cat([p.detach().flatten() for p in captured['m'].parameters()])\n"
        "if not dist.is_initialized(): dist.init_process_group('gloo')\n"
        "lst = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]\n"
        "dist.all_gather(lst, flat)\n"
        "assert dist.get_world_size() == 2\n"
        "assert torch.equal(lst[0], lst[1]), 'replicas differ'\n"
        "print('REPLICAS-IDENTICAL')\n" % (os.getcwd(), str(tmp_path / "run"))
    )
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                        "29533", str(script)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("REPLICAS-IDENTICAL") == 2
    assert (tmp_path / "run" / "best" / "model.safetensors").exists()


def test_learning_rate_anneals_within_a_time_budget():
    from tunesmith.train.trainer import TrainConfig, lr_at

    tc = TrainConfig(lr=1e-3, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(5, 10_000, tc) == pytest.approx(6e-4)  # warm-up
    assert lr_at(100, 10_000, tc, seconds=3000) > 9.9e-4  # no budget: by steps only
    timed = TrainConfig(lr=1e-3, warmup_steps=10, min_lr_ratio=0.1, max_minutes=50)
    assert lr_at(100, 10_000, timed, seconds=1500) == pytest.approx(5.5e-4)  # half the budget: cosine midpoint
    assert lr_at(100, 10_000, timed, seconds=3000) == pytest.approx(1e-4)  # budget spent: the floor
    assert lr_at(10_000, 10_000, timed, seconds=10) == pytest.approx(1e-4)  # steps done first


def test_resume_with_another_family_is_refused(tmp_path, capsys):
    import shutil

    from tunesmith.cli import main
    from tunesmith.music.corpora import corpus_files

    src = tmp_path / "src"
    src.mkdir()
    for f in corpus_files("bach-chorales")[:12]:
        shutil.copy(f, src / f.name)
    base = ["train", "--size", "debug", "--data", str(src), "--out", str(tmp_path / "run"), "--quiet"]
    assert main([*base, "--family", "lstm", "--epochs", "1", "--max-steps", "4"]) == 0
    capsys.readouterr()
    assert main([*base, "--family", "gru", "--epochs", "2", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "--family: the run in" in err and "is a lstm model, not gru" in err
    assert main([*base, "--family", "lstm", "--epochs", "2", "--resume"]) == 0
    summary = __import__("json").loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["best_valid_nll"] is not None and summary["best_valid_nll"] < 100
