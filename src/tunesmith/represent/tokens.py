"""Event tokens (REMI through miditok) for the sequence models.

One token stream per piece: ``Bar, TimeSig, Position, Tempo, Program, Pitch,
Duration`` (velocity is dropped: the bundled corpora carry none). Parts that
share a General MIDI program (the four voices of a chorale) are given
distinct programs first (:data:`VOICE_PROGRAMS`), so voices survive the round
trip as separate tracks.
"""

from __future__ import annotations

import json
from pathlib import Path

import miditok
import numpy as np
import symusic

from tunesmith.errors import BadInputError
from tunesmith.music.score import Meta, Score

TOKENIZER_VERSION = 1
# Soprano, alto, tenor, bass, then more voices: violin, viola, cello, contrabass,
# clarinet, bassoon, oboe, flute (General MIDI programs).
VOICE_PROGRAMS = (40, 41, 42, 43, 71, 70, 68, 73)
VOICE_NAMES = ("Soprano", "Alto", "Tenor", "Bass", "Voice 5", "Voice 6", "Voice 7", "Voice 8")


def default_config() -> miditok.TokenizerConfig:
    return miditok.TokenizerConfig(
        pitch_range=(21, 109),
        beat_res={(0, 4): 8, (4, 12): 4},
        use_velocities=False,
        use_programs=True,
        one_token_stream_for_programs=True,
        use_time_signatures=True,
        use_tempos=True,
        num_tempos=32,
        tempo_range=(40, 250),
        time_signature_range={8: [3, 6, 9, 12], 4: [1, 2, 3, 4, 5, 6], 2: [1, 2, 3, 4]},
        special_tokens=["PAD", "BOS", "EOS"],
    )


def assign_voice_programs(music: symusic.Score) -> symusic.Score:
    """A copy in which non-drum tracks that share a program get :data:`VOICE_PROGRAMS`."""
    out = music.copy()
    tracks = [t for t in out.tracks if not t.is_drum]
    programs = [t.program for t in tracks]
    if len(set(programs)) < len(programs):
        for i, t in enumerate(tracks):
            t.program = VOICE_PROGRAMS[i % len(VOICE_PROGRAMS)]
            if not t.name:
                t.name = VOICE_NAMES[i % len(VOICE_NAMES)]
    return out


class EventTokenizer:
    """A thin, versioned wrapper around a miditok REMI tokenizer."""

    def __init__(self, config: miditok.TokenizerConfig | None = None):
        self._init_from(miditok.REMI(config or default_config()))

    def _init_from(self, tok: miditok.REMI) -> None:
        self.tok = tok
        vocab = self.tok.vocab
        self.pad_id = vocab["PAD_None"]
        self.bos_id = vocab["BOS_None"]
        self.eos_id = vocab["EOS_None"]
        self.bar_id = vocab["Bar_None"]
        names = [None] * len(vocab)
        for k, v in vocab.items():
            names[v] = k
        self.names: list[str] = names
        self.types = np.array([n.split("_", 1)[0] for n in names])

    def __len__(self) -> int:
        return len(self.tok)

    @property
    def vocab_size(self) -> int:
        return len(self.tok)

    @property
    def tpq(self) -> int:
        return int(self.tok.time_division)

    # -- serialisation -------------------------------------------------------
    def to_dict(self) -> dict:
        """The tokenizer as JSON-ready data: miditok's own parameter file, plus our version."""
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "tokenizer.json"
            self.tok.save(path)
            params = json.loads(path.read_text())
        return {"kind": "remi", "version": TOKENIZER_VERSION, "miditok_version": _miditok_version(),
                "params": params}

    @classmethod
    def from_dict(cls, d: dict) -> EventTokenizer:
        import tempfile

        if d.get("kind") != "remi" or "params" not in d:
            raise BadInputError("tokenizer", f"unknown tokenizer description (kind {d.get('kind')!r})")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "tokenizer.json"
            path.write_text(json.dumps(d["params"]))
            tok = miditok.REMI(params=path)  # miditok's own loader restores its config types
        obj = cls.__new__(cls)
        obj._init_from(tok)
        return obj

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> EventTokenizer:
        return cls.from_dict(json.loads(Path(path).read_text()))

    # -- conversion ------------------------------------------------------------
    def encode(self, score: Score | symusic.Score) -> np.ndarray:
        """Token ids of a piece, shape (n_tokens,), without BOS/EOS."""
        music = score.music if isinstance(score, Score) else score
        seq = self.tok.encode(assign_voice_programs(music))
        if isinstance(seq, list):  # not expected with one_token_stream_for_programs
            seq = seq[0]
        return np.asarray(seq.ids, dtype=np.int64)

    def decode(self, ids, meta: Meta | None = None) -> Score:
        """Token ids (specials are dropped) → :class:`Score`."""
        ids = [int(i) for i in ids if int(i) not in (self.pad_id, self.bos_id, self.eos_id)]
        music = self.tok.decode(ids) if ids else symusic.Score(self.tpq)
        voiced = len(music.tracks) > 1 and all(t.program in VOICE_PROGRAMS for t in music.tracks)
        for t in music.tracks:
            if voiced:  # parts that were voices on the way in get their voice names back
                t.name = VOICE_NAMES[VOICE_PROGRAMS.index(t.program)]
        return Score(music, meta or Meta())

    def quantized(self, score: Score) -> symusic.Score:
        """What a round trip can at best reproduce: the score after miditok's preprocessing."""
        return self.tok.preprocess_score(assign_voice_programs(score.music))

    def grammar_errors(self, ids) -> float:
        """miditok's count of tokens that break the REMI grammar, as a fraction."""
        ids = [int(i) for i in ids if int(i) not in (self.pad_id, self.bos_id, self.eos_id)]
        if not ids:
            return 0.0
        return float(self.tok.tokens_errors(miditok.TokSequence(ids=ids)))


def _miditok_version() -> str:
    from importlib.metadata import version

    return version("miditok")
