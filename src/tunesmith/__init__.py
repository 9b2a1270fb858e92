"""tunesmith: generate, evaluate, analyse and recommend music with deep learning."""

from __future__ import annotations

__version__ = "0.1.0"

from tunesmith.errors import BadInputError, OptionError, TunesmithError  # noqa: E402
from tunesmith.music.io import load_score, read_pieces, save_midi, save_musicxml  # noqa: E402
from tunesmith.music.score import Meta, Score  # noqa: E402


def load_model(name_or_path: str, *, device: str = "cpu"):
    """A bundled model by name (``"bach-chorales"``, ``"folk"``) or a checkpoint folder."""
    from tunesmith.generate.api import load_model as _load

    return _load(name_or_path, device=device)


__all__ = ["BadInputError", "Meta", "OptionError", "Score", "TunesmithError", "__version__",
           "load_model", "load_score", "read_pieces", "save_midi", "save_musicxml"]
