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
