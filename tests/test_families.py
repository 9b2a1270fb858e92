"""One harness for every registered family (as MidiTok tests every tokenizer): built tiny,
saved, loaded back through the one loader with identical weights, and — where the family
generates — sampled through its wrapper with exactly the controls it declares."""

import numpy as np
import pytest
import torch

from tunesmith.generate.base import Generated, capabilities, check_controls
from tunesmith.models import registry
from tunesmith.models.checkpoint import write_checkpoint
from tunesmith.represent import satb
from tunesmith.represent.tokens import EventTokenizer

TINY = {
    "rnn": {"n_layer": 1, "n_embd": 16, "n_hidden": 24},
    "gru": {"n_layer": 1, "n_embd": 16, "n_hidden": 24},
    "lstm": {"n_layer": 1, "n_embd": 16, "n_hidden": 24},
    "transformer": {"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 64},
    "cnn": {"channels": 8, "n_layer": 2, "crop": 16},
    "gan": {"n_bars": 2, "steps_per_bar": 16, "g_channels": 16, "d_channels": 8, "z_shared": 8, "z_private": 4},
    "ddsp-gan": {"hidden": 16, "n_harmonics": 8, "n_bands": 9, "length": 4096, "hold": 0.15, "critic_width": 4},
    "wavegan": {"d": 1, "z_dim": 8, "length": 16384},
    "note-classifier": {"embed": 8, "segments": 2},
}


def test_every_registered_family_has_a_tiny_config_here():
    # a new family must join this harness
    assert set(TINY) == set(registry.FAMILIES)


def _meta(name: str, cfg: dict, tokens: str = "remi") -> dict:
    meta = {"family": name, "model": cfg, "name": f"tiny-{name}"}
    fam = registry.family(name)
    if fam.kind == "tokens":
        meta["tokenizer"] = satb.describe() if tokens == "satb" else EventTokenizer().to_dict()
    if fam.kind == "notes":
        meta["programs"] = [0, 24, 40, 73]
    return meta


CASES = [(n, "remi") for n in registry.FAMILIES] + [("lstm", "satb"), ("transformer", "satb")]


@pytest.mark.parametrize("name,tokens", CASES, ids=[f"{n}-{t}" if t == "satb" else n for n, t in CASES])
def test_family_builds_saves_loads_and_samples(name, tokens, tmp_path):
    fam = registry.family(name)
    cfg = dict(TINY[name])
    if fam.kind == "tokens":
        cfg["vocab_size"] = satb.VOCAB_SIZE if tokens == "satb" else EventTokenizer().vocab_size
    torch.manual_seed(0)
    model = registry.build(name, cfg)
    full = registry.config_to_dict(getattr(model, "config", None) or model.cfg)
    path = write_checkpoint(tmp_path / f"tiny-{name}", model, _meta(name, full, tokens))
    loaded, saved_cfg, where = registry.load(path)
    assert saved_cfg["family"] == name and where == path
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    if fam.wrapper is None:
        with pytest.raises(Exception, match="does not generate"):
            fam.wrapper_class()
        return
    from tunesmith.generate.api import load_model

    gen = load_model(path)
    caps = capabilities(gen)
    if "audio" in caps:
        wav = gen.generate(60, gen.instruments()[0], num=1, seed=0)
        assert wav.shape[0] == 1 and np.isfinite(wav).all()
        return
    out = gen.generate(bars=1, seed=0)
    assert isinstance(out, Generated) and out.bars == 1 and out.score.n_notes >= 0
    again = gen.generate(bars=1, seed=0)
    assert out.score.music.dumps_midi() == again.score.music.dumps_midi()  # same seed, same piece
    # every control outside the declared capabilities is refused, by name
    for control, value in (("top_p", 0.9), ("iterations", 4), ("latent_scale", 0.5), ("rules", "strict"),
                           ("primer", None)):
        if value is None:
            continue
        if control not in caps and not (control == "top_p" and "top_p" in caps):
            with pytest.raises(Exception, match=control.replace("_", "[-_]")):
                check_controls(gen, {control: value})


# --------------------------------------------------------------------------- one loop for every family


class _Killed(Exception):
    pass


def _train_tiny(name: str, run, notes, *, resume: bool = False, budget_minutes: float | None = None,
                epochs: int = 2) -> dict:
    """Train family ``name`` tiny for a few steps through its entry to the one loop."""
    fam = registry.family(name)
    common = dict(epochs=epochs, checkpoint_every=2, seed=5, max_minutes=budget_minutes)
    if fam.kind == "tokens":
        from tests.test_train import V, toy_corpus

        from tunesmith.train.trainer import TrainConfig, train

        cfg = registry.make_config(name, V, "debug", dropout=0.1)
        return train(run, name, cfg, toy_corpus(n=12), TrainConfig(batch_size=4, seq_len=32, warmup_steps=2,
                                                                  augment_transpose=True, **common),
                     resume=resume, progress=False)
    if fam.kind == "roll":
        from tunesmith.represent.voices import N_CLASSES
        from tunesmith.train.roll_trainer import RollTrainConfig, train_rolls

        rng = np.random.default_rng(0)
        voices = lambda n: [rng.integers(1, N_CLASSES, (4, 64)).astype(np.int8) for _ in range(n)]  # noqa: E731
        data = {"train": voices(6), "valid": voices(2), "test": []}
        return train_rolls(run, name, TINY[name], data, RollTrainConfig(steps_per_epoch=3, batch_size=2, n_critic=1,
                                                                        warmup_steps=2, **common),
                           resume=resume, progress=False)
    if fam.kind == "notes":
        from tunesmith.train.notes import WaveTrainConfig, train_notes

        over = {k: v for k, v in TINY[name].items() if k not in ("length", "hold")}
        return train_notes(run, notes, over, WaveTrainConfig(steps_per_epoch=3, batch_size=4, n_critic=1,
                                                                 warmup_steps=2, **common),
                           family=name, resume=resume, progress=False)
    from tunesmith.models.note_classifier import ClassifierConfig
    from tunesmith.train.notes import ClassifierTrainConfig, train_classifier

    cfg = ClassifierConfig(n_pitches=3, pitch_lo=60, families=[0, 5], segments=2, embed=8)
    return train_classifier(run, notes, cfg, ClassifierTrainConfig(batch_size=4, **common), resume=resume,
                            progress=False)


@pytest.mark.parametrize("name", list(registry.FAMILIES))
def test_every_family_trains_resumes_bit_identically_and_writes_its_run(name, notes, tmp_path, monkeypatch):
    """One loop: every family trains, writes best/ last/ metrics curves summary, and a run
    interrupted between checkpoints (no cleanup, as after kill -9) and resumed ends with
    the same weights as one that never stopped."""
    import os

    from safetensors.torch import load_file

    assert registry.family(name).step_class() is not None
    straight = _train_tiny(name, tmp_path / "straight", notes)
    assert straight["steps"] >= 4 and straight["stop_reason"] == "epochs done"
    for f in ("best/model.safetensors", "last/trainer.safetensors", "metrics.csv", "metrics.json", "curves.png",
              "summary.json"):
        assert (tmp_path / "straight" / f).is_file(), f

    def killed(code):
        raise _Killed(code)

    monkeypatch.setattr(os, "_exit", killed)
    monkeypatch.setenv("TUNESMITH_CRASH_AT_STEP", "3")  # between the checkpoints at steps 2 and 4
    with pytest.raises(_Killed):
        _train_tiny(name, tmp_path / "killed", notes)
    monkeypatch.delenv("TUNESMITH_CRASH_AT_STEP")
    with pytest.raises(Exception, match="--resume"):
        _train_tiny(name, tmp_path / "killed", notes)
    again = _train_tiny(name, tmp_path / "killed", notes, resume=True)
    assert again["steps"] == straight["steps"]
    a = load_file(str(tmp_path / "straight" / "last" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "last" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", ["lstm", "cnn"])
def test_a_time_budget_becomes_steps_and_a_resumed_budget_run_is_reproducible(name, notes, tmp_path,
                                                                               monkeypatch):
    """--train-minutes decides the number of steps once (from the pace of the first steps;
    here a steady clock of 2 s per step): schedule and stop then follow steps, so a run
    interrupted and resumed ends with the weights of one that never stopped."""
    import json
    import os

    from safetensors.torch import load_file

    monkeypatch.setenv("TUNESMITH_STEP_SECONDS", "2")
    budget = 0.4  # 24 s: 12 steps at 2 s each, fewer than the 6 epochs planned (18 or 30 steps)
    straight = _train_tiny(name, tmp_path / "straight", notes, budget_minutes=budget, epochs=6)
    assert straight["planned_steps"] == 12 and straight["steps"] == 12 and straight["stop_reason"] == "time limit"
    hist = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    # the cosine ran to the planned 12 steps, not to the 6 epochs: near its floor (0.1 of the peak) at the end
    peak = max(r["lr"] for r in hist)
    assert hist[-1]["step"] == 12 and hist[-1]["lr"] < 0.2 * peak

    def killed(code):
        raise _Killed(code)

    monkeypatch.setattr(os, "_exit", killed)
    monkeypatch.setenv("TUNESMITH_CRASH_AT_STEP", "9")
    with pytest.raises(_Killed):
        _train_tiny(name, tmp_path / "killed", notes, budget_minutes=budget, epochs=6)
    monkeypatch.delenv("TUNESMITH_CRASH_AT_STEP")
    again = _train_tiny(name, tmp_path / "killed", notes, resume=True, budget_minutes=budget, epochs=6)
    assert again["steps"] == 12 and again["planned_steps"] == 12
    a = load_file(str(tmp_path / "straight" / "last" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "last" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
