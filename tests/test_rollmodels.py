"""The piano-roll models: Coconet (cnn) and the MuseGAN-style GAN."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from tests.conftest import make_score

from tunesmith.models.rollnets import (
    Coconet,
    CoconetConfig,
    GanConfig,
    RollGAN,
    gibbs_sample,
    gradient_penalty,
    ordered_nll,
    random_masks,
)
from tunesmith.represent.voices import N_CLASSES, PITCH_LO, score_to_voices, voices_to_score

TINY_CNN = {"channels": 8, "n_layer": 2, "crop": 16}


def _chorale(rng, bars=4):
    q = 480
    n = bars * 4
    base = [72, 65, 57, 45]
    return make_score([[(i * q, q, int(b + rng.integers(-3, 4))) for i in range(n)] for b in base])


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from tunesmith.music.dataset import Dataset, prepare
    from tunesmith.music.io import save_midi

    rng = np.random.default_rng(0)
    src = tmp_path_factory.mktemp("satb")
    for i in range(30):
        save_midi(_chorale(rng), src / f"c{i}.mid")
    r = prepare(str(src), tmp_path_factory.mktemp("satb-ds") / "ds", workers=1, progress=False)
    return Dataset(r.path)


@pytest.fixture(scope="module")
def cnn_ckpt(tmp_path_factory):
    """An untrained tiny Coconet saved as a checkpoint (harmonize/infill guarantees do not
    depend on training)."""
    from tunesmith.models.checkpoint import write_checkpoint

    torch.manual_seed(0)
    m = Coconet(CoconetConfig(**TINY_CNN))
    path = tmp_path_factory.mktemp("cnn") / "tiny-cnn"
    write_checkpoint(path, m, {"family": "cnn", "model": TINY_CNN, "name": "tiny-cnn"})
    return path


def test_voice_roll_round_trip(chorale_like):
    v = score_to_voices(chorale_like)
    assert v.shape == (4, 32)  # 8 quarter notes on a sixteenth grid
    assert v[0, 0] == 72 - PITCH_LO + 1 and v[3, 0] == 48 - PITCH_LO + 1
    back = score_to_voices(voices_to_score(v))
    assert np.array_equal(back, v)
    assert score_to_voices(make_score([[(0, 480, 60)]])) is None


def test_coconet_shapes_and_masking():
    torch.manual_seed(0)
    m = Coconet(CoconetConfig(**TINY_CNN)).eval()
    x = torch.randint(0, N_CLASSES, (3, 4, 16))
    mask = random_masks(3, 4, 16, torch.Generator().manual_seed(0))
    assert mask.any(dim=(1, 2)).all()
    logits = m(x, mask)
    assert logits.shape == (3, 4, 16, N_CLASSES)
    # what is under the mask is never seen
    x2 = torch.where(mask, torch.randint(0, N_CLASSES, x.shape), x)
    assert torch.allclose(m(x2, mask), logits)
    assert torch.isfinite(m.loss(x, mask))


def test_gibbs_keeps_fixed_cells_and_ordered_nll():
    torch.manual_seed(0)
    m = Coconet(CoconetConfig(**TINY_CNN))
    x = torch.randint(1, N_CLASSES, (2, 4, 8))
    free = torch.zeros(2, 4, 8, dtype=torch.bool)
    free[:, 1:, 2:6] = True
    out = gibbs_sample(m, x, free, iterations=5, seed=1)
    assert torch.equal(out[~free], x[~free])
    assert not torch.equal(out[free], x[free])
    nll = ordered_nll(m, x[:, :, :4], seed=0)
    assert nll.shape == (2,) and torch.isfinite(nll).all() and (nll > 0).all()
    assert torch.allclose(nll, ordered_nll(m, x[:, :, :4], seed=0))


def test_gan_shapes_penalty_and_training_steps(tiny_data, tmp_path):
    from tunesmith.models.rollnets import gan_roll_to_classes
    from tunesmith.train.roll_trainer import RollTrainConfig, train_rolls, voice_corpus

    cfg = GanConfig(g_channels=32, d_channels=16)
    gan = RollGAN(cfg)
    g = torch.Generator().manual_seed(0)
    zs, zp = gan.sample_latents(5, g)
    roll = gan.G(zs, zp).detach()
    assert roll.shape == (5, 4, 4, 16, 48)
    # one distribution over pitch per voice and step (a softmax on the right axis)
    assert torch.allclose(roll.sum(-1), torch.ones(5, 4, 4, 16), atol=1e-5)
    assert gan.D(roll).shape == (5,)
    real = (torch.rand_like(roll) > 0.97).float()
    assert torch.isfinite(gradient_penalty(gan.D, real, roll, g))
    cls = gan_roll_to_classes(roll)
    assert cls.shape == (5, 4, 64) and int(cls.max()) <= 48
    data = voice_corpus(tiny_data, progress=False)
    tc = RollTrainConfig(epochs=2, steps_per_epoch=2, batch_size=4, lr=2e-4, n_critic=2)
    s = train_rolls(tmp_path / "gan", "gan", {"g_channels": 32, "d_channels": 16}, data, tc, progress=False)
    hist = json.loads((tmp_path / "gan" / "metrics.json").read_text())
    assert s["steps"] == 4 and len(hist) == 2
    assert all(np.isfinite([r["d_loss"], r["g_loss"], r["gp"]]).all() for r in hist)
    assert (tmp_path / "gan" / "samples" / "epoch-002.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "gan" / "curves.png").is_file()
    # best/ is chosen on validation: the epoch whose samples' voice statistics come closest
    assert s["best_valid"] == pytest.approx(min(r["valid_stats"] for r in hist), abs=1e-4)
    best = json.loads((tmp_path / "gan" / "best" / "config.json").read_text())
    assert best["metrics"]["best_valid"] == s["best_valid"]


def test_roll_statistics_distance_is_zero_for_the_same_rolls_and_grows_apart():
    from tunesmith.train.roll_trainer import roll_stat_distance

    x = torch.randint(0, N_CLASSES, (8, 4, 32))
    assert roll_stat_distance(x, x) == 0
    higher = torch.where(x > 0, (x + 12).clamp(max=N_CLASSES - 1), x)
    silent = torch.zeros_like(x)
    assert 0 < roll_stat_distance(higher, x) < roll_stat_distance(silent, x)


def test_gan_samples_are_valid_scores(tmp_path):
    from tunesmith.generate.api import load_model
    from tunesmith.models.checkpoint import write_checkpoint
    from tunesmith.music.io import load_score, save_midi

    small = {"g_channels": 32, "d_channels": 16}
    write_checkpoint(tmp_path / "g", RollGAN(GanConfig(**small)), {"family": "gan", "model": small})
    g = load_model(tmp_path / "g").generate(bars=6, seed=3, threshold=0.4)
    assert g.bars == 6 and g.score.n_tracks == 4
    back = load_score(save_midi(g.score, tmp_path / "x.mid"))
    assert back.end_tick <= 6 * 4 * back.tpq


def test_cnn_training_resumes_exactly(tiny_data, tmp_path):
    env = dict(os.environ, TUNESMITH_CRASH_AT_STEP="3")
    base = [sys.executable, "-m", "tunesmith", "train", "--family", "cnn", "--data", str(tiny_data.path),
            "--channels", "8", "--layers", "2", "--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "4",
            "--checkpoint-every", "2", "--threads", "1", "--quiet"]
    r = subprocess.run(base + ["--out", str(tmp_path / "a")], env=env, capture_output=True, text=True)
    assert r.returncode != 0
    r = subprocess.run(base + ["--out", str(tmp_path / "a"), "--resume"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(base + ["--out", str(tmp_path / "b")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    from safetensors.torch import load_file

    a = load_file(tmp_path / "a" / "last" / "model.safetensors")
    b = load_file(tmp_path / "b" / "last" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["steps"] == 6


def test_harmonize_keeps_the_melody_exactly(cnn_ckpt, tmp_path):
    from tunesmith.generate.api import load_model
    from tunesmith.music.io import load_score, save_midi

    tune = make_score([[(0, 480, 67), (480, 240, 69), (720, 240, 71), (960, 960, 72), (1920, 480, 72),
                        (2400, 480, 71), (2880, 960, 67)]])
    g = load_model(cnn_ckpt).harmonize(tune, iterations=4, seed=0)
    assert g.score.n_tracks == 4
    sop = g.score.music.tracks[0].notes.numpy()
    want = tune.music.tracks[0].notes.numpy()
    for k in ("time", "duration", "pitch"):
        assert np.array_equal(sop[k], want[k])
    for tr in g.score.music.tracks[1:]:
        assert len(tr.notes) > 0
    back = load_score(save_midi(g.score, tmp_path / "h.mid"))
    assert back.n_tracks == 4


def test_infill_changes_only_its_region(cnn_ckpt):
    from tunesmith.generate.api import load_model

    rng = np.random.default_rng(5)
    piece = _chorale(rng, bars=6)
    # a tenor note held from bar 2 into bar 3 must survive an infill of bars 3-4
    ten = piece.music.tracks[2]
    ten.notes[7].duration = 960
    del ten.notes[8]
    g = load_model(cnn_ckpt).infill(piece, bars=(3, 4), voices=[1, 2], iterations=4, seed=2)
    bar = 4 * 480
    lo, hi = 2 * bar, 4 * bar
    for i, (a, b) in enumerate(zip(piece.music.tracks, g.score.music.tracks)):
        na = [(n.time, n.duration, n.pitch) for n in a.notes]
        nb = [(n.time, n.duration, n.pitch) for n in b.notes]
        if i in (0, 3):
            assert na == nb  # voices not chosen: identical
        else:
            assert [n for n in na if not lo <= n[0] < hi] == [n for n in nb if not lo <= n[0] < hi]
            assert all(lo <= n[0] and n[0] + n[1] <= hi for n in nb if lo <= n[0] < hi)
    assert (7 * 480, 960, piece.music.tracks[2].notes[7].pitch) in [(n.time, n.duration, n.pitch)
                                                                  for n in g.score.music.tracks[2].notes]


def test_harmonize_and_infill_cli(cnn_ckpt, tmp_path, cli):
    from tunesmith.music.io import save_midi

    rng = np.random.default_rng(1)
    melody = tmp_path / "tune.abc"
    melody.write_text("X:1\nT:tune\nM:4/4\nL:1/4\nK:G\nGABc|d2BG|A2F2|G4|\n")
    r = cli("harmonize", melody, "--model", cnn_ckpt, "--out", tmp_path / "h", "--iterations", "3",
            "--formats", "mid,musicxml,png")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "h" / "tune-harmonize-000.mid").is_file() and (tmp_path / "h" / "tune-harmonize-000.musicxml").is_file()
    piece = save_midi(_chorale(rng), tmp_path / "p.mid")
    r = cli("infill", piece, "--bars", "2-3", "--voices", "alto,bass", "--model", cnn_ckpt, "--out", tmp_path / "i",
            "--iterations", "3", "--formats", "mid")
    assert r.returncode == 0, r.stderr
    for args, problem in ((["--bars", "7-9"], "outside the piece's bars 1-4"), (["--bars", "x"], "--bars"),
                          (["--bars", "1", "--voices", "viola"], "unknown voice 'viola'")):
        r = cli("infill", piece, *args, "--model", cnn_ckpt, "--out", tmp_path / "j")
        assert r.returncode == 2 and problem in r.stderr and "Traceback" not in r.stderr
    mono = save_midi(make_score([[(0, 480, 60)]]), tmp_path / "mono.mid")
    r = cli("infill", mono, "--bars", "1", "--model", cnn_ckpt, "--out", tmp_path / "k")
    assert r.returncode == 2 and "four-voice" in r.stderr
    assert not (tmp_path / "j").exists() and not (tmp_path / "k").exists()


def test_batched_generation_gives_distinct_reproducible_pieces(cnn_ckpt):
    from tunesmith.generate.api import load_model

    m = load_model(cnn_ckpt)
    a = m.generate_batch(5, bars=2, iterations=3, seed=1, batch=2)
    b = m.generate_batch(5, bars=2, iterations=3, seed=1, batch=2)
    assert len(a) == 5 and all(g.score.n_tracks == 4 for g in a)
    rolls = [score_to_voices(g.score) for g in a]
    assert all(np.array_equal(x, score_to_voices(g.score)) for x, g in zip(rolls, b))
    assert not np.array_equal(rolls[0], rolls[1]) and not np.array_equal(rolls[1], rolls[2])


def test_output_names_keep_the_whole_stem_and_earlier_pieces_are_not_replaced(cnn_ckpt, tmp_path, cli):
    import json as _json

    from tunesmith.music.io import save_midi

    melody = make_score([[(0, 480, 67), (480, 480, 69), (960, 960, 71), (1920, 1920, 72)]])
    for name in ("St. Anne.mid", "St. Patrick's Day.mid"):
        save_midi(melody, tmp_path / name)
    cmd = ["harmonize", "--model", cnn_ckpt, "--out", tmp_path / "h", "--iterations", "2", "--formats", "mid"]
    for name in ("St. Anne.mid", "St. Patrick's Day.mid"):
        r = cli(*cmd, tmp_path / name)
        assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in (tmp_path / "h").iterdir())
    assert names == ["St. Anne-harmonize-000.json", "St. Anne-harmonize-000.mid",
                     "St. Patrick's Day-harmonize-000.json", "St. Patrick's Day-harmonize-000.mid"]
    info = _json.loads((tmp_path / "h" / "St. Anne-harmonize-000.json").read_text())
    assert info["settings"]["iterations"] == 2 and info["settings"]["model"] == str(cnn_ckpt) and info["tunesmith"]
    before = (tmp_path / "h" / "St. Anne-harmonize-000.mid").read_bytes()
    r = cli(*cmd, "--temperature", "0.5", tmp_path / "St. Anne.mid")
    assert r.returncode == 2 and "--force: " in r.stderr and "already exists" in r.stderr
    assert (tmp_path / "h" / "St. Anne-harmonize-000.mid").read_bytes() == before
    r = cli(*cmd, "--temperature", "0.5", "--force", tmp_path / "St. Anne.mid")
    assert r.returncode == 0, r.stderr
