"""The bundled corpora: files that music21 ships, so nothing is downloaded."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tunesmith.errors import OptionError


@dataclass(frozen=True)
class Corpus:
    name: str
    description: str
    folders: tuple[str, ...] = ()  # music21 corpus sub-folders (all readable files in them)
    members: tuple[str, ...] = ()  # for combined corpora: names of other corpora


CORPORA: dict[str, Corpus] = {
    c.name: c
    for c in [
        Corpus("bach-chorales", "J.S. Bach's four-part chorales (Riemenschneider), MusicXML"),
        Corpus("essen", "Essen folk song collection, monophonic, ABC, with region tags", ("essenFolksong",)),
        Corpus("oneills-1850", "O'Neill's Music of Ireland (1850), Irish dance tunes, ABC", ("oneills1850",)),
        Corpus("ryans-mammoth", "Ryan's Mammoth Collection (1883), fiddle tunes, ABC", ("ryansMammoth",)),
        Corpus("palestrina", "Palestrina masses and motets, Humdrum **kern", ("palestrina",)),
        Corpus("monteverdi", "Monteverdi madrigals, MusicXML", ("monteverdi",)),
        Corpus("folk", "essen + oneills-1850 + ryans-mammoth: folk melodies",
               members=("essen", "oneills-1850", "ryans-mammoth")),
    ]
}


def music21_corpus_root() -> Path:
    from music21 import corpus

    return Path(corpus.__file__).parent


@cache
def corpus_files(name: str) -> tuple[Path, ...]:
    """The source files of a bundled corpus, sorted."""
    from tunesmith.music.io import SYMBOLIC_EXTS

    if name not in CORPORA:
        raise OptionError("corpus", f"unknown corpus '{name}'; known: {', '.join(CORPORA)}")
    c = CORPORA[name]
    root = music21_corpus_root()
    if c.members:
        return tuple(f for m in c.members for f in corpus_files(m))
    if name == "bach-chorales":
        from music21.corpus import chorales

        files = []
        for stem in chorales.Iterator(returnType="filename"):
            for ext in (".mxl", ".xml", ".krn"):
                p = root / (stem + ext)
                if p.exists():
                    files.append(p)
                    break
        return tuple(sorted(set(files)))  # the chorale list names a few files twice
    files = [p for folder in c.folders for p in (root / folder).rglob("*") if p.suffix.lower() in SYMBOLIC_EXTS]
    return tuple(sorted(files))


def count_pieces(files: tuple[Path, ...]) -> int:
    """Pieces in a list of files: one per file, one per ``X:`` tune in ABC files."""
    n = 0
    for f in files:
        if f.suffix.lower() == ".abc":
            with open(f, "rb") as fh:
                n += sum(1 for ln in fh if ln.startswith(b"X:"))
        else:
            n += 1
    return n


def is_corpus(name: str) -> bool:
    return name in CORPORA
