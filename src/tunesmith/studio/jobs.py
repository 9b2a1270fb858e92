"""The studio's job queue and its worker processes.

The queue is the ``jobs`` table: a request only inserts a row; worker processes (started
and watched by :class:`WorkerPool`) claim rows one at a time, report progress into them and
write results. Cancelling a running job ends its worker process (torch cannot be
interrupted mid-step); the pool starts a new one. A job's files are written in a hidden
folder and renamed into place whole. After a restart, jobs that were running are queued
again (the same seed gives the same piece) or, after :data:`MAX_ATTEMPTS`, failed with a
message: nothing is silently lost.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import threading
import time
import traceback
import uuid
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select, update

from tunesmith.errors import BadInputError, ParameterError, TunesmithError
from tunesmith.store import db
from tunesmith.store.models import Job, Listener, Piece

KINDS = ("generate", "rework", "import", "evaluate", "catalogue", "voice", "render", "find")
MAX_ATTEMPTS = 3
ACTIVE = ("queued", "running", "cancelling")


def now() -> datetime:
    return datetime.now(timezone.utc)


def submit(session, listener_id: int, kind: str, params: dict, *, limit: int) -> Job:
    """Queue a job; a listener may have at most ``limit`` jobs queued or running."""
    if kind not in KINDS:
        raise ParameterError("kind", f"unknown job kind '{kind}'")
    n = session.scalar(select(func.count()).select_from(Job).where(Job.listener_id == listener_id,
                                                                   Job.status.in_(ACTIVE)))
    if n >= limit:
        raise QueueFull(f"you already have {n} jobs queued or running (at most {limit}); wait or cancel one")
    job = Job(listener_id=listener_id, kind=kind, params=params, status="queued", progress=0.0, message="queued",
              attempts=0, created_at=now())
    session.add(job)
    session.flush()
    return job


class QueueFull(TunesmithError):
    pass


def cancel(session, job: Job) -> None:
    if job.status == "queued":
        job.status, job.message, job.finished_at = "cancelled", "cancelled before it started", now()
    elif job.status == "running":
        job.status, job.message = "cancelling", "cancelling…"


def recover(url: str, *, reason: str) -> int:
    """Jobs left running by workers that are gone: queued again, or failed after
    :data:`MAX_ATTEMPTS`; a job being cancelled is cancelled. Returns how many were touched."""
    n = 0
    with db.session(url) as s:
        for job in s.scalars(select(Job).where(Job.status.in_(("running", "cancelling")))):
            n += 1
            job.worker = None
            if job.status == "cancelling":
                job.status, job.message, job.finished_at = "cancelled", "cancelled", now()
            elif job.attempts >= MAX_ATTEMPTS:
                job.status, job.finished_at = "failed", now()
                job.message = f"{reason}; gave up after {job.attempts} attempts"
            else:
                job.status, job.progress, job.message = "queued", 0.0, f"{reason}; queued again"
    return n


def seconds_per_unit(session, kind: str, model: str | None) -> float | None:
    """The mean seconds per unit of work (bars × pieces) of the last finished jobs like this one."""
    rows = session.execute(select(Job.params, Job.result).where(Job.kind == kind, Job.status == "done")
                           .order_by(Job.id.desc()).limit(50)).all()
    rates = [r[1]["seconds"] / r[1]["units"] for r in rows
             if r[1] and r[1].get("units") and r[0].get("model") == model and "seconds" in r[1]]
    return sum(rates) / len(rates) if rates else None


# --------------------------------------------------------------------------- the worker side


class Progress:
    """What a running job reports: a fraction and a message, written at most 4 times a second."""

    def __init__(self, url: str, job_id: int):
        self.url, self.job_id, self._last = url, job_id, 0.0

    def __call__(self, fraction: float, message: str, *, force: bool = False) -> None:
        t = time.monotonic()
        if not force and t - self._last < 0.25:
            return
        self._last = t
        with db.session(self.url) as s:
            s.execute(update(Job).where(Job.id == self.job_id, Job.status == "running")
                      .values(progress=max(0.0, min(1.0, fraction)), message=message))


_MODELS: dict[str, object] = {}


def _model(name: str):
    from tunesmith.generate.api import load_model

    if name not in _MODELS:
        if len(_MODELS) >= 4:
            _MODELS.pop(next(iter(_MODELS)))
        _MODELS[name] = load_model(name)
    return _MODELS[name]


def _owner_name(s, listener_id: int) -> str:
    return s.scalar(select(Listener.name).where(Listener.id == listener_id)) or "anon"


def _add_piece(url: str, job: Job, score, *, kind: str, title: str, model: str | None, settings: dict,
               work: Path, recording: Path | None = None) -> int:
    from tunesmith.studio.pieces import write_piece

    folder, short = write_piece(score, work=work, recording=recording, recording_name=(settings or {}).get("uploaded_as")
                                or "")
    with db.session(url) as s:
        owner = _owner_name(s, job.listener_id)
        p = Piece(key=f"studio/{owner}/{folder.name}", kind=kind, title=title[:400], owner_id=job.listener_id,
                  model=model, settings=settings, path=str(folder / "piece.mid"),
                  files=sorted(f.name for f in folder.iterdir()),
                  meta={"analysis": short, "key": short.get("key"), "meter": short.get("meter"),
                        "voices": sum(1 for t in score.music.tracks if len(t.notes))},
                  public=False, created_at=now())
        s.add(p)
        s.flush()
        return p.id


def _visible_piece(s, piece_id, listener_id) -> Piece:
    from tunesmith.studio.pieces import find_visible

    p = find_visible(s, int(piece_id), listener_id)
    if p is None:
        raise BadInputError(f"piece {piece_id}", "no such piece")
    return p


def _run_generate(url, job, progress, work):
    from tunesmith.generate.base import check_controls
    from tunesmith.music.io import load_score

    p = dict(job.params)
    model_name = p.pop("model")
    bars, seed, num = int(p.pop("bars", 8)), int(p.pop("seed", 0)), int(p.pop("num", 1))
    primer_id = p.pop("primer_piece", None)
    mm = _model(model_name)
    controls = check_controls(mm, p)
    if primer_id is not None:
        with db.session(url) as s:
            primer = _visible_piece(s, primer_id, job.listener_id)
            path, ptitle = primer.path, primer.title
        controls = check_controls(mm, {**p, "primer": path})
        controls["primer"] = load_score(path)
    from tunesmith.progress import reporting

    ids = []
    for i in range(num):
        progress(i / num, f"piece {i + 1} of {num}", force=True)

        def inner(done, total, unit, i=i):
            progress((i + done / total) / num, f"piece {i + 1} of {num}: {unit} {int(done)} of {int(total)}")

        with reporting(inner):
            g = mm.generate(bars=bars, seed=seed + i, **controls)
        title = f"{model_name} #{seed + i}" + (f" after {ptitle}" if primer_id is not None else "")
        settings = {"model": model_name, "bars": bars, "seed": seed + i, **job.params, "num": num}
        if g.report is not None:
            settings["report"] = g.report
        ids.append(_add_piece(url, job, g.score, kind="generated", title=title, model=model_name,
                              settings=settings, work=work / f"p{i}"))
    return {"pieces": ids, "units": bars * num}


def _run_rework(url, job, progress, work):
    from tunesmith.generate.rework import rework
    from tunesmith.generate.rollmodels import parse_bars, parse_voices
    from tunesmith.music.io import load_score

    p = dict(job.params)
    with db.session(url) as s:
        src = _visible_piece(s, p["piece"], job.listener_id)
        path, title = src.path, src.title
    progress(0.0, f"{p['command']} with {p['model']}", force=True)
    from tunesmith.progress import reporting

    mm = _model(p["model"])
    with reporting(lambda done, total, unit: progress(done / total, f"{p['command']}: {unit} {int(done)} of "
                                                                    f"{int(total)}")):
        g = rework(mm, p["command"], load_score(path), temperature=float(p.get("temperature", 1.0)),
                   iterations=p.get("iterations"), seed=int(p.get("seed", 0)), rules=p.get("rules"),
                   bars=parse_bars(p["bars"]) if p["command"] == "infill" else None,
                   voices=parse_voices(p.get("voices")) if p["command"] == "infill" else None,
                   melody_track=p.get("melody_track"), particles=p.get("particles"))
    done = {"harmonize": "harmonized", "infill": "infilled"}[p["command"]]
    pid = _add_piece(url, job, g.score, kind="generated", title=f"{title} ({done} by {p['model']})",
                     model=p["model"], settings={**p, "report": g.report}, work=work / "p")
    return {"pieces": [pid], "units": max(1, g.bars)}


def _run_import(url, job, progress, work):
    from tunesmith.music.audio import AUDIO_EXTS, transcribe
    from tunesmith.music.io import read_pieces

    p = job.params
    src = Path(p["file"])
    progress(0.0, "reading the file" if src.suffix not in AUDIO_EXTS else "transcribing the audio", force=True)
    scores = [transcribe(src, meter=p.get("meter"))] if src.suffix.lower() in AUDIO_EXTS else read_pieces(src).scores
    scores = scores[: int(p.get("max_pieces", 20))]
    ids = []
    for i, sc in enumerate(scores):
        progress(i / len(scores), f"piece {i + 1} of {len(scores)}")
        title = sc.meta.title or p.get("title") or src.stem
        ids.append(_add_piece(url, job, sc, kind="upload", title=p.get("title") or title, model=None,
                              settings={"uploaded_as": p.get("name")}, work=work / f"p{i}",
                              recording=src if src.suffix.lower() in AUDIO_EXTS else None))
    return {"pieces": ids, "units": len(ids)}


def _run_evaluate(url, job, progress, work):
    from tunesmith.evaluate.suite import piece_originality
    from tunesmith.models.checkpoint import read_config
    from tunesmith.models.registry import resolve
    from tunesmith.music.io import load_score

    with db.session(url) as s:
        piece = _visible_piece(s, job.params["piece"], job.listener_id)
        path, model = piece.path, piece.model
    training = job.params.get("training")
    if not training and model:
        training = ((read_config(resolve(model)).get("representation") or {}).get("dataset"))
    if not training:
        raise BadInputError(f"piece {job.params['piece']}", "no training set to compare with (give one)")
    progress(0.1, f"indexing the training set ({training}; the first time takes a while)", force=True)
    from tunesmith.fileio import finite

    res = finite(piece_originality(load_score(path), training))  # an undefined share is null, never NaN
    with db.session(url) as s:
        piece = s.get(Piece, int(job.params["piece"]))
        piece.meta = {**(piece.meta or {}), "originality": res}
    return {"pieces": [int(job.params["piece"])], "units": 1}


def _run_catalogue(url, job, progress, work):
    from tunesmith.recommend.catalogue import add_corpora
    from tunesmith.recommend.service import fit

    corpora = job.params.get("corpora") or ["bach-chorales"]
    progress(0.05, f"adding {', '.join(corpora)} to the catalogue", force=True)
    added = add_corpora(corpora, url=url, progress=False)
    progress(0.6, "fitting the recommender", force=True)
    fit(url, progress=False)
    return {"added": added, "units": 1}


def _run_voice(url, job, progress, work):
    """Play a piece with a waveform GAN (notes as raw audio): the WAV joins the piece's folder."""
    from tunesmith.generate.notes import NotesGAN
    from tunesmith.music.io import load_score
    from tunesmith.music.render import write_audio

    p = job.params
    with db.session(url) as s:
        piece = _visible_piece(s, p["piece"], job.listener_id)
        path = piece.path
    progress(0.1, f"{p['model']} plays every note", force=True)
    gan = NotesGAN.load(p["model"])
    audio = gan.play_score(load_score(path), p.get("instrument"), seed=int(p.get("seed", 0)))
    write_audio(Path(path).parent / "piece.gan.wav", audio, gan.sample_rate)
    with db.session(url) as s:
        piece = s.get(Piece, int(p["piece"]))
        piece.meta = {**(piece.meta or {}), "voiced_by": {"model": p["model"], "instrument": p.get("instrument")}}
    return {"pieces": [int(p["piece"])], "units": 1}


def _catalogue_score(piece_id, corpus: str | None, digest: str | None):
    """A catalogue piece's score, read from its corpus's prepared data by its content hash."""
    from tunesmith.music.corpora import CORPORA
    from tunesmith.music.dataset import open_dataset

    if not corpus or not digest:
        raise BadInputError(f"piece {piece_id}", "not a catalogue piece")
    for name in [corpus] + [n for n, c in CORPORA.items() if corpus in c.members]:
        d = open_dataset(name, progress=False)
        hit = [e for e in d.entries if (e.get("hash") or e["id"]) == digest]
        if hit:
            return d.load(hit[0])
    raise BadInputError(f"piece {piece_id}", f"not found in the prepared {corpus} data")


def _run_render(url, job, progress, work):
    """A catalogue piece made listenable: its audio, score, piano roll and analysis, written
    once into a studio folder (the store row keeps its key, corpus and content hash)."""
    from tunesmith.studio.pieces import piece_file, write_piece

    with db.session(url) as s:
        piece = _visible_piece(s, job.params["piece"], job.listener_id)
        if piece_file(piece, "wav") is not None:
            return {"pieces": [piece.id], "units": 1}
        corpus, digest = piece.corpus, piece.content_hash
    progress(0.1, f"reading it from {corpus}", force=True)
    score = _catalogue_score(job.params["piece"], corpus, digest)
    progress(0.4, "rendering the audio and engraving the score", force=True)
    folder, short = write_piece(score, work=work / "p")
    with db.session(url) as s:
        piece = s.get(Piece, int(job.params["piece"]))
        piece.path = str(folder / "piece.mid")
        piece.files = sorted(f.name for f in folder.iterdir())
        piece.meta = {**(piece.meta or {}), "analysis": short}
    return {"pieces": [int(job.params["piece"])], "units": 1}


def _run_find(url, job, progress, work):
    """Which known tunes a melody resembles: ``tunesmith search`` over the studio's sources (the
    bundled corpora unless the admin named others), indexed once into the studio's home. The
    query is an uploaded file (MIDI, MusicXML, ABC, kern, a recording — transcribed) or a piece
    the listener may see, optionally some of its bars. The index holds only those sources, never a
    listener's pieces; a hit that is in the catalogue links to it."""
    from tunesmith.mir.search import (
        SearchIndex,
        build_part,
        default_sources,
        is_indexed,
        query_melody,
    )
    from tunesmith.studio.pieces import piece_file

    p = job.params
    sources = p.get("sources") or default_sources()
    todo = [src for src in sources if not is_indexed(src)]
    for k, src in enumerate(todo):
        progress(0.8 * k / len(todo), f"indexing {Path(src).name} for the search (once; the bundled corpora "
                 "take a few minutes)", force=True)
        build_part(src, progress=False)
    bars = tuple(p["bars"]) if p.get("bars") else None
    exclude = None
    if p.get("piece") is not None:
        with db.session(url) as s:
            piece = _visible_piece(s, p["piece"], job.listener_id)
            path = piece_file(piece, "mid")
            corpus, digest, label = piece.corpus, piece.content_hash, piece.title or piece.key
        if path is None:  # a catalogue piece not yet made listenable: its score from the corpus
            progress(0.85, f"reading it from {corpus}", force=True)
            path = _catalogue_score(p["piece"], corpus, digest)
    else:
        path, label = Path(p["file"]), p.get("name") or "the query"
        from tunesmith.studio.security import AUDIO_KINDS

        progress(0.85, "transcribing the recording" if p.get("kind") in AUDIO_KINDS else "reading the query",
                 force=True)
    try:
        q = query_melody(path, bars=bars)
        progress(0.95, f"searching with its melody ({len(q.pitches)} notes)", force=True)
        idx = SearchIndex.load()
        if p.get("piece") is not None:
            exclude = idx.position.get(digest) if digest else None  # a catalogue piece is not its own match
        hits = idx.search(q, top=int(p.get("top", 10)), exclude=exclude)
    except TunesmithError as e:  # the query itself is wrong: it will not be tried again, so it is not kept
        if p.get("file"):
            Path(p["file"]).unlink(missing_ok=True)
        if isinstance(e, BadInputError) and e.path == str(path):  # named as the listener knows it, not the server's path
            raise BadInputError(label, e.problem) from None
        raise
    if p.get("file"):  # an uploaded query is kept only until its search is done
        Path(p["file"]).unlink(missing_ok=True)
    with db.session(url) as s:
        linked = dict(s.execute(select(Piece.content_hash, Piece.id).where(
            Piece.kind == "corpus", Piece.content_hash.in_([h.piece_id for h in hits]))).all())
    out = {"hits": [{**h.to_dict(), "piece": linked.get(h.piece_id)} for h in hits], "query": label[:200],
           "query_notes": len(q.pitches), "bars": list(bars) if bars else None, "units": 1}
    if not q.metric:  # a recording: the tune as heard, so that a hummed query with a wrong note can be hummed again
        from tunesmith.mir.analysis import spell_melody

        out["heard"] = spell_melody(q.pitches)[:48]
        if q.voices_heard is not None:
            out["voices_heard"] = round(q.voices_heard, 3)
    return out


HANDLERS = {"generate": _run_generate, "rework": _run_rework, "import": _run_import, "evaluate": _run_evaluate,
            "catalogue": _run_catalogue, "voice": _run_voice, "render": _run_render, "find": _run_find}


def claim(url: str, worker: str) -> Job | None:
    """Take the oldest queued job (atomically: two workers never take the same one)."""
    with db.session(url) as s:
        for _ in range(5):
            jid = s.scalar(select(Job.id).where(Job.status == "queued").order_by(Job.id).limit(1))
            if jid is None:
                return None
            res = s.execute(update(Job).where(Job.id == jid, Job.status == "queued")
                            .values(status="running", worker=worker, started_at=now(), attempts=Job.attempts + 1,
                                    message="started"))
            if res.rowcount == 1:
                s.flush()
                return s.get(Job, jid)
    return None


def _watch_for_cancel(url: str, job_id: int, done: threading.Event) -> None:
    while not done.wait(0.4):
        try:
            with db.session(url) as s:
                st = s.scalar(select(Job.status).where(Job.id == job_id))
                if st == "cancelling":
                    s.execute(update(Job).where(Job.id == job_id).values(status="cancelled", message="cancelled",
                                                                          finished_at=now()))
                    s.commit()
                    os._exit(3)  # the pool starts a fresh worker; the job's hidden folder is removed then
        except Exception:  # a busy database: look again next time
            continue


def run_one(url: str, job: Job, worker: str, work_root: Path) -> None:
    work = work_root / f".tmp-job{job.id}-{uuid.uuid4().hex[:8]}"
    progress = Progress(url, job.id)
    done = threading.Event()
    threading.Thread(target=_watch_for_cancel, args=(url, job.id, done), daemon=True).start()
    t0 = time.perf_counter()
    try:
        result = HANDLERS[job.kind](url, job, progress, work)
        result["seconds"] = round(time.perf_counter() - t0, 3)
        status, message = "done", "done"
    except TunesmithError as e:
        result, status, message = None, "failed", str(e).splitlines()[0][:500]
    except Exception as e:  # a bug: the job fails with a message, the log keeps the traceback
        log = work_root.parent / "logs"
        log.mkdir(parents=True, exist_ok=True)
        with open(log / "worker.log", "a") as fh:
            fh.write(f"{now().isoformat()} job {job.id}\n{traceback.format_exc()}\n")
        result, status, message = None, "failed", f"internal error ({type(e).__name__}); see the studio log"
    finally:
        done.set()
        shutil.rmtree(work, ignore_errors=True)
    with db.session(url) as s:
        s.execute(update(Job).where(Job.id == job.id, Job.status.in_(("running", "cancelling")))
                  .values(status=status, message=message, result=result, finished_at=now(),
                          progress=1.0 if status == "done" else Job.progress))


def worker_main(url: str, home: str, name: str, threads: int = 1) -> None:
    """A worker process: claim jobs and run them until killed."""
    os.environ["TUNESMITH_HOME"] = home
    try:
        os.nice(5)  # pages before batch work: a busy worker must not slow the server's answers
    except OSError:
        pass
    import torch

    torch.set_num_threads(threads)
    from tunesmith.studio.pieces import pieces_dir

    work_root = pieces_dir()
    work_root.mkdir(parents=True, exist_ok=True)
    parent = os.getppid()
    while True:
        if os.getppid() != parent:  # the studio is gone (killed): a worker never outlives it
            os._exit(0)
        job = claim(url, name)
        if job is None:
            time.sleep(0.3)
            continue
        run_one(url, job, name, work_root)


class WorkerPool:
    """``n`` worker processes, started, watched (a dead one is replaced, its job recovered)
    and stopped with the studio."""

    def __init__(self, url: str, n: int = 2, threads: int = 1):
        self.url, self.n, self.threads = url, n, threads
        self.procs: dict[str, mp.Process] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from tunesmith.fileio import tunesmith_home
        from tunesmith.studio.pieces import pieces_dir

        recover(self.url, reason="the studio stopped while this job ran")
        root = pieces_dir()
        if root.is_dir():  # hidden folders of jobs that never finished
            for d in root.glob(".tmp-*"):
                shutil.rmtree(d, ignore_errors=True)
        self.home = str(tunesmith_home())
        for _ in range(self.n):
            self._spawn()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _spawn(self) -> None:
        name = f"w{os.getpid()}-{uuid.uuid4().hex[:6]}"
        # not a daemon: a job may start processes of its own (preparing a dataset does); the worker
        # ends with the studio (stop() kills it) or, if the studio is killed, by itself
        p = mp.get_context("spawn").Process(target=worker_main, args=(self.url, self.home, name, self.threads),
                                            daemon=False)
        p.start()
        self.procs[name] = p

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self._replace_dead()
            except Exception:  # a busy database: look again next time; the watcher must not die
                continue

    def _replace_dead(self) -> None:
        for name, p in list(self.procs.items()):
            if not p.is_alive():
                del self.procs[name]
                with db.session(self.url) as s:
                    for job in s.scalars(select(Job).where(Job.worker == name, Job.status.in_(
                            ("running", "cancelling")))):
                        if job.status == "cancelling":
                            job.status, job.message, job.finished_at = "cancelled", "cancelled", now()
                        elif job.attempts >= MAX_ATTEMPTS:
                            job.status, job.message, job.finished_at = "failed", "the worker died", now()
                        else:
                            job.status, job.message = "queued", "the worker stopped; queued again"
                for d in (Path(self.home) / "studio" / "pieces").glob(".tmp-*"):
                    if not any(d.name.startswith(f".tmp-job{j}-") for j in self._running()):
                        shutil.rmtree(d, ignore_errors=True)
                if not self._stop.is_set():
                    self._spawn()

    def _running(self) -> list[int]:
        with db.session(self.url) as s:
            return list(s.scalars(select(Job.id).where(Job.status == "running")))

    def stop(self) -> None:
        self._stop.set()
        for p in self.procs.values():
            p.kill()
        for p in self.procs.values():
            p.join(5)
        self.procs.clear()
        recover(self.url, reason="the studio stopped while this job ran")
