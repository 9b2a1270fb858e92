"""The crafted corpus of issue #19: valid-but-odd and hostile files, each made here by code
(small, or generated on demand), for every command that reads a file (tests/test_hostile.py)
and for the figures of ``benchmarks/hardening.py``.

Each case is (name, file name, bytes); ``expect`` says whether tunesmith must read the file
("ok": normalised, the command works) or refuse it with one clear line ("refused")."""

from __future__ import annotations

import struct
from pathlib import Path


def vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def midi(tracks: list[bytes], *, fmt: int = 1, division: int = 480, ntrks: int | None = None) -> bytes:
    head = b"MThd" + struct.pack(">IHHH", 6, fmt, len(tracks) if ntrks is None else ntrks, division)
    return head + b"".join(b"MTrk" + struct.pack(">I", len(t)) + t for t in tracks)


def notes(*pitches: int, step: int = 480) -> bytes:
    ev = b""
    for p in pitches:
        ev += vlq(0) + bytes([0x90, p, 90]) + vlq(step) + bytes([0x80, p, 0])
    return ev


END = vlq(0) + b"\xff\x2f\x00"
MELODY = notes(60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72)


def meta(kind: int, payload: bytes) -> bytes:
    return vlq(0) + bytes([0xFF, kind]) + vlq(len(payload)) + payload


def xml(body: str, parts: str = '<part-list><score-part id="P1"><part-name>M</part-name></score-part></part-list>') -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<score-partwise version="3.1">' + parts + body
            + "</score-partwise>").encode()


def xml_note(step: str = "C", octave: int = 4, duration: int = 1) -> str:
    return (f"<note><pitch><step>{step}</step><octave>{octave}</octave></pitch><duration>{duration}</duration>"
            "<type>quarter</type></note>")


ATTRS = "<attributes><divisions>1</divisions><time><beats>4</beats><beat-type>4</beat-type></time></attributes>"


def cases() -> list[tuple[str, str, bytes, str]]:
    """(name, file name, content, expect) for every crafted case."""
    c: list[tuple[str, str, bytes, str]] = []

    def add(name: str, fname: str, data: bytes, expect: str) -> None:
        c.append((name, fname, data, expect))

    # MIDI: odd meta events are normalised at reading; broken structure is refused
    add("tempo 0", "tempo0.mid", midi([meta(0x51, b"\x00\x00\x00") + MELODY + END]), "ok")
    add("time signature 0/4", "ts0.mid", midi([meta(0x58, bytes([0, 2, 24, 8])) + MELODY + END]), "ok")
    add("time signature denominator 2^255", "ts255.mid", midi([meta(0x58, bytes([4, 255, 24, 8])) + MELODY + END]),
        "ok")
    add("key signature out of range", "key.mid", midi([meta(0x59, bytes([100, 7])) + MELODY + END]), "ok")
    add("65,535 empty tracks", "empty-tracks.mid", midi([MELODY + END] + [END] * 65534), "ok")
    add("200 tracks with notes", "many-tracks.mid", midi([notes(60 + i % 24) + END for i in range(200)]), "refused")
    add("ticks past 2^32", "overflow.mid",
        midi([notes(60) + b"".join(vlq(0x0FFFFFFF) + bytes([0x90, 60, 90]) + vlq(1) + bytes([0x80, 60, 0])
                                   for _ in range(20)) + END]), "refused")
    add("zero ticks per quarter", "tpq0.mid", midi([MELODY + END], division=0), "refused")
    add("SMPTE division", "smpte.mid", midi([MELODY + END], division=0xE728), "refused")
    add("type 2", "type2.mid", midi([MELODY + END], fmt=2), "refused")
    add("truncated track", "truncated.mid", midi([MELODY + END])[:-9], "refused")
    add("huge declared track length", "hugelen.mid",
        b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", 2**31) + MELODY, "refused")
    add("no notes", "silent.mid", midi([meta(0x51, b"\x07\xa1\x20") + END]), "ok")  # info says so
    add("text named .mid", "text.mid", b"this is not a MIDI file\n", "refused")
    add("empty file", "empty.mid", b"", "refused")
    # MusicXML
    add("note too long for the C++ layer", "longnote.musicxml",
        xml('<part id="P1"><measure number="1">' + ATTRS + xml_note(duration=10**12) + "</measure></part>"), "refused")
    add("no parts", "noparts.musicxml", xml(""), "refused")
    add("deep nesting", "deep.musicxml", xml('<part id="P1"><measure number="1">' + "<x>" * 5000 + "</x>" * 5000
                                             + "</measure></part>"), "refused")
    add("20,000 empty measures", "measures.musicxml",
        xml('<part id="P1">' + "".join(f'<measure number="{i}"/>' for i in range(20_000)) + "</part>"), "refused")
    add("billion laughs", "laughs.musicxml",
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b"<score-partwise>&lol2;</score-partwise>", "refused")
    add("XXE", "xxe.musicxml", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<score-partwise>&e;</score-partwise>", "refused")
    add("not XML", "garbage.musicxml", b"\x00\x01\x02 definitely not xml", "refused")
    add("a valid MusicXML melody", "ok.musicxml",
        xml('<part id="P1"><measure number="1">' + ATTRS + "".join(xml_note(s) for s in "CDEF")
            + '</measure><measure number="2">' + "".join(xml_note(s) for s in "GFED") + "</measure></part>"), "ok")
    # ABC
    add("24 voices", "voices.abc", ("X:1\nT:many\nM:4/4\nL:1/4\nK:C\n"
                                    + "".join(f"V:{i}\nCDEF|GABc|\n" for i in range(24))).encode(), "ok")
    add("100 voices", "voices100.abc", ("X:1\nT:many\nM:4/4\nL:1/4\nK:C\n"
                                        + "".join(f"V:{i}\nCDEF|\n" for i in range(100))).encode(), "refused")
    add("6,000 tunes", "tunes.abc", "".join(f"X:{i}\nT:t{i}\nK:C\nCDEF|\n\n" for i in range(1, 6001)).encode(),
        "refused")
    add("garbage ABC tune", "garbage.abc", b"X:1\nK:C\n|]::[|:::|\n", "refused")
    add("a pickup bar in 6/8", "pickup.abc", b"X:1\nT:pickup\nM:6/8\nL:1/8\nK:D\nA|dfa agf|edc d2A|dfa agf|ed2 d2|]\n",
        "ok")
    # kern
    add("200 spines", "spines.krn", ("\t".join(["**kern"] * 200) + "\n" + "\t".join(["4c"] * 200) + "\n"
                                     + "\t".join(["*-"] * 200) + "\n").encode(), "refused")
    add("garbage kern", "garbage.krn", b"**kern\n@@@@\n*-\n", "refused")
    return c


def write_cases(folder: Path) -> list[tuple[str, Path, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, fname, data, expect in cases():
        p = folder / fname
        p.write_bytes(data)
        out.append((name, p, expect))
    return out
