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
    single_line: bool = False  # melodies: one note at a time


CORPORA: dict[str, Corpus] = {
    c.name: c
    for c in [
        Corpus("bach-chorales", "J.S. Bach's four-part chorales (Riemenschneider), MusicXML"),
        Corpus("essen", "Essen folk song collection, monophonic, ABC, with region tags", ("essenFolksong",),
               single_line=True),
        Corpus("oneills-1850", "O'Neill's Music of Ireland (1850), Irish dance tunes, ABC", ("oneills1850",),
               single_line=True),
        Corpus("ryans-mammoth", "Ryan's Mammoth Collection (1883), fiddle tunes, ABC", ("ryansMammoth",),
               single_line=True),
        Corpus("palestrina", "Palestrina masses and motets, Humdrum **kern", ("palestrina",)),
        Corpus("monteverdi", "Monteverdi madrigals, MusicXML", ("monteverdi",)),
        Corpus("beethoven", "Beethoven string quartet movements, MusicXML", ("beethoven",)),
        Corpus("mozart", "Mozart string quartet and piano sonata movements, MusicXML", ("mozart",)),
        Corpus("folk", "essen + oneills-1850 + ryans-mammoth: folk melodies",
               members=("essen", "oneills-1850", "ryans-mammoth"), single_line=True),
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


def corpus_of(source_file: str, default: str) -> str:
    """The bundled corpus a file comes from (e.g. 'essen' inside the combined 'folk')."""
    parts = Path(source_file).parts
    for name, c in CORPORA.items():
        if any(folder in parts for folder in c.folders):
            return name
    return default


NO_REGION = "none"


def style_of(entry: dict, default: str) -> tuple[str, str]:
    """The style tags of a dataset entry: its collection (the bundled corpus it comes from) and
    its region (the Essen collection's ``region:`` tag; :data:`NO_REGION` for pieces without one)."""
    collection = corpus_of(entry["source"], default)
    tags = (entry.get("meta") or {}).get("tags") or []
    regions = [t.split(":", 1)[1] for t in tags if t.startswith("region:")]
    return collection, (regions[0] if regions else NO_REGION)


def readable_name(label: str, source_file: str, title: str, n_in_file: int = 1, *, suffix: bool = False) -> str:
    """A name people can read for a piece of a dataset: ``corpus/file-stem``, with the tune's
    title where the file holds several tunes or the title says more (``essen/altdeu10: Herzog
    Ernst``); ``label`` stands for the corpus of files outside the bundled corpora. ``suffix``
    keeps the file's extension, for a stem that several files of one folder share
    (:func:`shared_stems`)."""
    stem = Path(source_file).stem
    base = f"{corpus_of(source_file, label)}/{Path(source_file).name if suffix else stem}"
    if title and title != stem and (n_in_file > 1 or not title.startswith(stem)):
        base += f": {title}"
    return base


def shared_stems(sources) -> set[tuple[str, str]]:
    """The (folder, stem) pairs that more than one of ``sources`` (file paths) has: a piece saved
    as ``tune.mid`` and ``tune.musicxml`` with other notes in each is named by both files' names."""
    from collections import Counter

    n = Counter((str(Path(f).parent), Path(f).stem) for f in set(sources))
    return {k for k, v in n.items() if v > 1}


def entry_names(entries: list[dict], label: str) -> list[str]:
    """:func:`readable_name` of every entry of a dataset manifest."""
    from collections import Counter

    per_file = Counter(e["source"] for e in entries)
    shared = shared_stems(per_file)
    return [readable_name(label, e["source"], (e.get("meta") or {}).get("title", ""), per_file[e["source"]],
                          suffix=(str(Path(e["source"]).parent), Path(e["source"]).stem) in shared)
            for e in entries]
