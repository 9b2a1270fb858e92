"""Reading and writing music files.

``read_pieces(path)`` is the one reader: MIDI through symusic (fast path),
ABC through symusic's abc2midi port (each tune of a multi-tune file a piece),
MusicXML / compressed MusicXML / Humdrum through music21. Every file is
checked first against :class:`Limits`, and every problem becomes a
:class:`~tunesmith.errors.BadInputError` naming the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import symusic

from tunesmith.errors import BadInputError, TunesmithError
from tunesmith.fileio import atomic_write_bytes  # noqa: F401  (re-exported: the one writer)
from tunesmith.music.audio import AUDIO_EXTS
from tunesmith.music.convert import fill_meta_from_music, music21_to_score, score_to_music21
from tunesmith.music.keys import mode_named
from tunesmith.music.score import Meta, Score

MIDI_EXTS = {".mid", ".midi"}
XML_EXTS = {".xml", ".musicxml"}
MXL_EXTS = {".mxl"}
ABC_EXTS = {".abc"}
KERN_EXTS = {".krn"}
SYMBOLIC_EXTS = MIDI_EXTS | XML_EXTS | MXL_EXTS | ABC_EXTS | KERN_EXTS
READABLE_EXTS = SYMBOLIC_EXTS | AUDIO_EXTS  # audio is transcribed (music/audio.py)


@dataclass(frozen=True)
class Limits:
    """Bounds that keep a hostile or broken file from taking the machine."""

    max_bytes: int = 16 * 1024 * 1024
    max_notes: int = 500_000
    max_minutes: float = 180.0
    # Audio is decoded whole (22 050 Hz mono float32: 5.3 MB a minute), so it has its own bound.
    max_audio_minutes: float = 30.0
    # music21 (MusicXML, kern) parses a few hundred notes a second: a wall-clock bound on one parse
    max_parse_seconds: float = 300.0
    max_parts: int = 64  # parts (tracks, voices, spines) with notes in one piece

    def check_size(self, path: Path, size: int) -> None:
        if size == 0:
            raise BadInputError(path, "empty file (0 bytes)")
        if size > self.max_bytes:
            raise BadInputError(
                path,
                f"file is {size / 2**20:.1f} MiB, over the limit of "
                f"{self.max_bytes / 2**20:.1f} MiB (raise it with --max-file-mb)",
            )

    def check_measures(self, path: Path | str, measures: int) -> None:
        """A bar lasts at least a second (4/4 at 240 quarter notes a minute): more bars in
        one part than seconds in ``max_minutes`` is over the limit at any sane tempo."""
        if measures > self.max_minutes * 60:
            raise BadInputError(path, f"{measures:,} bars in one part: longer than the limit of "
                                f"{self.max_minutes:.0f} minutes at any tempo (raise it with --max-minutes)")

    def check_counts(self, path: Path | str, *, notes: int = 0, parts: int = 0) -> None:
        """Counts found by a cheap pre-scan of the text, before the expensive parse."""
        if notes > self.max_notes:
            raise BadInputError(path, f"about {notes:,} notes, over the limit of {self.max_notes:,} "
                                "(raise it with --max-notes)")
        if parts > self.max_parts:
            raise BadInputError(path, f"{parts:,} parts, over the limit of {self.max_parts}")

    def check_score(self, path: Path | str, score: Score) -> None:
        sounding = sum(1 for t in score.music.tracks if len(t.notes))
        if sounding > self.max_parts:
            raise BadInputError(path, f"{sounding:,} tracks with notes, over the limit of {self.max_parts}")
        n = score.n_notes
        if n > self.max_notes:
            raise BadInputError(
                path, f"{n:,} notes, over the limit of {self.max_notes:,} (raise it with --max-notes)"
            )
        minutes = score.duration_seconds() / 60 if n else 0.0
        if minutes > self.max_minutes:
            raise BadInputError(
                path,
                f"{minutes:.0f} minutes long, over the limit of {self.max_minutes:.0f} "
                "(raise it with --max-minutes)",
            )


@dataclass
class ReadResult:
    """The pieces of one file, and the pieces inside it that could not be read."""

    scores: list[Score]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (where, why)
    # Content hash of each piece's own text where a file holds several (ABC tunes).
    content_hashes: list[str | None] = field(default_factory=list)


@contextlib.contextmanager
def quiet_c_output():
    """Silence C-level stdout/stderr (abc2midi prints warnings for every tune)."""
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:  # no real file descriptors (embedded interpreter)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


class _OutOfTime(BaseException):
    """Raised by the parse timer; a BaseException, so that no ``except Exception`` inside a
    parser swallows it."""


@contextlib.contextmanager
def parse_time_limit(path: Path | str, seconds: float):
    """Stop a Python-level parse (music21) after ``seconds`` of wall-clock time with one clear
    error. Works in the main thread of a process (the CLI, data-prepare workers, studio
    workers); elsewhere the pre-scan bounds are the only guard."""
    import signal
    import threading

    if seconds <= 0 or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def expired(signum, frame):
        raise _OutOfTime()

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _OutOfTime:
        raise BadInputError(path, f"parsing took longer than the limit of {seconds:g} s (raise it with "
                            "--max-parse-seconds)") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _read_bytes(path: Path, limits: Limits) -> bytes:
    if not path.exists():
        raise BadInputError(path, "no such file")
    if path.is_dir():
        raise BadInputError(path, "is a folder, not a file")
    size = path.stat().st_size
    limits.check_size(path, size)
    try:
        return path.read_bytes()
    except OSError as e:
        raise BadInputError(path, f"cannot read: {e.strerror}") from None


def _looks_like_text(data: bytes) -> bool:
    sample = data[:512]
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(32 <= b < 127 or b in (9, 10, 13) for b in sample)


# --------------------------------------------------------------------------- MIDI


def check_midi_bytes(path: Path | str, data: bytes) -> None:
    """Structural checks of a Standard MIDI File, with a precise message for each fault."""
    if len(data) == 0:
        raise BadInputError(path, "empty file (0 bytes)")
    if data[:4] != b"MThd":
        if _looks_like_text(data):
            raise BadInputError(path, "not a MIDI file: it contains text, not a MIDI header (MThd)")
        raise BadInputError(path, "not a MIDI file: no MIDI header (MThd) at the start")
    if len(data) < 14:
        raise BadInputError(path, f"truncated MIDI file: header needs 14 bytes, file has {len(data)}")
    hlen, fmt, ntrks, division = struct.unpack(">IHHH", data[4:14])
    if hlen < 6:
        raise BadInputError(path, f"corrupt MIDI header: length {hlen}, expected 6")
    if fmt == 2:
        raise BadInputError(
            path, "type-2 MIDI (independent sequences) is not supported; convert it to type 0 or 1"
        )
    if fmt > 2:
        raise BadInputError(path, f"corrupt MIDI header: unknown format {fmt}")
    if division == 0:
        raise BadInputError(path, "corrupt MIDI header: zero ticks per quarter note")
    if division & 0x8000:
        raise BadInputError(path, "SMPTE time division is not supported; only ticks per quarter note")
    if ntrks == 0:
        raise BadInputError(path, "MIDI file declares no tracks")
    pos = 8 + hlen
    for i in range(ntrks):
        if pos + 8 > len(data):
            raise BadInputError(
                path, f"truncated MIDI file: header declares {ntrks} tracks, file ends after {i}"
            )
        chunk, clen = struct.unpack(">4sI", data[pos : pos + 8])
        if pos + 8 + clen > len(data):
            raise BadInputError(
                path,
                f"truncated MIDI file: track {i + 1} declares {clen:,} bytes, "
                f"only {len(data) - pos - 8:,} remain",
            )
        if chunk == b"MTrk":
            ticks = track_ticks(data, pos + 8, pos + 8 + clen)
            if ticks > 2**31 - 1:
                days = ticks / division / 2 / 86400  # at 120 quarter notes a minute
                raise BadInputError(path, f"track {i + 1} runs to tick {ticks:,} (about {days:,.0f} days at 120 "
                                    "quarter notes a minute), past the 2^31 ticks a MIDI reader can hold")
        pos += 8 + clen


def _vlq(data: bytes, pos: int, end: int) -> tuple[int, int]:
    n = 0
    while pos < end:
        b = data[pos]
        pos += 1
        n = (n << 7) | (b & 0x7F)
        if b < 0x80:
            break
    return n, pos


def track_ticks(data: bytes, start: int, end: int) -> int:
    """The sum of a track chunk's delta times (its length in ticks), walking its events with
    running status: symusic keeps times in 32 bits, so a longer track must be refused
    before it is read (its times would be clamped or wrap without a word). About a
    second for a 15 MB file."""
    pos, total, running = start, 0, 0
    while pos < end:
        delta, pos = _vlq(data, pos, end)
        total += delta
        if pos >= end:
            break
        status = running  # a data byte here: running status (of channel messages only)
        if data[pos] >= 0x80:
            status = data[pos]
            pos += 1
            if status < 0xF0:
                running = status
        if status == 0xFF:  # meta: type, length, data
            n, pos = _vlq(data, pos + 1, end)
            pos += n
        elif status in (0xF0, 0xF7):  # sysex: length, data
            n, pos = _vlq(data, pos, end)
            pos += n
        else:  # channel messages: program change and channel pressure have one data byte
            pos += 1 if 0xC0 <= status < 0xE0 else 2
    return total


def _read_midi(path: Path, limits: Limits) -> ReadResult:
    data = _read_bytes(path, limits)
    check_midi_bytes(path, data)
    try:
        music = symusic.Score.from_midi(data)
    except RuntimeError as e:
        msg = str(e).replace("MiniMidi: ", "").replace(": iostream error", "")
        raise BadInputError(path, f"corrupt MIDI file: {msg}") from None
    normalize_meta_events(music)
    if len(music.tracks) > limits.max_parts:  # e.g. 65,535 tracks: keep those that sound
        sounding = [t.copy() for t in music.tracks if len(t.notes)]
        music.tracks.clear()
        for t in sounding:
            music.tracks.append(t)
    from tunesmith.music.meter import place_upbeat, written_upbeat

    # an upbeat moved to its place in a full first bar: one the file writes as a short first bar,
    # or one written at time 0 in the piece's own meter (read from the notes)
    written = written_upbeat(music)
    upbeat = 0.0 if written else place_upbeat(music)
    score = Score(music, Meta(title=path.stem, source=str(path)))
    if written:
        score.meta.tags.append(f"upbeat:written:{written:g}")
    if upbeat:
        score.meta.tags.append(f"upbeat:estimated:{upbeat:g}")
    fill_meta_from_music(score)
    limits.check_score(path, score)
    return ReadResult([score])


def normalize_meta_events(music: symusic.Score) -> list[str]:
    """Drop meta events no later stage can use, once, at reading, so that every command
    sees a valid piece: tempos that are not a finite 1–1000 quarter notes per minute
    (a tempo of 0 makes pretty_midi divide by zero), time signatures that are not
    N/2^k with N ≥ 1 and 2^k ≤ 128, key signatures outside −7…7 sharps or of an unknown
    mode. A piece left without a tempo gets 120 qpm. Returns what was dropped."""
    import math

    dropped = []
    tempos = [t for t in music.tempos if math.isfinite(t.qpm) and 1 <= t.qpm <= 1000]
    if len(tempos) != len(music.tempos):
        dropped.append(f"{len(music.tempos) - len(tempos)} tempo event(s)")
        music.tempos.clear()
        for t in tempos or [symusic.Tempo(0, qpm=120.0)]:
            music.tempos.append(t)
    ts = [t for t in music.time_signatures
          if t.numerator >= 1 and 1 <= t.denominator <= 128 and t.denominator & (t.denominator - 1) == 0]
    if len(ts) != len(music.time_signatures):
        dropped.append(f"{len(music.time_signatures) - len(ts)} time signature(s)")
        music.time_signatures.clear()
        for t in ts:
            music.time_signatures.append(t)
    ks = [k for k in music.key_signatures if -7 <= k.key <= 7 and k.tonality in (0, 1)]
    if len(ks) != len(music.key_signatures):
        dropped.append(f"{len(music.key_signatures) - len(ks)} key signature(s)")
        music.key_signatures.clear()
        for k in ks:
            music.key_signatures.append(k)
    return dropped


# --------------------------------------------------------------------------- ABC

_ABC_FIELD = re.compile(r"^([A-Za-z]):\s*(.*)$")


def split_abc_tunes(text: str) -> list[tuple[int, str]]:
    """Split an ABC file into tunes: ``[(line number, tune text)]``; the file
    header (lines before the first ``X:``) is prepended to each tune."""
    lines = text.splitlines()
    starts = [i for i, ln in enumerate(lines) if ln.startswith("X:")]
    if not starts:
        return []
    header = "\n".join(ln for ln in lines[: starts[0]] if _ABC_FIELD.match(ln) and not ln.startswith("%"))
    tunes = []
    for k, s in enumerate(starts):
        e = starts[k + 1] if k + 1 < len(starts) else len(lines)
        body = "\n".join(lines[s:e]).strip()
        tunes.append((s + 1, (header + "\n" + body) if header else body))
    return tunes


_ABC_MODES = {"": "major", "maj": "major", "major": "major", "ion": "major", "m": "minor",
              "min": "minor", "minor": "minor", "aeo": "minor"}


def abc_meta(tune: str, source: str) -> Meta:
    """Metadata from an ABC tune's header fields (T, C, O, R, M, K, Q)."""
    fields: dict[str, list[str]] = {}
    for ln in tune.splitlines():
        m = _ABC_FIELD.match(ln)
        if m:
            fields.setdefault(m.group(1), []).append(m.group(2).strip())
            if m.group(1) == "K":
                break  # the body starts after K:
    meta = Meta(source=source)
    meta.title = (fields.get("T") or [""])[0]
    meta.composer = (fields.get("C") or [""])[0]
    if "M" in fields and re.fullmatch(r"\d+/\d+", fields["M"][0]):
        meta.time_signature = fields["M"][0]
    if "K" in fields:
        k = re.match(r"([A-Ga-g][#b]?)\s*([A-Za-z]*)", fields["K"][0])
        if k:
            mode_text = k.group(2).lower()
            # a church mode by its full name (K:Edor is "E dorian"), as analyze and generation name it
            mode = _ABC_MODES.get(mode_text) or _ABC_MODES.get(mode_text[:3]) or mode_named(mode_text) or mode_text
            tonic = k.group(1)[0].upper() + k.group(1)[1:]
            meta.key = f"{tonic} {mode}"
    if "O" in fields:
        parts = [p.strip() for p in fields["O"][0].split(",") if p.strip()]
        if parts:
            meta.tags.append(f"region:{parts[-1]}")
            meta.tags.append(f"origin:{'/'.join(parts)}")
    if "R" in fields:
        meta.tags.append(f"rhythm:{fields['R'][0]}")
    return meta


_ABC_STRIP = re.compile(r'"[^"]*"|![^!]*!|\+[^+]*\+|\{[^}]*\}|%.*$', re.M)
_ABC_EVENT = re.compile(r"\[[^\]|:]*\]|[_^=]*[A-Ga-g][,']*|[zx]")


def abc_pickup_events(tune: str) -> tuple[int, int] | None:
    """How many notes or chords, and how many rests, come before the first bar line of
    the tune's body; None when there is no bar line."""
    lines = tune.splitlines()
    body = []
    started = False
    for ln in lines:
        if started:
            body.append(ln)
        elif _ABC_FIELD.match(ln) and ln.startswith("K:"):
            started = True
    text = _ABC_STRIP.sub("", "\n".join(body))
    text = re.sub(r"^[A-Za-z]:.*$", "", text, flags=re.M)  # inline fields on their own line
    text = re.sub(r"\[[A-Za-z]:[^\]]*\]", "", text)  # inline fields [K:..]
    bar = re.search(r"\||::", text)
    if bar is None:
        return None
    events = _ABC_EVENT.findall(text[: bar.start()])
    rests = sum(e in ("z", "x") for e in events)
    return len(events) - rests, rests


def shift_abc_pickup(music: symusic.Score, tune: str) -> symusic.Score:
    """abc2midi starts a tune's pickup (anacrusis) at time 0, so every bar line would
    fall early by the bar's missing part: move the notes right by it (a leading rest),
    as the written score has it."""
    import numpy as np

    found = abc_pickup_events(tune)
    if not found or not found[0] or not len(music.time_signatures) or not len(music.tracks):
        return music
    k, rests = found  # the k-th note onset (0-based) is the first after the bar line
    if rests:
        return music  # a pickup with rests in it: its length is not in the note onsets
    ts = music.time_signatures[0]
    bar = music.ticks_per_quarter * 4 * ts.numerator // ts.denominator
    onsets = np.unique(np.concatenate([t.notes.numpy()["time"] for t in music.tracks if len(t.notes)]))
    if k >= len(onsets):
        return music
    pickup = int(onsets[k])
    if not 0 < pickup < bar - music.ticks_per_quarter // 16:
        return music
    out = music.copy()
    for t in out.tracks:  # the notes move; the meter, key and tempo stated at the start stay there
        t.shift_time(bar - pickup, inplace=True)
    return out


def _read_abc(path: Path, limits: Limits) -> ReadResult:
    data = _read_bytes(path, limits)
    text = data.decode("utf-8", errors="replace") if _is_utf8(data) else data.decode("latin-1")
    tunes = split_abc_tunes(text)
    if not tunes:
        raise BadInputError(path, "not an ABC file: no tune (no 'X:' line)")
    if len(tunes) > MAX_ABC_TUNES:
        raise BadInputError(path, f"{len(tunes):,} tunes in one file, over the limit of {MAX_ABC_TUNES:,}")
    out = ReadResult([])
    for line, tune in tunes:
        where = f"{path}:{line}"
        try:
            prescan_abc(where, tune, limits)
        except BadInputError as e:
            out.skipped.append((where, e.problem))
            continue
        try:
            with quiet_c_output():
                music = symusic.Score.from_abc(tune)
        except RuntimeError as e:
            out.skipped.append((where, f"ABC tune not readable: {str(e)[:120]}"))
            continue
        music = shift_abc_pickup(music, tune)
        score = Score(music, abc_meta(tune, str(path)))
        if score.n_notes == 0:
            out.skipped.append((where, "ABC tune has no notes"))
            continue
        try:
            limits.check_score(where, score)
        except BadInputError as e:
            out.skipped.append((where, e.problem))
            continue
        # the key is the K: field's (abc_meta); K:none, K:HP or no tonic states none, though abc2midi
        # writes a C-major signature for it, which a MIDI file written from it would state
        if score.meta.key is None:
            score.music.key_signatures.clear()
        fill_meta_from_music(score, key=False)
        out.scores.append(score)
        out.content_hashes.append(hashlib.sha256(tune.encode("utf-8", "replace")).hexdigest())
    if not out.scores:
        why = out.skipped[0][1] if out.skipped else "no tune"
        raise BadInputError(path, f"no readable ABC tune ({why})")
    return out


MAX_ABC_TUNES = 5_000  # the largest file of the bundled folk corpus holds 720


def prescan_abc(where: str, tune: str, limits: Limits) -> None:
    """Counts of one ABC tune's text, before abc2midi reads it: voices, notes (note letters
    outside header and comment lines) and bars."""
    voices, notes, bars = set(), 0, 0
    for line in tune.splitlines():
        head = line[:2]
        if head == "V:":
            voices.add(line[2:].strip().split(" ")[0])
            continue
        if len(head) == 2 and head[1] == ":" and head[0].isalpha() or line.startswith("%"):
            continue
        body = re.sub(r'"[^"]*"|![^!]*!|\[[A-Za-z]:[^\]]*\]', "", line)  # chord names, decorations, inline fields
        notes += sum(1 for c in body if c in "ABCDEFGabcdefg")
        bars += body.count("|")
    limits.check_counts(where, notes=notes, parts=len(voices))
    limits.check_measures(where, bars // max(1, len(voices)))


def prescan_kern(path: Path | str, text: str, limits: Limits) -> None:
    """Counts of a Humdrum text before music21 parses it: spines, notes, bars."""
    spines, notes, bars = 0, 0, 0
    for line in text.splitlines():
        if not line or line.startswith("!"):
            continue
        fields = line.split("\t")
        spines = max(spines, len(fields))
        if line.startswith("="):
            bars += 1
        elif not line.startswith("*"):
            notes += sum(1 for f in fields for tok in f.split(" ") if re.search(r"[A-Ga-g]", tok) and "r" not in tok)
    limits.check_counts(path, notes=notes, parts=spines)
    limits.check_measures(path, bars)


def prescan_musicxml(path: Path | str, root, limits: Limits) -> None:
    """Counts of a parsed MusicXML tree (defusedxml's, cheap beside music21's parse): parts,
    notes, bars per part, nesting depth."""
    depth, stack = 0, [(root, 1)]
    while stack:
        el, d = stack.pop()
        depth = max(depth, d)
        if depth > MAX_XML_DEPTH:
            raise BadInputError(path, f"XML nested deeper than {MAX_XML_DEPTH} levels: not a MusicXML score")
        stack.extend((c, d + 1) for c in el)

    def local(tag) -> str:
        return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""

    notes = sum(1 for el in root.iter() if local(el.tag) == "note")
    if local(root.tag) == "score-timewise":  # measures hold parts
        ids = {p.get("id") for m in root if local(m.tag) == "measure" for p in m if local(p.tag) == "part"}
        n_parts, bars = len(ids), sum(1 for m in root if local(m.tag) == "measure")
    else:
        parts = [p for p in root if local(p.tag) == "part"]
        n_parts = len(parts)
        bars = max((sum(1 for m in p if local(m.tag) == "measure") for p in parts), default=0)
    if n_parts == 0:
        raise BadInputError(path, "MusicXML score with no parts")
    limits.check_counts(path, notes=notes, parts=n_parts)
    limits.check_measures(path, bars)


MAX_XML_DEPTH = 64  # MusicXML nests about ten deep


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


# --------------------------------------------------------------------------- MusicXML / Humdrum


def _safe_xml_text(path: Path, data: bytes, limits: Limits | None = None) -> bytes:
    """Reject DTD entity declarations (XXE, billion laughs) before music21 sees the XML;
    with ``limits``, also a score over them (:func:`prescan_musicxml`)."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as e:
        kind = type(e).__name__.replace("Forbidden", "")
        raise BadInputError(
            path, f"unsafe XML: it declares entities ({kind}); refused (XXE / entity expansion)"
        ) from None
    except Exception as e:  # ParseError
        raise BadInputError(path, f"not well-formed XML: {e}") from None
    if limits is not None:
        prescan_musicxml(path, root, limits)
    return data


def _xml_to_str(data: bytes) -> str:
    """Decode XML bytes by their BOM or declared encoding (some .mxl files are UTF-16)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16")
    if data[:3] == b"\xef\xbb\xbf":
        return data[3:].decode("utf-8", "replace")
    m = re.match(rb'<\?xml[^>]*encoding=["\']([A-Za-z0-9_.-]+)["\']', data[:200])
    enc = m.group(1).decode() if m else "utf-8"
    try:
        text = data.decode(enc, "replace")
    except LookupError:
        text = data.decode("utf-8", "replace")
    # music21 re-reads the declaration; drop it so it does not fight the decoded text.
    return re.sub(r"^<\?xml[^>]*\?>", "", text, count=1)


def _mxl_rootfile(path: Path, data: bytes, limits: Limits) -> bytes:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise BadInputError(path, "not a compressed MusicXML (.mxl) file: not a zip archive") from None
    total = sum(i.file_size for i in zf.infolist())
    if total > 8 * limits.max_bytes:
        raise BadInputError(path, f".mxl expands to {total / 2**20:.0f} MiB: refused (zip bomb?)")
    names = zf.namelist()
    root = None
    if "META-INF/container.xml" in names:
        cont = _safe_xml_text(path, zf.read("META-INF/container.xml"))
        m = re.search(rb'full-path="([^"]+)"', cont)
        if m:
            root = m.group(1).decode("utf-8", "replace")
    if root is None or root not in names:
        cands = [n for n in names if n.endswith((".xml", ".musicxml")) and not n.startswith("META-INF")]
        if not cands:
            raise BadInputError(path, ".mxl archive holds no MusicXML file")
        root = cands[0]
    return zf.read(root)


def _read_music21(path: Path, limits: Limits) -> ReadResult:
    from music21 import converter

    from tunesmith.fileio import third_party_log

    data = _read_bytes(path, limits)
    ext = path.suffix.lower()
    with parse_time_limit(path, limits.max_parse_seconds):
        try:
            with third_party_log("music21"):
                stream = _parse_music21(path, data, ext, limits, converter)
        except TunesmithError:
            raise
        except (Exception, RecursionError) as e:  # music21 raises many types on malformed input
            raise BadInputError(path, f"cannot parse {ext[1:]} file: {type(e).__name__}: {str(e)[:160]}") from None
        try:
            with third_party_log("music21"):
                score = music21_to_score(stream, source=str(path))
        except Exception as e:  # a duration the C++ layer cannot hold, a stream music21 built oddly, …
            why = ("a time or duration out of range" if "incompatible function arguments" in str(e)
                   else f"{type(e).__name__}: {str(e).splitlines()[0][:160]}")
            raise BadInputError(path, f"cannot convert this {ext[1:]} score: {why}") from None
    return _finish_music21(path, score, limits)


def _parse_music21(path: Path, data: bytes, ext: str, limits: Limits, converter):
    if ext in MXL_EXTS:
        xml = _safe_xml_text(path, _mxl_rootfile(path, data, limits), limits)
        return converter.parseData(_xml_to_str(xml), format="musicxml")
    if ext in XML_EXTS:
        xml = _safe_xml_text(path, data, limits)
        return converter.parseData(_xml_to_str(xml), format="musicxml")
    if not _looks_like_text(data[:512]) and not _is_utf8(data):  # Humdrum
        raise BadInputError(path, "not a Humdrum (**kern) file: binary data")
    text = data.decode("utf-8", "replace")
    prescan_kern(path, text, limits)
    return converter.parseData(text, format="humdrum")


def _finish_music21(path: Path, score, limits: Limits):
    if score.n_notes == 0:
        raise BadInputError(path, "no notes in this file")
    if not score.meta.title:
        score.meta.title = path.stem
    limits.check_score(path, score)
    return ReadResult([score])


def _read_audio(path: Path, limits: Limits) -> ReadResult:
    from tunesmith.music.audio import transcribe

    # no byte limit: a few minutes of WAV exceed 16 MiB; the duration bound (checked from the
    # header, before decoding) is what keeps memory bounded
    score = transcribe(path, max_minutes=min(limits.max_minutes, limits.max_audio_minutes))
    limits.check_score(path, score)
    return ReadResult([score])


# --------------------------------------------------------------------------- public API


def read_pieces(path: str | Path, *, limits: Limits | None = None) -> ReadResult:
    """Read every piece in a music file.

    Parameters
    ----------
    path : MIDI, MusicXML (.xml/.musicxml/.mxl), ABC (many tunes allowed), Humdrum (.krn),
        or audio (WAV/FLAC/OGG/MP3/AIFF), which is transcribed to notes with basic-pitch
    limits : size, note-count and duration bounds (defaults: 16 MiB, 500,000 notes, 180 min)

    Raises
    ------
    BadInputError
        naming the file and the problem, for anything that is not readable music.
    """
    limits = limits or Limits()
    p = Path(path)
    ext = p.suffix.lower()
    if not p.exists():
        raise BadInputError(p, "no such file")
    if ext in MIDI_EXTS:
        return _read_midi(p, limits)
    if ext in ABC_EXTS:
        return _read_abc(p, limits)
    if ext in XML_EXTS | MXL_EXTS | KERN_EXTS:
        return _read_music21(p, limits)
    if ext in AUDIO_EXTS:
        return _read_audio(p, limits)
    raise BadInputError(
        p, f"unsupported file type '{ext or '(none)'}'; readable: {', '.join(sorted(READABLE_EXTS))}"
    )


def load_score(path: str | Path, *, index: int = 0, limits: Limits | None = None) -> Score:
    """Read one piece (the ``index``-th of a multi-tune file, the first by default)."""
    res = read_pieces(path, limits=limits)
    if not 0 <= index < len(res.scores):
        raise BadInputError(path, f"has {len(res.scores)} piece(s), numbered 1–{len(res.scores)}; "
                                  f"no piece number {index + 1}")
    return res.scores[index]


def save_midi(score: Score, path: str | Path) -> Path:
    """Write a Standard MIDI File (type 1). It carries a marker saying that its bars are the
    score's (:data:`tunesmith.music.meter.BARS_AS_WRITTEN`), so that reading it back never looks
    for an upbeat written at time 0: a score's upbeat is padded with rest."""
    from tunesmith.music.meter import BARS_AS_WRITTEN

    p = Path(path)
    music = score.music
    if not any(str(m.text) == BARS_AS_WRITTEN for m in music.markers):
        music = music.copy()
        music.markers.append(symusic.TextMeta(0, BARS_AS_WRITTEN))
    music = _midi_key_signature(score, music)
    atomic_write_bytes(p, bytes(music.dumps_midi()))
    return p


def _midi_key_signature(score: Score, music: symusic.Score) -> symusic.Score:
    """A MIDI key signature says major or minor only. A tune stated in a church mode (ABC's
    ``K:Edor``) carries its mode's signature (E dorian: two sharps, written major by abc2midi), which
    a reader takes for D major: a tune exported and read again lost its tonic. Its opening signature
    is written as its tonic's major or minor key instead (E dorian: E minor), as ``score_key`` reads
    the mode; MusicXML keeps the mode's own signature and names the mode."""
    from tunesmith.music.keys import _stated_key, signature_sharps

    if not score.meta.key or not len(music.key_signatures):
        return music
    named = mode_named(score.meta.key.strip().partition(" ")[2])
    stated = _stated_key(score.meta.key)
    if named in (None, "ionian", "aeolian") or stated is None:
        return music
    tonic, quality = stated
    first = music.key_signatures[0]
    if first.time != 0 or first.key != signature_sharps(tonic, named):
        return music  # not the mode's signature at the start: the file's own, left as it is
    sharps = signature_sharps(tonic, "ionian" if quality == "major" else "aeolian")
    music = music.copy()
    music.key_signatures[0] = symusic.KeySignature(0, sharps, 0 if quality == "major" else 1)
    return music


def released_before_next(score: Score) -> Score:
    """A copy of ``score`` in which a note that runs into the next onset of its track, and ends
    before that note does (an overlap, not a held note under a moving line), ends where it begins."""
    from tunesmith.music.melody import release_overlaps

    out = score.copy()
    release_overlaps(out.music)
    return out


def save_musicxml(score: Score, path: str | Path) -> Path:
    """Write MusicXML that MuseScore opens (music21 does the notation: measures, ties, voices).
    music21 names parts and instruments with random ids; they are renumbered (P1, I1, …) so
    the same score always gives the same file."""
    from music21.exceptions21 import Music21Exception
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    from tunesmith.fileio import atomic_write_bytes, third_party_log

    with third_party_log("music21"):
        try:
            data = GeneralObjectExporter(score_to_music21(score)).parse()
        except Music21Exception:
            # music21's notation fails on some notes that run into the next one of their track (a
            # generated folk line whose first note, in a 2/2 pickup bar, holds a sixteenth into the
            # second: "cannot access qLenPos 4.0 …" while beaming). Written again with each such note
            # cut where the next begins, as a player would release it.
            data = GeneralObjectExporter(score_to_music21(released_before_next(score))).parse()
    names: dict[bytes, bytes] = {}

    def stable(m: re.Match) -> bytes:
        old = m.group(0)
        if old not in names:
            kind = old[:1]
            names[old] = kind + str(1 + sum(1 for k in names if k[:1] == kind)).encode()
        return names[old]

    data = re.sub(rb"\b[PI][0-9a-f]{32}\b", stable, data)
    return atomic_write_bytes(path, data)


