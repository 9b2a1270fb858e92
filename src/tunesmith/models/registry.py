"""Model families by name, with size presets, so the CLI, evaluation and the
studio build any of them the same way."""

from __future__ import annotations

from dataclasses import asdict, fields

from tunesmith.errors import OptionError
from tunesmith.models.base import SequenceModel
from tunesmith.models.rnn import RNNConfig, RNNModel
from tunesmith.models.transformer import TransformerConfig, TransformerModel

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


def config_class(family: str):
    return TransformerConfig if family == "transformer" else RNNConfig


def make_config(family: str, vocab_size: int, size: str = "small", **overrides):
    if family not in SEQUENCE_FAMILIES:
        raise OptionError("--model", f"unknown model family '{family}'; choose from {', '.join(SEQUENCE_FAMILIES)}")
    if size not in PRESETS:
        raise OptionError("--size", f"unknown size '{size}'; choose from {', '.join(PRESETS)}")
    cls = config_class(family)
    kw = dict(PRESETS[size]["transformer" if family == "transformer" else "rnn"])
    if family != "transformer":
        kw["cell"] = family
    names = {f.name for f in fields(cls)}
    kw.update({k: v for k, v in overrides.items() if v is not None and k in names})
    return cls(vocab_size=vocab_size, **kw)


def build_model(family: str, config) -> SequenceModel:
    if family == "transformer":
        return TransformerModel(config)
    return RNNModel(config)


def config_to_dict(config) -> dict:
    return asdict(config)


def config_from_dict(family: str, d: dict):
    cls = config_class(family)
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})
