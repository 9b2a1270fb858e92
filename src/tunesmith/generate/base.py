"""What every generator shares: the family-neutral result and the one interface,
whose controls are checked against the family's declared capabilities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tunesmith.errors import ParameterError
from tunesmith.models import registry
from tunesmith.music.score import Score


@dataclass
class Generated:
    """What every symbolic generator returns, whatever its family."""

    score: Score
    key: str
    bars: int
    repairs: int = 0  # grammar repairs (forced stops) of token models; 0 for the others
    n_tokens: int = 0  # tokens sampled (token models); 0 for the others
    tokens: list[int] | None = None  # the new tokens (for checks)
    report: dict | None = None  # what the rule layer did (rules mode, relaxations), where one ran


# Each generation control and the capability a family must declare to take it.
CONTROLS = {"primer": "primer", "key": "key", "temperature": "temperature", "top_k": "top_k", "top_p": "top_p",
            "iterations": "iterations", "latent_scale": "latent_scale", "threshold": "threshold",
            "use_cache": "cache", "rules": "rules", "style": "style"}


@runtime_checkable
class Generator(Protocol):
    """The one generation interface: every family's wrapper has a name, its family's
    registry row (with the declared capabilities) and ``generate(bars=, seed=, ...)``
    that takes exactly the controls its capabilities name. A wrapper with once-per-machine
    work before its first piece (the token models' copy guard) also has
    ``prepare(rules=, progress=)``, which ``generate_to_files`` calls to show that work."""

    name: str
    config: dict

    def generate(self, *, bars: int = 8, seed: int = 0, **controls) -> Generated: ...


DEFAULT_TOP_P = 0.95


def default_top_p(generator) -> float:
    """The nucleus mass a token model samples with unless told otherwise: its config's
    ``sampling.top_p`` (chosen on the fair yardstick; its model card says why), else 0.95."""
    return float((generator.config.get("sampling") or {}).get("top_p", DEFAULT_TOP_P))


def capabilities(generator) -> frozenset[str]:
    """What this generator can do: its own declaration where the checkpoint's representation
    changes it (an SATB-token LSTM harmonizes and takes rules; an event-token one does not),
    else its family's row in the registry."""
    own = getattr(generator, "capabilities", None)
    if isinstance(own, frozenset):
        return own
    return registry.family(generator.config["family"]).capabilities


def check_controls(generator, controls: dict) -> dict:
    """The controls that were given (not None), each one the family can honour; any
    other is refused with one line naming it and what this model does take."""
    caps = capabilities(generator)
    given = {k: v for k, v in controls.items() if v is not None}
    for k in given:
        need = CONTROLS.get(k)
        if need is None or need not in caps:
            takes = sorted(c for c, cap in CONTROLS.items() if cap in caps and c != "use_cache")
            raise ParameterError(k, f"the {generator.config['family']} model '{generator.name}' does not take this "
                                 f"control; it takes: {', '.join(takes) or 'bars and seed only'}")
    return given


PRIMER_BARS = 16  # a primer longer than this is cut to its first PRIMER_BARS bars
INPUT_BARS = 64  # harmonize / infill read at most this many bars of their input


def first_bars(score, n: int, what: str):
    """``score`` cut to its first ``n`` bars, and a sentence saying so (None when it is not
    longer): the models' cost grows with what they read, so a long primer or melody is
    bounded, and the user told what was used."""
    cut, total = score.first_bars(n)
    if cut is score:
        return score, None
    return cut, f"the {what} has {total} bars: the first {n} were used"
