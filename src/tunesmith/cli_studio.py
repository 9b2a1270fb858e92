"""``tunesmith studio``: serve the web studio."""

from __future__ import annotations

import argparse
from pathlib import Path

from tunesmith.errors import OptionError


def add_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("studio", help="the web studio: generate, listen, read, rate and discover in a browser")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    s.add_argument("--db-url", help="the store (default $TUNESMITH_DB_URL or SQLite under $TUNESMITH_HOME)")
    s.add_argument("--workers", type=int, default=2, help="worker processes for generation jobs (default 2)")
    s.add_argument("--guest", action="store_true", help="let visitors without an account read public pieces")
    s.add_argument("--max-upload-mb", type=float, default=20.0, help="largest upload (default 20 MB)")
    s.add_argument("--queue-limit", type=int, default=3, help="jobs one listener may have queued or running")
    s.add_argument("--model", action="append", default=[], dest="extra_models", metavar="FOLDER",
                   help="also offer this trained model (a run or checkpoint folder); repeatable")
    s.add_argument("--tunes", action="append", default=[], metavar="SOURCE",
                   help="what 'Find a tune' searches: a bundled corpus or a folder of music (indexed on first use); "
                        "repeatable (default: the bundled corpora)")
    s.set_defaults(func=cmd_studio)


def cmd_studio(a: argparse.Namespace) -> int:
    if not 0 < a.port < 65536:
        raise OptionError("--port", f"must be 1–65535, got {a.port}")
    if not 0 <= a.workers <= 32:
        raise OptionError("--workers", f"must be 0–32, got {a.workers}")
    if not 0 < a.max_upload_mb <= 2048:
        raise OptionError("--max-upload-mb", f"must be in (0, 2048], got {a.max_upload_mb}")
    if a.queue_limit < 1:
        raise OptionError("--queue-limit", f"must be at least 1, got {a.queue_limit}")
    import socket

    import uvicorn

    from tunesmith.models.registry import resolve
    from tunesmith.studio.app import create_app
    from tunesmith.studio.schemas import StudioConfig

    for m in a.extra_models:
        resolve(m)  # a clear error now, not a silently missing model later
    from tunesmith.music.corpora import is_corpus

    for t in a.tunes:
        if not is_corpus(t) and not Path(t).is_dir():
            raise OptionError("--tunes", f"'{t}' is neither a bundled corpus nor a folder")
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((a.host, a.port))
        except OSError as e:
            raise OptionError("--port", f"cannot listen on {a.host}:{a.port} ({e.strerror})") from None
    app = create_app(StudioConfig(db_url=a.db_url, workers=a.workers, guest=a.guest, max_upload_mb=a.max_upload_mb,
                                  queue_limit=a.queue_limit, extra_models=list(a.extra_models),
                                  tune_sources=[t if is_corpus(t) else str(Path(t).resolve()) for t in a.tunes]))
    print(f"tunesmith studio on http://{a.host}:{a.port}/ (Ctrl-C stops it)")
    uvicorn.run(app, host=a.host, port=a.port, log_level="warning")
    return 0
