"""Coverage-guided fuzzing of tunesmith's MIDI and MusicXML readers with atheris (libFuzzer).

    make fuzz                              # 10 minutes (FUZZ_SECONDS), seeds in fuzz/corpus
    python fuzz/fuzz_readers.py fuzz/corpus/new fuzz/corpus/midi fuzz/corpus/musicxml -max_total_time=60

A finding is any exception other than tunesmith's own one-line errors (``TunesmithError``),
or a parse past the time limit; libFuzzer writes the input as ``crash-…`` beside the run.
New interesting inputs go into the first corpus folder (``fuzz/corpus/new``, not committed);
a finding, once fixed, is kept as a small seed in ``fuzz/corpus/<format>/`` (< 100 kB):
``tests/test_fuzz.py`` reads every seed there in ``make test``."""

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from tunesmith.errors import TunesmithError
    from tunesmith.music.io import Limits, read_pieces

LIMITS = Limits(max_bytes=1 << 20, max_notes=50_000, max_minutes=60, max_parse_seconds=10)
WORK = Path(tempfile.mkdtemp(prefix="tunesmith-fuzz-"))


def kind(data: bytes) -> str:
    """The reader an input goes to, by what it looks like (so seeds keep their format while
    mutated), else by its length."""
    if data[:4] == b"MThd":
        return ".mid"
    if data.lstrip()[:1] == b"<":
        return ".musicxml"
    if b"X:" in data[:64]:
        return ".abc"
    if b"**kern" in data[:256]:
        return ".krn"
    return (".mid", ".musicxml", ".abc", ".krn")[len(data) % 4]


def one_input(data: bytes) -> None:
    path = WORK / f"input{kind(data)}"
    path.write_bytes(data)
    try:
        read_pieces(path, limits=LIMITS)
    except TunesmithError:
        pass


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
