"""Prepared datasets: every piece parsed once, cached, split by content hash.

Layout of a dataset folder::

    dataset.json      name, source, counts, manifest hashes, format version
    manifest.jsonl    one line per piece: id, source, content hash, metadata, split, shard slice
    skipped.json      files or tunes that could not be read, and why
    shards/H.json     per source file (H = its sha256): the pieces found in it
    shards/H.bin      their MIDI bytes, back to back (read with symusic in microseconds)

A shard is written once per source-file content, so a re-run parses only new
or changed files, and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import multiprocessing as mp
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import symusic

from tunesmith.errors import BadInputError, OptionError, TunesmithError
from tunesmith.fileio import tunesmith_home  # noqa: F401  (re-exported: music.dataset.tunesmith_home)
from tunesmith.music.corpora import corpus_files, is_corpus
from tunesmith.music.io import SYMBOLIC_EXTS, Limits, atomic_write_bytes, read_pieces
from tunesmith.music.score import Meta, Score

FORMAT_VERSION = 1
PARSER_VERSION = 8  # 2, 3: pickup bars padded so bar lines fall right (music21 formats, ABC); 4: key signature the parts agree on; 5: a MIDI file's upbeat (written at time 0, or as a short first bar) placed in bar 1; 6: a MusicXML/kern signature without a mode states no key, a church mode (E dorian) is stated; 7: an ABC church mode by its full name (K:Edor: "E dorian"); 8: ABC K:none (or no tonic) states no key and has no signature; bump when readers change what they produce, to re-parse shards
SPLITS = ("train", "valid", "test")


def split_of(content_hash: str, valid: float = 0.1, test: float = 0.1) -> str:
    """Deterministic split from a piece's content hash: adding files never moves a piece."""
    u = int(content_hash[:12], 16) / 16**12
    if u < test:
        return "test"
    if u < test + valid:
        return "valid"
    return "train"


def _portable_manifest(entries: list[dict], files: list[Path]) -> bytes:
    """The manifest as it would read on any machine: source paths relative to the folder
    the files share. The manifest on disk keeps absolute paths (readers open them); its hash
    must not, or a corpus installed in another place (another virtual environment, another
    checkout) would look like other data, and a model's copy guard and ``--resume`` would
    refuse it."""
    root = os.path.commonpath([str(f) for f in files]) if files else ""
    root = root if len(files) > 1 or not root else str(Path(root).parent)

    def rel(path: str) -> str:
        try:
            return Path(path).relative_to(root).as_posix()
        except ValueError:
            return path

    lines = []
    for e in entries:
        d = dict(e, source=rel(e["source"]))
        if isinstance(d.get("meta"), dict) and d["meta"].get("source"):
            d["meta"] = dict(d["meta"], source=rel(d["meta"]["source"]))
        lines.append(json.dumps(d, sort_keys=True) + "\n")
    return "".join(lines).encode()


def split_hash(entries: list[dict]) -> str:
    """Which pieces (by content hash) are in which split: what a copy guard needs to know to
    be the guard of a model's training pieces. It changes when a piece is added, removed or
    moved, not when a reader's output for a piece changes."""
    rows = sorted(f"{e['hash']} {e['split']}\n" for e in entries)
    return hashlib.sha256("".join(rows).encode()).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- parsing one file


def _parse_file(args: tuple[str, str, Limits]) -> dict:
    """Parse one source file into a shard record (runs in a worker process)."""
    path, file_hash, limits = args
    fault = os.environ.get("TUNESMITH_FAULT_FILE", "")  # fault injection for tests: kill:NAME or hang:NAME
    if fault and fault.split(":", 1)[1] == Path(path).name:
        if fault.startswith("kill:"):
            os.kill(os.getpid(), 9)
        time.sleep(3600)
    rec: dict = {"file_hash": file_hash, "parser_version": PARSER_VERSION,
                 "limits": asdict(limits), "pieces": [], "skipped": []}
    blobs: list[bytes] = []
    try:
        res = read_pieces(path, limits=limits)
    except TunesmithError as e:
        rec["skipped"].append([path, str(e.problem if isinstance(e, BadInputError) else e)])
        return {"rec": rec, "blob": b""}
    except Exception as e:  # a reader bug must not stop a 10,000-file run: report it
        rec["skipped"].append([path, f"unexpected {type(e).__name__}: {str(e)[:200]}"])
        return {"rec": rec, "blob": b""}
    rec["skipped"] = [[w, why] for w, why in res.skipped]
    offset = 0
    for i, score in enumerate(res.scores):
        blob = bytes(score.music.dumps_midi())
        own = res.content_hashes[i] if i < len(res.content_hashes) else None
        piece_hash = own or file_hash
        pitches = score.pitches()
        rec["pieces"].append({
            "index": i,
            "hash": piece_hash,
            "meta": score.meta.to_dict(),
            "n_notes": score.n_notes,
            "n_tracks": score.n_tracks,
            "seconds": round(score.duration_seconds(), 3),
            "pitch_min": int(pitches.min()) if len(pitches) else None,
            "pitch_max": int(pitches.max()) if len(pitches) else None,
            "time_signature": score.time_signature(),
            "offset": offset,
            "length": len(blob),
        })
        blobs.append(blob)
        offset += len(blob)
    return {"rec": rec, "blob": b"".join(blobs)}


def _skipped(task: tuple[str, str, Limits], why: str) -> dict:
    path, file_hash, limits = task
    # "retry": the next prepare parses the file again (the fault may have been the machine's)
    return {"rec": {"file_hash": file_hash, "parser_version": PARSER_VERSION, "limits": asdict(limits),
                    "pieces": [], "skipped": [[path, why]], "retry": True}, "blob": b""}


def file_time_limit(limits: Limits) -> float:
    """How long one file may take in a worker before it is stopped: the parse limit (which
    stops music21 from inside) with room to spare, for parsers in C that cannot be."""
    return 2 * limits.max_parse_seconds + 5


def _quiet_worker() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)


# --------------------------------------------------------------------------- prepare


def resolve_source(source: str) -> tuple[str, list[Path]]:
    """A corpus name, a folder or a single file → (dataset name, source files)."""
    if is_corpus(source):
        return source, list(corpus_files(source))
    p = Path(source)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SYMBOLIC_EXTS)
        if not files:
            raise BadInputError(p, f"no music files ({', '.join(sorted(SYMBOLIC_EXTS))}) in this folder")
        return p.resolve().name, files
    if p.is_file():
        return p.stem, [p]
    from tunesmith.music.corpora import CORPORA

    raise OptionError("data", f"'{source}' is neither a bundled corpus ({', '.join(CORPORA)}) "
                      "nor an existing folder or file")


@dataclass
class PrepareReport:
    path: Path
    n_files: int
    n_parsed: int
    n_cached: int
    n_pieces: int
    n_skipped: int
    n_duplicates: int
    seconds: float
    splits: dict | None = None


def prepare(source: str, out: str | Path | None = None, *, workers: int | None = None,
            limits: Limits | None = None, progress: bool = True) -> PrepareReport:
    """Parse ``source`` (corpus name, folder or file) into a dataset folder (see module doc)."""

    t0 = time.perf_counter()
    limits = limits or Limits()
    name, files = resolve_source(source)
    out = Path(out) if out else default_dataset_dir(source)
    out.mkdir(parents=True, exist_ok=True)
    with _prepare_lock(out):
        return _prepare(source, name, files, out, workers, limits, progress, t0)


@contextlib.contextmanager
def _prepare_lock(out: Path):
    """One prepare per dataset folder at a time: a second one waits (and says so), then finds
    the first one's shards cached. Shards and manifest are also written whole-file-then-rename,
    so a reader never sees half of one."""
    import fcntl
    import sys

    with open(out / ".prepare.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"tunesmith: another 'data prepare' is writing {out}; waiting for it to finish", file=sys.stderr)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _prepare(source, name, files, out: Path, workers, limits: Limits, progress: bool, t0: float) -> PrepareReport:
    from tqdm import tqdm

    shards = out / "shards"
    shards.mkdir(parents=True, exist_ok=True)

    hashes, unreadable = [], []
    for f in files:
        try:
            hashes.append(sha256_file(f))
        except OSError as e:  # permission denied, vanished: skip it, say why, keep the rest
            hashes.append(None)
            unreadable.append([str(f), f"cannot read: {e.strerror or e}"])
    todo = []
    for f, h in zip(files, hashes):
        if h is None:
            continue
        js = shards / f"{h}.json"
        if js.exists() and (shards / f"{h}.bin").exists():
            try:
                rec = json.loads(js.read_text())
                if (rec.get("parser_version") == PARSER_VERSION and rec.get("limits") == asdict(limits)
                        and not rec.get("retry")):
                    continue
            except (OSError, json.JSONDecodeError):
                pass  # corrupt shard (killed mid-write is impossible, but be safe): re-parse
        todo.append((str(f), h, limits))

    n_workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
    bar = tqdm(total=len(todo), desc=f"prepare {name}", unit="file", disable=not progress or not todo,
               dynamic_ncols=True)

    def save(result: dict) -> None:
        rec, blob = result["rec"], result["blob"]
        h = rec["file_hash"]
        atomic_write_bytes(shards / f"{h}.bin", blob)
        atomic_write_bytes(shards / f"{h}.json", json.dumps(rec).encode())  # written last: marks done
        bar.update(1)

    if n_workers > 1 and len(todo) > 4:
        # Biggest files first, so no worker is left with one long file at the end. pebble's pool
        # (not multiprocessing's, which waits forever for a worker that died) turns a worker
        # killed on a file, or stuck in C code past the time limit, into a skipped file.
        from concurrent.futures import TimeoutError as Timeout

        from pebble import ProcessExpired, ProcessPool

        todo.sort(key=lambda t: -os.path.getsize(t[0]))
        per_file = file_time_limit(limits)
        with ProcessPool(n_workers, initializer=_quiet_worker, context=mp.get_context("spawn")) as pool:
            futures = [(t, pool.schedule(_parse_file, args=(t,), timeout=per_file)) for t in todo]
            for t, fut in futures:
                try:
                    result = fut.result()
                except Timeout:
                    result = _skipped(t, f"still parsing after {per_file:g} s: stopped")
                except ProcessExpired as e:
                    result = _skipped(t, f"the parser process died on this file (exit code {e.exitcode})")
                save(result)
    else:
        from tunesmith.music.io import quiet_c_output

        for t in todo:
            with quiet_c_output():
                result = _parse_file(t)
            save(result)
    bar.close()

    # Assemble the manifest in source order; drop exact duplicates (same content hash), and in a
    # folder of one's own, a piece saved in several formats (same stem, the same notes)
    entries, skipped, seen = [], list(unreadable), set()
    same_stem: dict[tuple[str, str], list[tuple[Path, dict]]] = {}
    n_dup = 0
    for f, h in zip(files, hashes):
        if h is None:
            continue
        rec = json.loads((shards / f"{h}.json").read_text())
        skipped.extend(rec["skipped"])
        for p in rec["pieces"]:
            if not p.get("n_notes"):  # nothing to learn from, nothing to compare with
                skipped.append([f"{f}" + (f" (piece {p['index'] + 1})" if len(rec["pieces"]) > 1 else ""),
                                "no notes"])
                continue
            if p["hash"] in seen:
                n_dup += 1
                continue
            if not is_corpus(source) and len(rec["pieces"]) == 1:
                kept = same_stem.setdefault((str(Path(f).parent), Path(f).stem), [])
                # the notes are read only where a stem comes again (most folders have none)
                if kept:
                    notes = _note_signature(shards / f"{h}.bin", p)
                    if any(_note_signature(*k) == notes for k in kept):
                        n_dup += 1
                        continue
                kept.append((shards / f"{h}.bin", p))
            seen.add(p["hash"])
            e = dict(p)
            e["id"] = p["hash"][:16]
            e["source"] = str(f)
            e["shard"] = h
            e["split"] = split_of(p["hash"])
            entries.append(e)
    if not entries:
        why = "; ".join(f"{Path(w).name}: {y}" for w, y in skipped[:3]) + (" …" if len(skipped) > 3 else "")
        raise BadInputError(source, f"no readable pieces in {len(files)} file(s)" + (f" ({why})" if why else ""))
    manifest = "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries).encode()
    atomic_write_bytes(out / "manifest.jsonl", manifest)
    atomic_write_bytes(out / "skipped.json", json.dumps(
        [{"where": w, "why": why} for w, why in skipped], indent=1).encode())
    counts = Counter(e["split"] for e in entries)
    info = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "source": source if is_corpus(source) else str(Path(source).resolve()),
        "n_pieces": len(entries),
        "splits": {s: counts.get(s, 0) for s in SPLITS},
        "n_skipped": len(skipped),
        "n_duplicates": n_dup,
        "manifest_sha256": hashlib.sha256(_portable_manifest(entries, files)).hexdigest(),
        # what earlier versions recorded (the hash of the manifest with its absolute paths):
        # a run or model that recorded it on this machine is still recognised
        "manifest_sha256_as_written": hashlib.sha256(manifest).hexdigest(),
        "split_sha256": split_hash(entries),
    }
    atomic_write_bytes(out / "dataset.json", json.dumps(info, indent=1).encode())
    return PrepareReport(out, len(files), len(todo), len(files) - len(todo), len(entries),
                         len(skipped), n_dup, time.perf_counter() - t0, info["splits"])


@functools.lru_cache(maxsize=256)
def _note_signature_of(blob_path: Path, offset: int, length: int) -> tuple:
    with open(blob_path, "rb") as fh:
        fh.seek(offset)
        music = symusic.Score.from_midi(fh.read(length))
    tpq = music.tpq
    return tuple(sorted((round(int(n.time) * 96 / tpq), int(n.pitch)) for t in music.tracks for n in t.notes))


def _note_signature(blob_path: Path, piece: dict) -> tuple:
    """A piece's notes as (onset in 96ths of a quarter, pitch), sorted: the same for the MIDI and
    the MusicXML ``tunesmith generate`` writes of one piece (readers may shorten a note by a tick,
    so lengths are left out), so that a folder of its output holds each piece once — indexed
    once, and never in two splits."""
    return _note_signature_of(blob_path, int(piece["offset"]), int(piece["length"]))


def default_dataset_dir(source: str) -> Path:
    if is_corpus(source):
        return tunesmith_home() / "datasets" / source
    p = Path(source).resolve()
    tag = hashlib.sha256(str(p).encode()).hexdigest()[:8]
    return tunesmith_home() / "datasets" / f"{p.stem}-{tag}"


# --------------------------------------------------------------------------- reading a dataset


class Dataset:
    """A prepared dataset folder: its manifest, and its pieces loaded on demand."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        info = self.path / "dataset.json"
        if not info.is_file():
            raise BadInputError(self.path, "not a prepared dataset (no dataset.json); "
                                "run 'tunesmith data prepare' first")
        try:
            self.info = json.loads(info.read_text())
            self.entries = [json.loads(ln) for ln in (self.path / "manifest.jsonl").read_text().splitlines() if ln]
        except (OSError, json.JSONDecodeError) as e:
            raise BadInputError(self.path, f"corrupt dataset: {e}") from None
        self._blobs: dict[str, bytes] = {}

    @property
    def name(self) -> str:
        return self.info["name"]

    @property
    def manifest_hash(self) -> str:
        return self.info["manifest_sha256"]

    def is_manifest(self, sha256: str) -> bool:
        """Whether ``sha256`` names this dataset's manifest (the portable hash, or the hash
        of the manifest as written that earlier versions recorded)."""
        return sha256 in (self.info.get("manifest_sha256"), self.info.get("manifest_sha256_as_written"))

    def hashes(self, prefix: str = "") -> dict:
        """What a model or run records of the data it was trained on."""
        out = {f"{prefix}manifest_sha256": self.manifest_hash, f"{prefix}split_sha256": self.split_hash}
        if self.info.get("manifest_sha256_as_written"):
            out[f"{prefix}manifest_sha256_as_written"] = self.info["manifest_sha256_as_written"]
        return out

    @property
    def split_hash(self) -> str:
        return self.info.get("split_sha256") or split_hash(self.entries)

    def split(self, name: str) -> list[dict]:
        return [e for e in self.entries if e["split"] == name]

    def _blob(self, shard: str) -> bytes:
        if not (isinstance(shard, str) and re.fullmatch(r"[0-9a-f]{64}", shard)):
            # a manifest names shards by content hash; anything else (../x) would read outside the dataset
            raise BadInputError(self.path, f"corrupt dataset: the manifest names a shard {str(shard)[:40]!r}")
        if shard not in self._blobs:
            self._blobs[shard] = (self.path / "shards" / f"{shard}.bin").read_bytes()
        return self._blobs[shard]

    def load(self, entry: dict) -> Score:
        b = self._blob(entry["shard"])[entry["offset"] : entry["offset"] + entry["length"]]
        try:
            return Score(symusic.Score.from_midi(b), Meta.from_dict(entry["meta"]))
        except (RuntimeError, TypeError, KeyError) as e:
            raise BadInputError(self.path, f"corrupt dataset: piece {entry.get('id')}: {e}") from None

    def scores(self, split: str | None = None) -> Iterator[tuple[dict, Score]]:
        for e in self.entries:
            if split is None or e["split"] == split:
                yield e, self.load(e)

    def summary(self) -> dict:
        """Counts, durations, pitch range, keys and meters."""
        es = self.entries
        lo = [e["pitch_min"] for e in es if e["pitch_min"] is not None]
        hi = [e["pitch_max"] for e in es if e["pitch_max"] is not None]
        secs = np.array([e["seconds"] for e in es]) if es else np.zeros(1)
        return {
            "name": self.name,
            "pieces": len(es),
            "splits": {s: len(self.split(s)) for s in SPLITS},
            "notes": int(sum(e["n_notes"] for e in es)),
            "hours": round(float(secs.sum()) / 3600, 2),
            "median_seconds": round(float(np.median(secs)), 1),
            "pitch_range": [min(lo), max(hi)] if lo else None,
            "keys": Counter(e["meta"].get("key") or "unknown" for e in es).most_common(8),
            "meters": Counter(e.get("time_signature") or "unknown" for e in es).most_common(8),
            "tracks": Counter(e["n_tracks"] for e in es).most_common(4),
            "skipped": self.info.get("n_skipped", 0),
            "duplicates": self.info.get("n_duplicates", 0),
        }


def open_dataset(source: str, *, progress: bool = True, limits: Limits | None = None) -> Dataset:
    """A prepared dataset folder, or a corpus name / folder of files (prepared on first use,
    incrementally afterwards)."""
    p = Path(source)
    if (p / "dataset.json").is_file():
        return Dataset(p)
    report = prepare(source, progress=progress, limits=limits)
    return Dataset(report.path)
