"""The studio's web app: server-rendered pages for people and a JSON API (``/api``, in the
OpenAPI schema) for everything the pages do. Both go through the same functions below."""

from __future__ import annotations

import csv
import io
import random
from datetime import datetime, timezone
from pathlib import Path

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import func, select
from starlette.exceptions import HTTPException as StarletteHTTPException

from tunesmith import __version__
from tunesmith.errors import TunesmithError
from tunesmith.store import db
from tunesmith.store.events import listener_id as get_listener_id
from tunesmith.store.events import log_event
from tunesmith.store.models import (
    Account,
    Event,
    Job,
    Listener,
    ListeningAnswer,
    ListeningTest,
    LoginSession,
    Piece,
)
from tunesmith.studio import jobs as jobq
from tunesmith.studio import security
from tunesmith.studio.pieces import (
    FORMATS,
    find_visible,
    piece_file,
    similar_by_features,
    studio_home,
    visible,
)
from tunesmith.studio.schemas import (
    ID,
    INDEX,
    AbcBody,
    AnswerBody,
    Credentials,
    EventBody,
    FindBody,
    GenerateBody,
    ReworkBody,
    StudioConfig,
    StudioError,
    TestBody,
    User,
    VisibilityBody,
    VoiceBody,
)

HERE = Path(__file__).parent
COOKIE, PRE_COOKIE = security.COOKIE, security.PRE_COOKIE
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
CONTROL_FIELDS = ("temperature", "top_k", "top_p", "key", "rules", "style", "iterations", "latent_scale",
                  "threshold")


# --------------------------------------------------------------------------- the app


def create_app(config: StudioConfig | None = None) -> FastAPI:
    cfg = config or StudioConfig()
    url = db.resolve_url(cfg.db_url)
    db.upgrade(url)
    templates = Jinja2Templates(directory=str(HERE / "templates"))  # autoescapes every {{ value }}
    login_limit = security.RateLimiter(cfg.login_per_minute, 60)
    post_limit = security.RateLimiter(cfg.posts_per_minute, 60)
    register_limit = security.RateLimiter(cfg.posts_per_minute, 60)
    model_info: dict[str, dict] = {}
    pool = jobq.WorkerPool(url, cfg.workers, cfg.worker_threads) if cfg.start_workers and cfg.workers else None

    from contextlib import asynccontextmanager

    running = [0]  # lifespans entered and not left: a test client may enter one inside another

    @asynccontextmanager
    async def lifespan(app):
        running[0] += 1
        if pool and running[0] == 1:
            pool.start()
        try:
            yield
        finally:
            running[0] -= 1
            if pool and running[0] == 0:
                pool.stop()

    app = FastAPI(title="tunesmith studio", version=__version__, lifespan=lifespan,
                  description="Generate, listen, read, rate and discover music. Every page's action is here too.")
    app.state.config, app.state.url, app.state.pool = cfg, url, pool
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        resp = await call_next(request)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        if request.url.path.startswith("/api/pieces/") and "/files/" in request.url.path:
            # a piece's files (an SVG made from an upload included) never run scripts
            resp.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
        elif not request.url.path.startswith(("/docs", "/redoc")):
            resp.headers.setdefault("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
                                    "style-src 'self' 'unsafe-inline'; object-src 'none'; frame-ancestors 'none'")
        return resp

    # ------------------------------------------------------------------ helpers
    def session():
        return db.session(url)

    def user_of(request: Request) -> User | None:
        token = request.cookies.get(COOKIE)
        if not token or len(token) > 200:
            return None
        with session() as s:
            row = s.execute(select(LoginSession, Listener, Account)
                            .join(Listener, Listener.id == LoginSession.listener_id)
                            .join(Account, Account.listener_id == Listener.id)
                            .where(LoginSession.token_hash == security.token_hash(token))).first()
            if row is None:
                return None
            ls, lis, acc = row
            exp = ls.expires_at if ls.expires_at.tzinfo else ls.expires_at.replace(tzinfo=timezone.utc)
            if exp < datetime.now(timezone.utc):
                s.delete(ls)
                return None
            return User(lis.id, lis.name, acc.is_admin, ls.csrf)

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    def need_user(request: Request) -> User:
        u = user_of(request)
        if u is None:
            raise StudioError(401, "log in first")
        return u

    def maybe_user(request: Request) -> User | None:
        u = user_of(request)
        if u is None and not cfg.guest:
            raise StudioError(401, "log in first")
        return u

    def check_post(request: Request, user: User | None, form_token: str | None = None) -> None:
        """CSRF (the session's token, from the form or the X-CSRF-Token header) and the rate limit."""
        sent = form_token or request.headers.get("x-csrf-token")
        if user is None or not security.same_token(sent, user.csrf):
            raise StudioError(403, "missing or wrong CSRF token; reload the page and try again")
        if not post_limit.allow(f"u{user.id}"):
            raise StudioError(429, "too many requests; wait a minute")

    def client_ip(request: Request) -> str:
        return request.client.host if request.client else "?"

    def models() -> dict[str, dict]:
        if not [k for k in model_info if not k.startswith("_")]:
            from tunesmith.generate.api import bundled_models, load_model
            from tunesmith.generate.base import capabilities

            for name in bundled_models() + list(cfg.extra_models):
                try:
                    mm = load_model(name)
                except TunesmithError:
                    continue
                caps = capabilities(mm)
                model_info[name] = {"name": name, "family": mm.config.get("family"),
                                    "capabilities": sorted(caps),
                                    "styles": mm.style_names() if hasattr(mm, "style_names") else [],
                                    "dataset": (mm.config.get("representation") or {}).get("dataset")}
        return {k: v for k, v in model_info.items() if not k.startswith("_")}

    def piece_dict(p: Piece, owner: str | None = None) -> dict:
        from tunesmith.fileio import finite

        return {"id": p.id, "key": p.key, "title": p.title, "kind": p.kind, "model": p.model, "public": p.public,
                "owner": owner, "corpus": p.corpus, "meta": finite(p.meta or {}), "settings": finite(p.settings or {}),
                "created_at": p.created_at.isoformat() if p.created_at else None,
                "files": {f: f"/api/pieces/{p.id}/files/{f}" for f in FORMATS if piece_file(p, f) is not None}}

    def job_dict(j: Job, s) -> dict:
        # the server's own paths (an upload's file, the sources searched) are not the listener's business
        params = {k: v for k, v in (j.params or {}).items() if k not in ("file", "sources")}
        d = {"id": j.id, "kind": j.kind, "status": j.status, "progress": round(j.progress, 3), "message": j.message,
             "params": params, "result": j.result, "created_at": j.created_at.isoformat()}
        eta = None
        if j.status in ("queued", "running"):
            rate = jobq.seconds_per_unit(s, j.kind, j.params.get("model"))
            units = int(j.params.get("bars", 1)) * int(j.params.get("num", 1)) if j.kind == "generate" else 1
            if rate is not None:
                eta = rate * units
                if j.status == "running" and j.started_at is not None:
                    st = j.started_at if j.started_at.tzinfo else j.started_at.replace(tzinfo=timezone.utc)
                    eta = max(1.0, eta - (datetime.now(timezone.utc) - st).total_seconds())
        if j.status == "queued":
            d["ahead"] = s.scalar(select(func.count()).select_from(Job).where(Job.status == "queued", Job.id < j.id))
        d["eta_seconds"] = round(eta, 1) if eta is not None else None
        return d

    def own_job(s, jid: int, user: User) -> Job:
        j = s.get(Job, jid)
        if j is None or j.listener_id != user.id:
            raise StudioError(404, "no such job")
        return j

    def page(request: Request, name: str, user: User | None, **ctx) -> HTMLResponse:
        resp = templates.TemplateResponse(request, name, {"user": user, "version": __version__, **ctx})
        return resp

    def set_cookie(request: Request, resp: Response, name: str, value: str, max_age: int) -> None:
        secure = cfg.secure_cookies if cfg.secure_cookies is not None else request.url.scheme == "https"
        resp.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax", secure=secure, path="/")

    # ------------------------------------------------------------------ errors: one line, never a 500 for bad input
    def error_response(request: Request, status: int, message: str) -> Response:
        if is_api(request) or request.headers.get("accept", "").startswith("application/json"):
            return JSONResponse({"error": message}, status_code=status)
        if status == 401:
            return RedirectResponse("/login", status_code=303)
        return templates.TemplateResponse(request, "error.html", {"user": None, "status": status, "message": message,
                                                                  "version": __version__}, status_code=status)

    @app.exception_handler(StudioError)
    async def _studio_error(request: Request, e: StudioError):
        return error_response(request, e.status, e.message)

    @app.exception_handler(TunesmithError)
    async def _tunesmith_error(request: Request, e: TunesmithError):
        return error_response(request, 429 if isinstance(e, jobq.QueueFull) else 400, str(e).splitlines()[0])

    @app.exception_handler(Exception)
    async def _bug(request: Request, e: Exception):  # a bug: one line for the user, the traceback in the log
        import logging

        logging.getLogger("tunesmith.studio").exception("unhandled error on %s", request.url.path)
        return error_response(request, 500, f"internal error ({type(e).__name__}); the studio log has the details")

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, e: RequestValidationError):
        errs = e.errors()
        first = errs[0] if errs else {}
        where = ".".join(str(x) for x in first.get("loc", ())[1:]) or "request"
        return error_response(request, 422, f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException):
        return error_response(request, e.status_code, str(e.detail))

    # ------------------------------------------------------------------ accounts
    def register(name: str, password: str) -> None:
        if not set(name) <= NAME_CHARS or not 1 <= len(name) <= 64:
            raise StudioError(400, "a name is 1–64 letters, digits, '-', '_' or '.'")
        if len(password) < 8:
            raise StudioError(400, "a password needs at least 8 characters")
        with session() as s:
            lid = get_listener_id(s, name, create=False)
            if lid is not None and s.scalar(select(Account.id).where(Account.listener_id == lid)) is not None:
                raise StudioError(409, f"the name '{name}' is taken")
            lid = lid or get_listener_id(s, name)
            first = s.scalar(select(func.count()).select_from(Account)) == 0
            s.add(Account(listener_id=lid, password_hash=security.hash_password(password), is_admin=first))

    def login(request: Request, name: str, password: str) -> str:
        # per address and name: guessing one listener's password is slowed down, a classroom
        # behind one address is not
        if not login_limit.allow(f"ip{client_ip(request)}:{name}"):
            raise StudioError(429, "too many login attempts; wait a minute")
        with session() as s:
            row = s.execute(select(Account, Listener).join(Listener, Listener.id == Account.listener_id)
                            .where(Listener.name == name)).first()
            ok = row is not None and security.check_password(row[0].password_hash, password)
            if not ok:
                raise StudioError(401 if is_api(request) else 400, "wrong name or password")
            token = security.new_token()
            s.add(LoginSession(token_hash=security.token_hash(token), listener_id=row[1].id,
                               csrf=security.new_token(), expires_at=security.expiry()))
            return token

    def logout(request: Request) -> None:
        token = request.cookies.get(COOKIE)
        if token:
            with session() as s:
                for ls in s.scalars(select(LoginSession).where(LoginSession.token_hash == security.token_hash(token))):
                    s.delete(ls)

    def check_pre(request: Request, sent: str | None) -> None:
        if not security.same_token(sent, request.cookies.get(PRE_COOKIE)):
            raise StudioError(403, "missing or wrong CSRF token; reload the page and try again")

    @app.get("/api/health", tags=["studio"])
    def api_health():
        with session() as s:
            s.execute(select(1))
        return {"ok": True, "version": __version__}

    @app.get("/health", include_in_schema=False)
    def health():
        return api_health()

    @app.get("/api/csrf", tags=["accounts"])
    def api_csrf(request: Request):
        """A token for the register and login calls (sent back as the X-CSRF-Token header,
        with the cookie this sets)."""
        tok = security.new_token()
        resp = JSONResponse({"csrf": tok})
        set_cookie(request, resp, PRE_COOKIE, tok, 3600)
        return resp

    @app.post("/api/register", tags=["accounts"], status_code=201)
    def api_register(request: Request, body: Credentials):
        check_pre(request, request.headers.get("x-csrf-token"))
        if not register_limit.allow(f"ip{client_ip(request)}"):
            raise StudioError(429, "too many new accounts from this address; wait a minute")
        register(body.name, body.password)
        return {"name": body.name}

    @app.post("/api/login", tags=["accounts"])
    def api_login(request: Request, body: Credentials):
        check_pre(request, request.headers.get("x-csrf-token"))
        token = login(request, body.name, body.password)
        u = None
        with session() as s:
            ls = s.scalar(select(LoginSession).where(LoginSession.token_hash == security.token_hash(token)))
            u = ls.csrf
        resp = JSONResponse({"name": body.name, "csrf": u})
        set_cookie(request, resp, COOKIE, token, security.SESSION_DAYS * 86400)
        return resp

    @app.post("/api/logout", tags=["accounts"])
    def api_logout(request: Request, user: User = Depends(need_user)):
        check_post(request, user)
        logout(request)
        resp = JSONResponse({"ok": True})
        resp.delete_cookie(COOKIE, path="/")
        return resp

    @app.get("/api/me", tags=["accounts"])
    def api_me(user: User = Depends(need_user)):
        return {"name": user.name, "admin": user.is_admin, "csrf": user.csrf}

    # ------------------------------------------------------------------ models and jobs
    def generate_job(user: User, body: GenerateBody) -> int:
        info = models().get(body.model)
        if info is None:
            raise StudioError(400, f"model: unknown model '{body.model}'; known: {', '.join(models())}")
        params = {k: v for k, v in body.model_dump().items() if v is not None}
        caps = set(info["capabilities"])
        need = {"temperature": "temperature", "top_k": "top_k", "top_p": "top_p", "key": "key", "rules": "rules",
                "style": "style", "iterations": "iterations", "latent_scale": "latent_scale",
                "threshold": "threshold", "primer_piece": "primer"}
        if "primer_piece" in params and "primer" not in caps:  # "Continue it" with a model that cannot
            takers = ", ".join(n for n, m in models().items() if "primer" in m["capabilities"])
            raise StudioError(400, f"model: '{body.model}' cannot continue a piece; choose {takers}")
        for k, cap in need.items():
            if k in params and cap not in caps:
                raise StudioError(400, f"{k}: the model '{body.model}' does not take this control")
        if body.style is not None and body.style not in info["styles"]:
            raise StudioError(400, f"style: '{body.style}' is not one of {', '.join(info['styles']) or 'none'}")
        if body.key:
            from tunesmith.music.keys import parse_key

            parse_key(body.key)
        with session() as s:
            if body.primer_piece is not None and find_visible(s, body.primer_piece, user.id) is None:
                raise StudioError(404, "primer_piece: no such piece")
            return jobq.submit(s, user.id, "generate", params, limit=cfg.queue_limit).id

    def rework_job(user: User, body: ReworkBody) -> int:
        if body.model not in models():
            raise StudioError(400, f"model: unknown model '{body.model}'")
        caps = set(models()[body.model]["capabilities"])
        if body.command not in caps:
            raise StudioError(400, f"model: '{body.model}' cannot {body.command}")
        if body.particles is not None and (body.command != "harmonize" or "particles" not in caps):
            raise StudioError(400, f"particles: '{body.model}' cannot {body.command} with particles (an SATB-token "
                              "model such as bach-chorales harmonizes with them)")
        if body.command == "infill":
            from tunesmith.generate.rollmodels import parse_bars, parse_voices

            if not body.bars:
                raise StudioError(400, "bars: give the bars to regenerate, e.g. 3-4")
            parse_bars(body.bars)
            parse_voices(body.voices)
        with session() as s:
            if find_visible(s, body.piece, user.id) is None:
                raise StudioError(404, "piece: no such piece")
            params = {k: v for k, v in body.model_dump().items() if v is not None}
            return jobq.submit(s, user.id, "rework", params, limit=cfg.queue_limit).id

    @app.get("/api/models", tags=["generate"])
    def api_models(user: User = Depends(need_user)):
        return list(models().values())

    @app.post("/api/jobs/generate", tags=["generate"], status_code=202)
    def api_generate(request: Request, body: GenerateBody, user: User = Depends(need_user)):
        check_post(request, user)
        return {"job": generate_job(user, body)}

    @app.post("/api/jobs/rework", tags=["generate"], status_code=202)
    def api_rework(request: Request, body: ReworkBody, user: User = Depends(need_user)):
        """Harmonize a melody or infill bars and voices of a piece."""
        check_post(request, user)
        return {"job": rework_job(user, body)}

    @app.post("/api/pieces/{piece_id}/evaluate", tags=["pieces"], status_code=202)
    def api_evaluate(request: Request, piece_id: ID, user: User = Depends(need_user)):
        """Check the piece's originality against its model's training set (a job)."""
        check_post(request, user)
        return {"job": evaluate_job(user, piece_id)}

    def evaluate_job(user: User, piece_id: ID) -> int:
        with session() as s:
            p = find_visible(s, piece_id, user.id)
            if p is None:
                raise StudioError(404, "no such piece")
            ds = (models().get(p.model or "") or {}).get("dataset")
            if not ds:
                raise StudioError(400, "this piece was not made by a bundled model: there is no training set to "
                                  "compare it with")
            return jobq.submit(s, user.id, "evaluate", {"piece": piece_id, "training": ds},
                               limit=cfg.queue_limit).id

    def voices() -> dict[str, list[str]]:
        """The waveform GANs (notes as raw audio) and their instruments."""
        if "_voices" not in model_info:
            from tunesmith.generate.notes import NotesGAN
            from tunesmith.models.registry import bundled

            found = {}
            for name in bundled("notes"):
                try:
                    found[name] = NotesGAN.load(name).instruments()
                except TunesmithError:
                    continue
            model_info["_voices"] = found
        return model_info["_voices"]

    def voice_job(user: User, piece_id: int, body: VoiceBody) -> int:
        insts = voices().get(body.model)
        if insts is None:
            raise StudioError(400, f"model: '{body.model}' is not a waveform GAN; these are: {', '.join(voices())}")
        if body.instrument is not None and body.instrument not in insts:
            raise StudioError(400, f"instrument: '{body.instrument}' is not one of {', '.join(insts)}")
        with session() as s:
            p = find_visible(s, piece_id, user.id)
            if p is None or p.owner_id != user.id:
                raise StudioError(404, "no such piece of yours")
            return jobq.submit(s, user.id, "voice", {"piece": piece_id, "model": body.model,
                                                    "instrument": body.instrument, "seed": body.seed},
                               limit=cfg.queue_limit).id

    def render_job(user: User, piece_id: int) -> int:
        with session() as s:
            p = find_visible(s, piece_id, user.id)
            if p is None:
                raise StudioError(404, "no such piece")
            if p.kind != "corpus":
                raise StudioError(400, "only catalogue pieces need preparing; this one has its files")
            return jobq.submit(s, user.id, "render", {"piece": piece_id}, limit=cfg.queue_limit).id

    @app.post("/api/pieces/{piece_id}/render", tags=["pieces"], status_code=202)
    def api_render(request: Request, piece_id: ID, user: User = Depends(need_user)):
        """A catalogue piece's audio, score and piano roll, made once (a job)."""
        check_post(request, user)
        return {"job": render_job(user, piece_id)}

    @app.get("/api/voices", tags=["generate"])
    def api_voices(user: User = Depends(need_user)):
        """The waveform GANs that can play a piece, with their instruments."""
        return voices()

    @app.post("/api/pieces/{piece_id}/voice", tags=["generate"], status_code=202)
    def api_voice(request: Request, piece_id: ID, body: VoiceBody, user: User = Depends(need_user)):
        """Play one of your pieces with a waveform GAN (each note generated as raw audio)."""
        check_post(request, user)
        return {"job": voice_job(user, piece_id, body)}

    @app.get("/api/jobs", tags=["generate"])
    def api_jobs(user: User = Depends(need_user)):
        with session() as s:
            rows = s.scalars(select(Job).where(Job.listener_id == user.id).order_by(Job.id.desc()).limit(50))
            return [job_dict(j, s) for j in rows]

    @app.get("/api/jobs/{job_id}", tags=["generate"])
    def api_job(job_id: ID, user: User = Depends(need_user)):
        with session() as s:
            return job_dict(own_job(s, job_id, user), s)

    @app.post("/api/jobs/{job_id}/cancel", tags=["generate"])
    def api_cancel(request: Request, job_id: ID, user: User = Depends(need_user)):
        check_post(request, user)
        with session() as s:
            j = own_job(s, job_id, user)
            jobq.cancel(s, j)
            return job_dict(j, s)

    # ------------------------------------------------------------------ pieces
    def read_upload(data: bytes, name: str) -> tuple[str, bytes]:
        limit = int(cfg.max_upload_mb * 2**20)
        if len(data) > limit:
            raise StudioError(413, f"the file is over {cfg.max_upload_mb:g} MB")
        if not data:
            raise StudioError(400, "the file is empty")
        kind = security.sniff(data)
        if kind is None:
            raise StudioError(415, f"'{name[:80]}' is not a MIDI, MusicXML, ABC, kern, WAV, FLAC, OGG or MP3 file "
                              "(judged by its content, not its name)")
        return kind, data

    def import_job(user: User, data: bytes, name: str, title: str = "", meter: str = "") -> int:
        kind, data = read_upload(data, name)
        if meter:
            from tunesmith.errors import OptionError
            from tunesmith.music.meter import check_meter

            try:  # refused, not dropped: an unknown meter, or one given for a score (it carries its own)
                check_meter(meter, recording=kind in security.AUDIO_KINDS, option="meter")
            except OptionError as e:
                raise StudioError(400, str(e)) from None
        path = save_upload(user, data, kind)
        with session() as s:
            return jobq.submit(s, user.id, "import", {"file": str(path), "kind": kind, "name": name[:200],
                                                     "title": title[:200], "meter": meter or None},
                               limit=cfg.queue_limit).id

    def save_upload(user: User, data: bytes, kind: str) -> Path:
        """The uploaded bytes, whole, under a fresh name in the listener's upload folder."""
        import uuid

        from tunesmith.fileio import atomic_write_bytes

        folder = studio_home() / "uploads" / str(user.id)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{uuid.uuid4().hex[:16]}{security.KINDS[kind]}"
        atomic_write_bytes(path, data)
        return path

    def abc_text(abc: str, title: str = "") -> str:
        """A melody typed as ABC, made a whole tune: bare notes get a header (4/4, eighths, C)."""
        text = abc if "K:" in abc else f"X:1\nT:{title or 'melody'}\nM:4/4\nL:1/8\nK:C\n{abc}\n"
        return text if text.lstrip().startswith("X:") else "X:1\n" + text

    def bar_range(text: str) -> list[int] | None:
        """Bars "5-8" (or "5") as a range, read as the rework's bars are; None for none."""
        from tunesmith.errors import OptionError
        from tunesmith.generate.rollmodels import parse_bars

        text = (text or "").strip()
        if not text:
            return None
        try:
            r = list(parse_bars(text))
        except OptionError:
            r = [0, 0]
        if r[0] < 1 or r[1] > 10_000:
            raise StudioError(400, f"bars: '{text[:20]}' is not a bar range like 5-8")
        return r

    def find_job(user: User, *, data: bytes | None = None, name: str = "", abc: str = "", piece_id: int | None = None,
                 bars: str = "", top: int = 10) -> int:
        """Which known tunes a melody resembles (a job): an uploaded file, a melody typed as ABC, or a
        piece the listener may see — optionally some of its bars."""
        if not 1 <= top <= 50:
            raise StudioError(400, f"top: must be between 1 and 50, got {top}")
        params = {"bars": bar_range(bars), "top": top, "sources": cfg.tune_sources or None}
        if piece_id is not None:
            with session() as s:
                if find_visible(s, piece_id, user.id) is None:
                    raise StudioError(404, "no such piece")
            params["piece"] = piece_id
        elif data:
            kind, data = read_upload(data, name)
            params.update(file=str(save_upload(user, data, kind)), kind=kind, name=name[:200])
        elif abc.strip():
            kind, data = read_upload(abc_text(abc).encode(), "typed.abc")
            params.update(file=str(save_upload(user, data, kind)), kind=kind, name="the melody typed")
        else:
            raise StudioError(400, "choose a file, or type a melody as ABC, to search with")
        with session() as s:
            return jobq.submit(s, user.id, "find", params, limit=cfg.queue_limit).id

    @app.post("/api/find", tags=["discover"], status_code=202)
    async def api_find(request: Request, file: UploadFile | None = File(None), abc: str = Form("", max_length=100_000),
                       bars: str = Form("", max_length=20), top: int = Form(10), user: User = Depends(need_user)):
        """Which known tunes a melody resembles (a job; its result lists them best first with a score,
        a readable name, the matching bars and, where the tune is in the catalogue, its piece): a
        file (MIDI, MusicXML, ABC, kern; a recording is transcribed — sing, hum or play the tune
        alone) or a melody typed as ABC. Transposition- and tempo-invariant, as ``tunesmith search``."""
        check_post(request, user)
        data = await read_limited(file) if file is not None and file.filename else None
        return {"job": find_job(user, data=data, name=(file.filename or "") if file else "", abc=abc, bars=bars,
                                top=top)}

    @app.post("/api/pieces/{piece_id}/find", tags=["discover"], status_code=202)
    def api_piece_find(request: Request, piece_id: ID, body: FindBody, user: User = Depends(need_user)):
        """Which known tunes this piece's melody (or that of its bars ``bars``, e.g. "5-8") resembles (a job)."""
        check_post(request, user)
        return {"job": find_job(user, piece_id=piece_id, bars=body.bars or "", top=body.top)}

    async def read_limited(upload: UploadFile) -> bytes:
        limit = int(cfg.max_upload_mb * 2**20)
        chunks, n = [], 0
        while True:
            b = await upload.read(1 << 20)
            if not b:
                break
            n += len(b)
            if n > limit:
                raise StudioError(413, f"the file is over {cfg.max_upload_mb:g} MB")
            chunks.append(b)
        return b"".join(chunks)

    @app.post("/api/pieces/upload", tags=["pieces"], status_code=202)
    async def api_upload(request: Request, file: UploadFile = File(...), meter: str = Form("", max_length=20),
                         user: User = Depends(need_user)):
        """Upload MIDI, MusicXML, ABC, kern or audio (audio is transcribed, its meter and bar lines
        estimated, or its bar lines placed in ``meter`` — 2/4, 3/4, 4/4, 6/8, 9/8, 12/8 — if given);
        the type is judged from the content."""
        check_post(request, user)
        data = await read_limited(file)
        return {"job": import_job(user, data, file.filename or "upload", meter=meter.strip())}

    @app.post("/api/pieces/abc", tags=["pieces"], status_code=202)
    def api_abc(request: Request, body: AbcBody, user: User = Depends(need_user)):
        """A melody typed as ABC text becomes a piece."""
        check_post(request, user)
        return {"job": import_job(user, abc_text(body.abc, body.title).encode(), "typed.abc", body.title)}

    def library(user: User) -> list[dict]:
        with session() as s:
            rows = s.scalars(select(Piece).where(Piece.owner_id == user.id).order_by(Piece.id.desc()).limit(500))
            return [piece_dict(p, user.name) for p in rows]

    @app.get("/api/pieces", tags=["pieces"])
    def api_pieces(user: User = Depends(need_user)):
        """The listener's library: the pieces they generated or uploaded."""
        return library(user)

    def get_piece(piece_id: ID, user: User | None) -> tuple[Piece, str | None, dict]:
        with session() as s:
            p = find_visible(s, piece_id, user.id if user else None)
            if p is None:
                raise StudioError(404, "no such piece")  # another listener's private piece: not found
            owner = s.scalar(select(Listener.name).where(Listener.id == p.owner_id)) if p.owner_id else None
            mine = {}
            if user:
                for e in s.scalars(select(Event).where(Event.piece_id == p.id, Event.listener_id == user.id)
                                   .order_by(Event.id)):
                    if e.kind in ("like", "rating", "skip"):
                        mine[e.kind] = e.value if e.kind == "rating" else True
            return p, owner, mine

    @app.get("/api/pieces/{piece_id}", tags=["pieces"])
    def api_piece(piece_id: ID, user: User | None = Depends(maybe_user)):
        p, owner, mine = get_piece(piece_id, user)
        return {**piece_dict(p, owner), "mine": mine}

    @app.get("/api/pieces/{piece_id}/files/{fmt}", tags=["pieces"])
    def api_piece_file(piece_id: ID, fmt: str, user: User | None = Depends(maybe_user)):
        p, _, _ = get_piece(piece_id, user)
        f = piece_file(p, fmt)
        if f is None:
            raise StudioError(404, "no such file")
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in (p.title or "piece"))[:60] or "piece"
        return FileResponse(f, media_type=FORMATS[fmt], filename=f"{stem}.{fmt}" if fmt != "svg" else None)

    def add_event(user: User, piece_id: ID, kind: str, value: float | None) -> None:
        if kind == "rating" and (value is None or not 1 <= value <= 5):
            raise StudioError(400, "value: a rating is 1 to 5")
        if kind == "play" and value is not None and not 0 <= value <= 36000:
            raise StudioError(400, "value: seconds listened, 0 to 36000")
        with session() as s:
            p = find_visible(s, piece_id, user.id)
            if p is None:
                raise StudioError(404, "no such piece")
            log_event(s, user.name, p.key, kind, value=value if kind in ("rating", "play") else None)

    @app.post("/api/pieces/{piece_id}/events", tags=["pieces"], status_code=201)
    def api_event(request: Request, piece_id: ID, body: EventBody, user: User = Depends(need_user)):
        """Like, rate (1–5), skip, or report a play (seconds) or a complete listen."""
        check_post(request, user)
        add_event(user, piece_id, body.kind, body.value)
        return {"ok": True}

    def set_visibility(user: User, piece_id: ID, public: bool) -> None:
        with session() as s:
            p = s.get(Piece, piece_id)
            if p is None or p.owner_id != user.id:
                raise StudioError(404, "no such piece")
            p.public = public

    @app.post("/api/pieces/{piece_id}/visibility", tags=["pieces"])
    def api_visibility(request: Request, piece_id: ID, body: VisibilityBody, user: User = Depends(need_user)):
        check_post(request, user)
        set_visibility(user, piece_id, body.public)
        return {"public": body.public}

    # ------------------------------------------------------------------ discover
    def recommendations(user: User | None, n: int = 12) -> list[dict]:
        """From the fitted recommender (only pieces this listener may see); without one, the
        most liked public pieces; the listener's own pieces are never recommended to them."""
        out = []
        with session() as s:
            vis = {r[0]: r for r in s.execute(select(Piece.key, Piece.id, Piece.title, Piece.owner_id)
                                               .where(visible(user.id if user else None)))}
        try:
            if user is None:
                raise TunesmithError("guest")
            from tunesmith.recommend.service import Service

            svc = Service(url)
            try:
                recs = svc.for_listener(user.name, n=n * 4)
            except TunesmithError:  # a listener with no events yet and no store row
                recs = []
            for r in recs:
                row = vis.get(r.key)
                if row and row[3] != user.id:
                    out.append({"id": row[1], "title": row[2] or r.key, "key": r.key, "why": r.reason})
                if len(out) >= n:
                    break
            if out:
                return out
        except (TunesmithError, FileNotFoundError, OSError, ValueError):
            pass
        with session() as s:
            likes = func.count(Event.id)
            q = (select(Piece.id, Piece.title, Piece.key, likes).join(Event, Event.piece_id == Piece.id, isouter=True)
                 .where(visible(user.id if user else None), Piece.owner_id.is_not(None))
                 .group_by(Piece.id, Piece.title, Piece.key).order_by(likes.desc(), Piece.id.desc()).limit(n * 2))
            for pid, title, key, k in s.execute(q):
                owner = s.scalar(select(Piece.owner_id).where(Piece.id == pid))
                if user is not None and owner == user.id:
                    continue
                out.append({"id": pid, "title": title or key, "key": key,
                            "why": f"popular: {k} listener events" if k else "new from another listener"})
        return out[:n]

    def search_pieces(user: User | None, q: str) -> list[dict]:
        q = q.strip()[:100]
        if not q:
            return []
        with session() as s:
            rows = s.scalars(select(Piece).where(visible(user.id if user else None),
                                                 func.lower(Piece.title).contains(q.lower())
                                                 | func.lower(Piece.key).contains(q.lower()))
                             .order_by(Piece.id.desc()).limit(50))
            return [piece_dict(p) for p in rows]

    def similar(user: User | None, piece_id: ID, n: int = 10) -> list[dict]:
        """Pieces like this one by content (the recommender's content space), among those the
        listener may see."""
        p, _, _ = get_piece(piece_id, user)
        with session() as s:
            vis = {r[0]: (r[1], r[2]) for r in s.execute(select(Piece.key, Piece.id, Piece.title)
                                                          .where(visible(user.id if user else None)))}
        try:  # the recommender's content space, where the admin has set up the catalogue
            from tunesmith.recommend.service import Service

            recs = Service(url).similar(p.key, n=n * 4)
            out = [{"id": vis[r.key][0], "title": vis[r.key][1] or r.key, "key": r.key, "why": r.reason}
                   for r in recs if r.key in vis][:n]
            if out:
                return out
        except (TunesmithError, FileNotFoundError, OSError, ValueError):
            pass
        # else: the MIR features saved with every studio piece, among the pieces this listener may see
        with session() as s:
            cands = list(s.scalars(select(Piece).where(visible(user.id if user else None),
                                                       Piece.kind != "corpus").order_by(Piece.id.desc())
                                   .limit(2000)))
        return [{"id": q.id, "title": q.title or q.key, "key": q.key, "why": f"sounds alike (features {sim:.2f})"}
                for q, sim in similar_by_features(p, cands, n)]

    @app.get("/api/recommendations", tags=["discover"])
    def api_recommendations(user: User = Depends(need_user)):
        return recommendations(user)

    @app.get("/api/search", tags=["discover"])
    def api_search(q: str = "", user: User | None = Depends(maybe_user)):
        """Pieces whose title or name contains ``q``."""
        return search_pieces(user, q)

    @app.get("/api/pieces/{piece_id}/similar", tags=["discover"])
    def api_similar(piece_id: ID, user: User | None = Depends(maybe_user)):
        return similar(user, piece_id)

    @app.post("/api/admin/catalogue", tags=["discover"], status_code=202)
    def api_catalogue(request: Request, user: User = Depends(need_user)):
        """Admins: add the bundled chorales to the catalogue and fit the recommender (a job)."""
        check_post(request, user)
        return {"job": catalogue_job(user)}

    def catalogue_job(user: User) -> int:
        if not user.is_admin:
            raise StudioError(403, "only an admin can set up the catalogue")
        with session() as s:
            return jobq.submit(s, user.id, "catalogue", {"corpora": ["bach-chorales"]}, limit=cfg.queue_limit).id

    # ------------------------------------------------------------------ listening tests
    def create_test(user: User, body: TestBody) -> int:
        systems = {k.strip()[:60]: v for k, v in body.systems.items() if k.strip()}
        if len(systems) < 2:
            raise StudioError(400, "systems: a test compares at least two systems")
        if any(not v for v in systems.values()):
            raise StudioError(400, "systems: every system needs at least one piece")
        with session() as s:
            for ids in systems.values():
                for pid in ids:
                    if find_visible(s, pid, user.id) is None:
                        raise StudioError(404, f"systems: no such piece {pid}")
            if body.kind == "ab":
                n = min(len(v) for v in systems.values())
                if n < 1:
                    raise StudioError(400, "systems: an A/B test pairs the i-th pieces of each system")
            t = ListeningTest(owner_id=user.id, name=body.name, kind=body.kind, systems=systems)
            s.add(t)
            s.flush()
            return t.id

    def trials(t: ListeningTest) -> list[dict]:
        """Every trial of a test, in a fixed order: MOS, one per piece; A/B, one per pair of
        systems and index."""
        names = sorted(t.systems)
        if t.kind == "mos":
            return [{"system": sysname, "piece": pid, "item": f"{t.id}-{sysname}-{i}"}
                    for sysname in names for i, pid in enumerate(t.systems[sysname])]
        out = []
        n = min(len(v) for v in t.systems.values())
        for a in range(len(names)):
            for b in range(a + 1, len(names)):
                for i in range(n):
                    out.append({"system_a": names[a], "system_b": names[b], "a": t.systems[names[a]][i],
                                "b": t.systems[names[b]][i], "item": f"{t.id}-pair{i}"})
        return out

    def order_for(t: ListeningTest, user: User) -> list[int]:
        """The trials in this listener's own random order (stable across visits)."""
        idx = list(range(len(trials(t))))
        random.Random(f"{t.id}:{user.id}").shuffle(idx)
        return idx

    def flipped(t: ListeningTest, user: User, trial: int) -> bool:
        """Whether this listener hears system B first in this A/B trial (randomised, unlabelled)."""
        return random.Random(f"{t.id}:{user.id}:{trial}").random() < 0.5

    def get_test(s, tid: int) -> ListeningTest:
        t = s.get(ListeningTest, tid)
        if t is None:
            raise StudioError(404, "no such listening test")
        return t

    def next_trial(user: User, tid: int) -> dict:
        with session() as s:
            t = get_test(s, tid)
            done = set(s.scalars(select(ListeningAnswer.trial).where(ListeningAnswer.test_id == tid,
                                                                    ListeningAnswer.listener_id == user.id)))
            order = order_for(t, user)
            left = [i for i in order if i not in done]
            base = {"test": tid, "name": t.name, "kind": t.kind, "total": len(order), "answered": len(done)}
            if not left:
                return {**base, "trial": None}
            i = left[0]
            clips = ["a", "b"] if t.kind == "ab" else ["a"]
            return {**base, "trial": i, "clips": [f"/api/tests/{tid}/trials/{i}/audio/{c}" for c in clips]}

    def trial_audio(user: User, tid: int, trial: int, which: str) -> Path:
        with session() as s:
            t = get_test(s, tid)
            ts = trials(t)
            if not 0 <= trial < len(ts) or which not in ("a", "b") or (t.kind == "mos" and which != "a"):
                raise StudioError(404, "no such clip")
            tr = ts[trial]
            if t.kind == "mos":
                pid = tr["piece"]
            else:
                first, second = (tr["b"], tr["a"]) if flipped(t, user, trial) else (tr["a"], tr["b"])
                pid = first if which == "a" else second
            p = s.get(Piece, pid)
            f = piece_file(p, "wav") if p else None
            if f is None:
                raise StudioError(404, "this clip's audio is missing")
            return f

    def answer(user: User, tid: int, body: AnswerBody) -> None:
        with session() as s:
            t = get_test(s, tid)
            if not body.trial < len(trials(t)):
                raise StudioError(404, "no such trial")
            if (t.kind == "mos") != body.answer.isdigit():
                raise StudioError(400, "answer: a rating 1–5 for MOS tests, a / b / tie for A/B tests")
            ans = body.answer
            if t.kind == "ab" and ans in ("a", "b") and flipped(t, user, body.trial):
                ans = "b" if ans == "a" else "a"  # stored as system A / system B, not as heard
            exists = s.scalar(select(ListeningAnswer.id).where(
                ListeningAnswer.test_id == tid, ListeningAnswer.listener_id == user.id,
                ListeningAnswer.trial == body.trial))
            if exists is not None:
                raise StudioError(409, "this trial is already answered")
            s.add(ListeningAnswer(test_id=tid, listener_id=user.id, trial=body.trial, answer=ans))

    def export_csv(user: User, tid: int) -> str:
        """The answers in the CSV format ``tunesmith evaluate listening`` reads."""
        with session() as s:
            t = get_test(s, tid)
            if t.owner_id != user.id:
                raise StudioError(404, "no such listening test")
            ts = trials(t)
            rows = s.execute(select(ListeningAnswer, Listener.name).join(Listener, Listener.id ==
                                                                         ListeningAnswer.listener_id)
                             .where(ListeningAnswer.test_id == tid).order_by(ListeningAnswer.id)).all()
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        if t.kind == "mos":
            w.writerow(["rater", "item", "system", "rating"])
            for a, who in rows:
                tr = ts[a.trial]
                w.writerow([who, f"piece-{tr['piece']}", tr["system"], a.answer])
        else:
            w.writerow(["rater", "item", "system_a", "system_b", "winner"])
            for a, who in rows:
                tr = ts[a.trial]
                w.writerow([who, tr["item"], tr["system_a"], tr["system_b"], a.answer])
        return buf.getvalue()

    def test_results(user: User, tid: int) -> dict:
        import tempfile

        from tunesmith.evaluate.listening import analyse, format_listening

        text = export_csv(user, tid)
        if text.count("\n") < 2:
            return {"answers": 0, "report": "no answers yet", "results": None}
        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / "answers.csv"
            f.write_text(text)
            try:
                res = analyse([f])
            except TunesmithError as e:
                return {"answers": text.count("\n") - 1, "report": str(e), "results": None}
        return {"answers": text.count("\n") - 1, "report": format_listening(res), "results": _jsonable(res)}

    def my_tests(user: User) -> list[dict]:
        with session() as s:
            rows = s.scalars(select(ListeningTest).where(ListeningTest.owner_id == user.id)
                             .order_by(ListeningTest.id.desc()))
            return [{"id": t.id, "name": t.name, "kind": t.kind, "systems": t.systems} for t in rows]

    @app.post("/api/tests", tags=["listening tests"], status_code=201)
    def api_create_test(request: Request, body: TestBody, user: User = Depends(need_user)):
        check_post(request, user)
        return {"test": create_test(user, body)}

    @app.get("/api/tests", tags=["listening tests"])
    def api_tests(user: User = Depends(need_user)):
        return my_tests(user)

    @app.get("/api/tests/{test_id}/next", tags=["listening tests"])
    def api_next(test_id: ID, user: User = Depends(need_user)):
        """The listener's next unanswered trial: unlabelled clips, in a random order."""
        return next_trial(user, test_id)

    @app.get("/api/tests/{test_id}/trials/{trial}/audio/{which}", tags=["listening tests"])
    def api_trial_audio(test_id: ID, trial: INDEX, which: str, user: User = Depends(need_user)):
        return FileResponse(trial_audio(user, test_id, trial, which), media_type="audio/wav")

    @app.post("/api/tests/{test_id}/answers", tags=["listening tests"], status_code=201)
    def api_answer(request: Request, test_id: ID, body: AnswerBody, user: User = Depends(need_user)):
        check_post(request, user)
        answer(user, test_id, body)
        return next_trial(user, test_id)

    @app.get("/api/tests/{test_id}/results", tags=["listening tests"])
    def api_results(test_id: ID, user: User = Depends(need_user)):
        return test_results(user, test_id)

    @app.get("/api/tests/{test_id}/export.csv", tags=["listening tests"])
    def api_export(test_id: ID, user: User = Depends(need_user)):
        return Response(export_csv(user, test_id), media_type="text/csv",
                        headers={"content-disposition": f'attachment; filename="listening-test-{test_id}.csv"'})

    # ------------------------------------------------------------------ pages
    from types import SimpleNamespace

    from tunesmith.studio.pages import add_pages

    add_pages(app, SimpleNamespace(**{k: v for k, v in locals().items() if k not in ("app", "SimpleNamespace")}))
    return app


def _jsonable(x):
    import math

    import numpy as np

    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if math.isfinite(v) else None
    if isinstance(x, np.integer):
        return int(x)
    return x
