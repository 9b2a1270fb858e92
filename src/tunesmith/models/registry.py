"""The one table of model families and the one way from a name to a model.

Every family the toolkit trains has one row in :data:`FAMILIES`: what it is, its
config and model classes, the generation wrapper that serves it (in the layer above:
named by import path so this module imports nothing from there), what that wrapper
can do (its capabilities) and its size presets. :func:`resolve` turns a name or a
path into a checkpoint folder (bundled models, shipped benchmark checkpoints, run
folders and checkpoint folders alike); :func:`load` builds the family's module from
it with its weights. The CLI, evaluation and the studio all go through here.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from tunesmith.errors import BadInputError, ParameterError, TunesmithError
from tunesmith.models.checkpoint import load_weights, read_config, resolve_checkpoint

ASSETS = Path(__file__).resolve().parent.parent / "assets"
BUNDLED_DIR = ASSETS / "models"
BENCHMARK_DIR = ASSETS / "benchmarks"

SEQUENCE_FAMILIES = ("rnn", "gru", "lstm", "transformer")

# Sizes: "debug" trains in seconds for tests; "small" is the bundled size; "base" for a GPU.
PRESETS: dict[str, dict[str, dict]] = {
    "debug": {"rnn": dict(n_layer=1, n_embd=32, n_hidden=48),
              "transformer": dict(n_layer=2, n_head=2, n_embd=32, block_size=256)},
    "small": {"rnn": dict(n_layer=2, n_embd=256, n_hidden=512),
              "transformer": dict(n_layer=4, n_head=4, n_embd=256, block_size=1024)},
    "base": {"rnn": dict(n_layer=3, n_embd=512, n_hidden=1024),
             "transformer": dict(n_layer=8, n_head=8, n_embd=512, block_size=2048)},
}

# What a generation wrapper can be asked to do, besides generate from nothing with a seed.
CAPABILITIES = ("primer", "key", "temperature", "top_k", "top_p", "cache", "iterations", "latent_scale", "threshold",
                "harmonize", "infill", "batch", "audio", "velocity", "duration", "device", "rules", "particles")


@dataclass(frozen=True)
class Family:
    name: str
    kind: str  # "tokens" (event or frame tokens), "roll" (four-voice piano rolls), "notes" (audio), "classifier"
    description: str
    config: str  # "module:Class" of the config dataclass
    model: str  # "module:Class" of the torch module
    wrapper: str | None  # "module:Class" of the generation wrapper; None for models that do not generate
    capabilities: frozenset[str]
    step: str = ""  # "module:Class" of its training step for the one loop (tunesmith.train.loop.fit)

    def config_class(self):
        return _import(self.config)

    def model_class(self):
        return _import(self.model)

    def step_class(self):
        return _import(self.step)

    def wrapper_class(self):
        if self.wrapper is None:
            raise TunesmithError(f"a {self.name} model does not generate music")
        return _import(self.wrapper)


_TOKENS = frozenset({"primer", "key", "temperature", "top_k", "top_p", "cache", "device"})
_SEQ_STEP = "tunesmith.train.trainer:SequenceStep"
FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("rnn", "tokens", "Elman RNN (tanh) over event tokens", "tunesmith.models.rnn:RNNConfig",
           "tunesmith.models.rnn:RNNModel", "tunesmith.generate.api:MusicModel", _TOKENS, _SEQ_STEP),
    Family("gru", "tokens", "GRU over event tokens", "tunesmith.models.rnn:RNNConfig",
           "tunesmith.models.rnn:RNNModel", "tunesmith.generate.api:MusicModel", _TOKENS, _SEQ_STEP),
    Family("lstm", "tokens", "LSTM over event tokens", "tunesmith.models.rnn:RNNConfig",
           "tunesmith.models.rnn:RNNModel", "tunesmith.generate.api:MusicModel", _TOKENS, _SEQ_STEP),
    Family("transformer", "tokens", "decoder-only Transformer (rotary positions, KV cache) over event tokens",
           "tunesmith.models.transformer:TransformerConfig", "tunesmith.models.transformer:TransformerModel",
           "tunesmith.generate.api:MusicModel", _TOKENS, _SEQ_STEP),
    Family("cnn", "roll", "Coconet: a convolutional network over SATB piano rolls, sampled by blocked Gibbs",
           "tunesmith.models.rollnets:CoconetConfig", "tunesmith.models.rollnets:Coconet",
           "tunesmith.generate.rollmodels:CoconetModel",
           frozenset({"key", "temperature", "iterations", "harmonize", "infill", "batch", "rules"}),
           "tunesmith.train.roll_trainer:CoconetStep"),
    Family("gan", "roll", "MuseGAN-style WGAN-GP over SATB piano rolls", "tunesmith.models.rollnets:GanConfig",
           "tunesmith.models.rollnets:RollGAN", "tunesmith.generate.rollmodels:GanModel",
           frozenset({"key", "latent_scale", "threshold", "rules"}), "tunesmith.train.roll_trainer:RollGANStep"),
    Family("ddsp-gan", "notes", "DDSP GAN: a harmonic-plus-noise synthesizer driven by a GRU, pitch exact by "
           "construction, trained against waveform and spectrogram critics",
           "tunesmith.models.ddsp:DDSPGANConfig", "tunesmith.models.ddsp:DDSPGAN", "tunesmith.generate.notes:NotesGAN",
           frozenset({"audio", "velocity", "duration", "batch"}), "tunesmith.train.notes:DDSPStep"),
    Family("wavegan", "notes", "WaveGAN: transposed 1-D convolutions writing the waveform (WGAN-GP)",
           "tunesmith.models.wavegan:WaveGANConfig", "tunesmith.models.wavegan:WaveGAN",
           "tunesmith.generate.notes:NotesGAN", frozenset({"audio", "batch"}), "tunesmith.train.notes:WaveGANStep"),
    Family("note-classifier", "classifier", "pitch and instrument-family classifier for evaluating notes",
           "tunesmith.models.note_classifier:ClassifierConfig", "tunesmith.models.note_classifier:NoteClassifier", None,
           frozenset(), "tunesmith.train.notes:ClassifierStep"),
)}


def _import(path: str):
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def family(name: str | None) -> Family:
    """The registry row of ``name``; an unknown family is a clear error naming the known ones."""
    f = FAMILIES.get(str(name))
    if f is None:
        raise TunesmithError(f"unknown model family '{name}'; known: {', '.join(FAMILIES)}")
    return f


# ----------------------------------------------------------------------------- configs


def config_class(family_name: str):
    return family(family_name).config_class()


def make_config(family_name: str, vocab_size: int, size: str = "small", **overrides):
    """A sequence family's config from a size preset and overrides (``None`` = preset)."""
    if family_name not in SEQUENCE_FAMILIES:
        raise TunesmithError(f"unknown sequence model family '{family_name}'; choose from "
                             f"{', '.join(SEQUENCE_FAMILIES)}")
    if size not in PRESETS:
        raise TunesmithError(f"unknown size '{size}'; choose from {', '.join(PRESETS)}")
    cls = config_class(family_name)
    kw = dict(PRESETS[size]["transformer" if family_name == "transformer" else "rnn"])
    if family_name != "transformer":
        kw["cell"] = family_name
    names = {f.name for f in fields(cls)}
    kw.update({k: v for k, v in overrides.items() if v is not None and k in names})
    return cls(vocab_size=vocab_size, **kw)


def config_to_dict(config) -> dict:
    return asdict(config)


def config_from_dict(family_name: str, d: dict):
    """The family's config from a checkpoint's ``model`` dict (keys the class does not
    have, from older versions, are ignored); implausible sizes are refused by the
    config's ``check`` before anything is allocated."""
    cls = config_class(family_name)
    names = {f.name for f in fields(cls)}
    try:
        cfg = cls(**{k: v for k, v in (d or {}).items() if k in names})
        if hasattr(cfg, "check"):
            cfg.check()
    except (TypeError, ValueError) as e:
        raise TunesmithError(f"this {family_name} configuration cannot be built: {e}") from None
    return cfg


def build(family_name: str, config) -> object:
    """A family's torch module from its config (a dataclass or a checkpoint's dict)."""
    f = family(family_name)
    if isinstance(config, dict) or config is None:
        config = config_from_dict(family_name, config or {})
    return f.model_class()(config)


def build_model(family_name: str, config):
    return build(family_name, config)


# ----------------------------------------------------------------------------- names → folders


def _names(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / "config.json").is_file())


def bundled(kind: str | None = None) -> list[str]:
    """Bundled model names (of one kind: "tokens", "roll", "notes", "classifier")."""
    out = []
    for name in _names(BUNDLED_DIR):
        fam = json.loads((BUNDLED_DIR / name / "config.json").read_text()).get("family")
        if fam in FAMILIES and (kind is None or FAMILIES[fam].kind == kind):
            out.append(name)
    return out


def bundled_for(command: str) -> list[str]:
    """Bundled models a command can use, read from their configs (no model is loaded):
    ``harmonize`` takes Coconet and SATB-token models, ``infill`` Coconet ones."""
    out = []
    for name in bundled():
        cfg = json.loads((BUNDLED_DIR / name / "config.json").read_text())
        satb = (cfg.get("tokenizer") or {}).get("kind") == "satb"
        if cfg.get("family") == "cnn" or (command == "harmonize" and satb):
            out.append(name)
    return out


def shipped_benchmarks() -> list[str]:
    return _names(BENCHMARK_DIR)


def resolve(name_or_path: str | Path) -> Path:
    """The checkpoint folder for a bundled model's name, a shipped benchmark checkpoint's
    name, a run folder (its best/, else last/) or a checkpoint folder. An existing
    path always wins over a name."""
    p = Path(name_or_path)
    if p.exists():
        return resolve_checkpoint(p)
    text = str(name_or_path)
    if "/" not in text and text not in ("", ".", ".."):
        for folder in (BUNDLED_DIR, BENCHMARK_DIR):
            if (folder / text / "config.json").is_file():
                return folder / text
    known = ", ".join(bundled() + shipped_benchmarks()) or "(none installed)"
    raise ParameterError("model", f"unknown model '{text}': not a bundled model ({known}) nor a run or "
                         "checkpoint folder")


def load(name_or_path: str | Path, *, families: tuple[str, ...] | None = None):
    """(module, config dict, checkpoint folder) for any model: the family named in its
    config.json is built with its weights. ``families`` limits what is accepted (a clear
    error names what was found instead)."""
    path = resolve(name_or_path)
    cfg = read_config(path)
    fam = cfg.get("family")
    if fam not in FAMILIES:
        raise BadInputError(path, f"config.json names no known model family (found {fam!r}; known: "
                            f"{', '.join(FAMILIES)})")
    if families is not None and fam not in families:
        raise BadInputError(path, f"is a {fam} model; this needs {' or '.join(families)}")
    module = build(fam, cfg.get("model") or {})
    load_weights(module, path)
    module.eval()
    return module, cfg, path


def model_name(path: Path, cfg: dict) -> str:
    """A readable name: the bundled name, else the run folder's name."""
    if cfg.get("name"):
        return str(cfg["name"])
    return path.parent.name if path.name in ("best", "last") else path.name
