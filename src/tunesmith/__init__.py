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


def analyze(path, *, piece: int = 1, meter: str | None = None):
    """Analyse a MIDI, MusicXML, ABC, kern or audio file: key, chords, cadences, melody, metrics
    (and tempo, beats, chroma key, loudness for audio; ``meter``, e.g. ``"3/4"``, a recording's
    meter if known). See :mod:`tunesmith.mir.api`."""
    from tunesmith.mir.api import analyze as _analyze

    return _analyze(path, piece=piece, meter=meter)


def transcribe(path, *, meter: str | None = None):
    """Transcribe an audio file to a :class:`Score` (basic-pitch), its meter and bar lines
    estimated from the notes, or its bar lines placed in ``meter`` (e.g. ``"3/4"``) if given."""
    from tunesmith.music.audio import transcribe as _transcribe

    return _transcribe(path, meter=meter)


def search(query, *, top: int = 10, bars: tuple[int, int] | None = None):
    """The indexed pieces whose melody best matches ``query`` (a file, ABC text or audio),
    transposition- and tempo-invariant. Build the index first (``tunesmith index`` or
    :func:`tunesmith.mir.search.build_part`)."""
    from tunesmith.mir.search import SearchIndex, query_melody

    return SearchIndex.load().search(query_melody(query, bars=bars), top=top)


def classify(target, *, task: str = "composer"):
    """Class probabilities for every piece in a file or folder: ``task`` is ``composer``,
    ``region`` or ``collection`` (bundled classifiers) or a classifier folder. See
    :mod:`tunesmith.mir.classify`."""
    from tunesmith.mir.classify import classify as _classify

    return _classify(target, task=task)


__all__ = ["analyze", "classify", "search", "transcribe", "BadInputError", "Meta", "OptionError", "Score", "TunesmithError", "__version__",
           "load_model", "load_score", "read_pieces", "save_midi", "save_musicxml"]
