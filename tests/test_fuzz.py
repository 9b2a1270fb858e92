"""Property-based fuzzing of the readers through the CLI (issue #19): random valid and broken
MIDI, MusicXML, ABC and kern files; ``tunesmith info`` must answer 0, or 2 with one line,
never a traceback, within the time and memory limits. ``make fuzz`` runs the coverage-guided
fuzzer (fuzz/fuzz_readers.py) for longer."""

import resource
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.hostile import midi, vlq

from tunesmith.cli import main

FUZZ = settings(max_examples=40, deadline=20_000, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _info(path, capsys) -> None:
    try:
        rc = main(["info", str(path), "--max-parse-seconds", "10"])
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert rc in (0, 2), err
    if rc == 2:
        assert sum(ln.startswith("tunesmith: error:") for ln in err.splitlines()) == 1, err
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 2**20 * 2  # KiB: under 2 GiB for this process


events = st.lists(st.tuples(st.integers(0, 2000), st.sampled_from([0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xE0, 0xFF]),
                            st.integers(0, 127), st.integers(0, 127), st.binary(max_size=6)), max_size=60)


def _track(evs) -> bytes:
    out = b""
    for delta, status, a, b, payload in evs:
        if status == 0xFF:
            out += vlq(delta) + bytes([0xFF, a]) + vlq(len(payload)) + payload
        elif status in (0xC0,):
            out += vlq(delta) + bytes([status, a])
        else:
            out += vlq(delta) + bytes([status, a, b])
    return out + vlq(0) + b"\xff\x2f\x00"


@FUZZ
@given(tracks=st.lists(events, min_size=1, max_size=4),
       division=st.sampled_from([480, 480, 96, 960, 1, 0x7FFF, 0, 0xE728]), fmt=st.sampled_from([1, 1, 0, 0, 2, 3]),
       cut=st.sampled_from([0, 0, 0, 0, 1, 7, 60]),
       flips=st.one_of(st.just([]), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=3)))
def test_random_midi(tmp_path, capsys, tracks, division, fmt, cut, flips):
    data = bytearray(midi([_track(t) for t in tracks], fmt=fmt, division=division))
    for pos, byte in flips:
        if data:
            data[pos % len(data)] = byte
    if cut and cut < len(data):
        data = data[:-cut]
    f = tmp_path / "f.mid"
    f.write_bytes(bytes(data))
    _info(f, capsys)


xml_text = st.text(alphabet=st.sampled_from("abcdefgCDEFGAB0123456789-<>/ =\"'&;#"), max_size=30)


@FUZZ
@given(notes=st.lists(st.tuples(st.sampled_from(["C", "D", "E", "F", "G", "A", "B", "H", ""]),
                                st.one_of(st.integers(2, 6), st.integers(-5, 20)),
                                st.one_of(st.integers(1, 8), st.integers(-10, 10**13)), st.booleans()), max_size=40),
       divisions=st.one_of(st.integers(1, 8), st.integers(-2, 10**6)), beats=st.one_of(st.integers(2, 6),
                                                                                      st.integers(-1, 40)),
       beat_type=st.sampled_from([4, 4, 8, 2, 0, 1, 3, 64, 255]),
       junk=st.one_of(st.just(""), st.just(""), xml_text), measures=st.integers(0, 6))
def test_random_musicxml(tmp_path, capsys, notes, divisions, beats, beat_type, junk, measures):
    body = "".join(
        f"<note>{'<chord/>' if chord else ''}<pitch><step>{s}</step><octave>{o}</octave></pitch>"
        f"<duration>{d}</duration></note>" for s, o, d, chord in notes)
    ms = "".join(f'<measure number="{i + 2}">{body[: 200 * i]}</measure>' for i in range(measures))
    text = ('<?xml version="1.0"?><score-partwise><part-list><score-part id="P1"><part-name>x</part-name>'
            f'</score-part></part-list><part id="P1"><measure number="1"><attributes><divisions>{divisions}'
            f"</divisions><time><beats>{beats}</beats><beat-type>{beat_type}</beat-type></time></attributes>"
            f"{body}{junk}</measure>{ms}</part></score-partwise>")
    f = tmp_path / "f.musicxml"
    f.write_text(text)
    _info(f, capsys)


@FUZZ
@given(header=st.lists(st.sampled_from(["M:4/4", "M:6/8", "M:0/4", "M:", "L:1/8", "L:0", "Q:1/4=0", "K:C",
                                        "K:Hp", "K:", "V:1", "V:2", "T:x"]), max_size=6),
       body=st.text(alphabet=st.sampled_from("ABCDEFGabcdefgz,'^_=|:[]()2345/<>-{}~. \n\"!"), max_size=200))
def test_random_abc(tmp_path, capsys, header, body):
    f = tmp_path / "f.abc"
    f.write_text("X:1\n" + "\n".join(header) + "\n" + body + "\n")
    _info(f, capsys)


@FUZZ
@given(spines=st.integers(1, 6), rows=st.lists(st.lists(st.sampled_from(
    ["4c", "8dd", "2.G", "4r", "*M3/4", "*k[f#]", "=", "=1", ".", "*-", "*^", "*v", "16AAA#", "q", "4c]", "[4c",
     "0x", "4cccccccc"]), min_size=1, max_size=6), max_size=40))
def test_random_kern(tmp_path, capsys, spines, rows):
    lines = ["\t".join(["**kern"] * spines)] + ["\t".join((r * spines)[:spines]) for r in rows] + \
        ["\t".join(["*-"] * spines)]
    f = tmp_path / "f.krn"
    f.write_text("\n".join(lines) + "\n")
    _info(f, capsys)


def test_fuzz_corpus_seeds_read_or_are_one_line(capsys):
    """Every file in the kept fuzz corpus (fuzz/corpus/, small files only) goes through ``info``."""
    from pathlib import Path

    seeds = sorted((Path(__file__).parents[1] / "fuzz" / "corpus").rglob("*.*"))
    assert seeds and all(p.stat().st_size < 100_000 for p in seeds)
    for p in seeds:
        _info(p, capsys)


@pytest.mark.parametrize("value", [0, 1, 0x7FFF])
def test_division_edges(tmp_path, capsys, value):
    f = tmp_path / "d.mid"
    f.write_bytes(b"MThd" + struct.pack(">IHHH", 6, 0, 1, value) + b"MTrk" + struct.pack(">I", 4) + b"\x00\xff\x2f\x00")
    _info(f, capsys)
