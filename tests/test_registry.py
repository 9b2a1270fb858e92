"""The one family registry, the one loader and the one generation interface."""

import json

import pytest
import torch

from tunesmith.errors import BadInputError, ParameterError, TunesmithError
from tunesmith.models import registry
from tunesmith.models.checkpoint import write_checkpoint


@pytest.mark.parametrize("name", list(registry.FAMILIES))
def test_every_family_row_builds_its_model_and_names_its_wrapper(name):
    fam = registry.family(name)
    cfg = fam.config_class()()
    if name in registry.SEQUENCE_FAMILIES and name != "transformer":
        cfg.cell = name
    module = registry.build(name, cfg)
    assert isinstance(module, fam.model_class()) and isinstance(module, torch.nn.Module)
    assert fam.capabilities <= set(registry.CAPABILITIES)
    if fam.wrapper is None:
        with pytest.raises(TunesmithError, match="does not generate"):
            fam.wrapper_class()
    else:
        wrapper = fam.wrapper_class()
        assert hasattr(wrapper, "from_loaded") and hasattr(wrapper, "generate")


def test_unknown_family_names_the_known_ones():
    with pytest.raises(TunesmithError, match="unknown model family 'vae'; known: rnn, gru, lstm"):
        registry.family("vae")


def test_resolve_bundled_benchmark_run_and_checkpoint_folders(tmp_path):
    assert registry.resolve("chorale-cnn") == registry.BUNDLED_DIR / "chorale-cnn"
    assert registry.resolve("jsb-lstm") == registry.BENCHMARK_DIR / "jsb-lstm"
    m = registry.build("cnn", {"channels": 8, "n_layer": 2})
    write_checkpoint(tmp_path / "run" / "best", m, {"family": "cnn", "model": {"channels": 8, "n_layer": 2}})
    write_checkpoint(tmp_path / "run" / "last", m, {"family": "cnn", "model": {"channels": 8, "n_layer": 2}})
    assert registry.resolve(tmp_path / "run") == tmp_path / "run" / "best"
    assert registry.resolve(tmp_path / "run" / "last") == tmp_path / "run" / "last"
    loaded, cfg, path = registry.load(tmp_path / "run")
    assert cfg["family"] == "cnn" and path.name == "best" and not loaded.training
    assert registry.model_name(path, cfg) == "run"
    with pytest.raises(ParameterError, match="unknown model 'no-such'") as e:
        registry.resolve("no-such")
    assert e.value.cli_message().startswith("--model: unknown model")
    assert str(e.value).startswith("model: unknown model")  # the Python API names the parameter
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="not a tunesmith checkpoint"):
        registry.resolve(tmp_path / "empty")


def test_a_folder_of_an_unknown_or_unwanted_family_is_named(tmp_path):
    m = registry.build("cnn", {"channels": 8, "n_layer": 2})
    write_checkpoint(tmp_path / "odd", m, {"family": "vae", "model": {}})
    with pytest.raises(BadInputError, match="names no known model family \\(found 'vae'"):
        registry.load(tmp_path / "odd")
    with pytest.raises(BadInputError, match="is a cnn model; this needs ddsp-gan or wavegan"):
        registry.load("chorale-cnn", families=("ddsp-gan", "wavegan"))


@pytest.mark.parametrize("family,model", [("lstm", {"cell": "lstm", "n_hidden": 10**7}),
                                          ("transformer", {"n_embd": 10**6, "n_head": 4}),
                                          ("cnn", {"channels": 10**6}),
                                          ("gan", {"g_channels": 10**7}),
                                          ("wavegan", {"d": 10**4}),
                                          ("ddsp-gan", {"hidden": 10**7})])
def test_absurd_sizes_in_a_config_are_refused_before_allocating(tmp_path, family, model):
    good = registry.build("cnn", {"channels": 8, "n_layer": 2})
    write_checkpoint(tmp_path / "m", good, {"family": family, "model": model})
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["model"] == model
    with pytest.raises(TunesmithError, match=f"this {family} configuration cannot be built"):
        registry.load(tmp_path / "m")


# ---- one generation interface: an option a family cannot honour is refused ---------------

@pytest.mark.parametrize("model,controls,refused", [
    ("chorale-gan", {"temperature": 0.8}, "temperature"),
    ("chorale-gan", {"iterations": 10}, "iterations"),
    ("chorale-cnn", {"top_k": 5}, "top_k"),
    ("chorale-cnn", {"top_p": 0.9}, "top_p"),
    ("chorale-cnn", {"use_cache": False}, "use_cache"),
    ("chorale-cnn", {"latent_scale": 0.5}, "latent_scale"),
    ("chorale-cnn", {"primer": "x.mid"}, "primer"),
    ("folk", {"iterations": 10}, "iterations"),
    ("folk", {"threshold": 0.3}, "threshold"),
])
def test_a_control_the_family_cannot_honour_is_refused(tmp_path, model, controls, refused):
    from tunesmith.generate.api import generate_to_files

    with pytest.raises(ParameterError, match=f"^{refused}: the .* model '{model}' does not take this control"):
        generate_to_files(model, tmp_path / "o", bars=1, **controls)
    assert not (tmp_path / "o").exists()


def test_generators_share_one_interface_and_report_their_controls(tmp_path):
    from tunesmith.generate.api import Generated, Generator, capabilities, load_model

    gan = load_model("chorale-gan")
    assert isinstance(gan, Generator) and capabilities(gan) == registry.family("gan").capabilities
    a = gan.generate(bars=4, seed=1, latent_scale=0.5)
    b = gan.generate(bars=4, seed=1, latent_scale=1.0)
    assert isinstance(a, Generated) and a.bars == 4
    assert a.score.n_notes > 0 and bytes(a.score.music.dumps_midi()) != bytes(b.score.music.dumps_midi())
    with pytest.raises(TypeError):
        gan.generate(bars=4, temperature=0.5)  # no silent **_ignored
    with pytest.raises(ParameterError, match="latent_scale: must be positive"):
        gan.generate(bars=4, latent_scale=0)
    notes = load_model("notes-gan")
    assert "audio" in capabilities(notes)


def test_cli_refuses_a_control_with_its_flag(tmp_path, cli):
    r = cli("generate", "--model", "chorale-cnn", "--top-p", "0.9", "--out", tmp_path / "o")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == ("tunesmith: error: --top-p: the cnn model 'chorale-cnn' does not take this control; "
                                "it takes: iterations, key, rules, temperature")
    r = cli("generate", "--model", "notes-gan", "--out", tmp_path / "o")
    assert r.returncode == 2 and "use 'tunesmith audio generate'" in r.stderr
    r = cli("generate", "--model", "chorale-gan", "--device", "cuda", "--out", tmp_path / "o")
    assert r.returncode == 2 and "--device: a gan model generates on the CPU only" in r.stderr
