"""The studio's pages: forms post here, and each handler calls the same function as its
``/api`` twin (see :mod:`tunesmith.studio.app`)."""

from __future__ import annotations

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from tunesmith.store.models import Job
from tunesmith.studio import jobs as jobq
from tunesmith.studio import security
from tunesmith.studio.pieces import piece_file
from tunesmith.studio.schemas import (
    ID,
    AbcBody,
    AnswerBody,
    GenerateBody,
    ReworkBody,
    StudioError,
    TestBody,
    User,
    VoiceBody,
)


def add_pages(app, h) -> None:  # h: the helpers of create_app

    def go(url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303)

    def pre_form(request: Request, name: str, **ctx) -> HTMLResponse:
        tok = request.cookies.get(security.PRE_COOKIE) or security.new_token()
        resp = h.page(request, name, None, pre=tok, **ctx)
        h.set_cookie(request, resp, security.PRE_COOKIE, tok, 3600)
        return resp

    def user_or_login(request: Request) -> User:
        return h.need_user(request)

    @app.get("/", include_in_schema=False)
    def home(request: Request):
        user = h.user_of(request)
        if user is None:
            return go("/discover" if h.cfg.guest else "/login")
        with h.session() as s:
            recent = [h.job_dict(j, s) for j in s.scalars(
                select(Job).where(Job.listener_id == user.id).order_by(Job.id.desc()).limit(5))]
        return h.page(request, "home.html", user, models=list(h.models().values()), library=h.library(user)[:12],
                      jobs=recent, feed=h.recommendations(user, 6), pieces=h.library(user))

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request):
        return pre_form(request, "login.html")

    @app.post("/login", include_in_schema=False)
    def login_post(request: Request, name: str = Form(..., max_length=64), password: str = Form(..., max_length=200),
                   csrf: str = Form("", max_length=200)):
        h.check_pre(request, csrf)
        try:
            token = h.login(request, name, password)
        except StudioError as e:
            if e.status == 429:
                raise
            return pre_form(request, "login.html", error=e.message, name=name)
        resp = go("/")
        h.set_cookie(request, resp, security.COOKIE, token, security.SESSION_DAYS * 86400)
        return resp

    @app.get("/register", include_in_schema=False)
    def register_page(request: Request):
        return pre_form(request, "register.html")

    @app.post("/register", include_in_schema=False)
    def register_post(request: Request, name: str = Form(..., max_length=64),
                      password: str = Form(..., max_length=200), csrf: str = Form("", max_length=200)):
        h.check_pre(request, csrf)
        if not h.register_limit.allow(f"ip{h.client_ip(request)}"):
            raise StudioError(429, "too many attempts; wait a minute")
        try:
            h.register(name, password)
        except StudioError as e:
            return pre_form(request, "register.html", error=e.message, name=name)
        token = h.login(request, name, password)
        resp = go("/")
        h.set_cookie(request, resp, security.COOKIE, token, security.SESSION_DAYS * 86400)
        return resp

    @app.post("/logout", include_in_schema=False)
    def logout_post(request: Request, csrf: str = Form("", max_length=200)):
        user = h.need_user(request)
        h.check_post(request, user, csrf)
        h.logout(request)
        resp = go("/login")
        resp.delete_cookie(security.COOKIE, path="/")
        return resp

    # -- generate and jobs
    def num(v: str | None, cast):
        v = (v or "").strip()
        if not v:
            return None
        try:
            return cast(v)
        except ValueError:
            raise StudioError(400, f"'{v[:40]}' is not a number") from None

    @app.post("/generate", include_in_schema=False)
    async def generate_post(request: Request):
        user = user_or_login(request)
        form = await request.form()
        h.check_post(request, user, str(form.get("csrf", "")))
        f = {k: str(v)[:200] for k, v in form.items() if isinstance(v, str)}
        model = f.get("model", "")
        caps = set((h.models().get(model) or {}).get("capabilities", []))
        given = {
            "temperature": num(f.get("temperature"), float) if "temperature" in caps else None,
            "top_k": num(f.get("top_k"), int) if "top_k" in caps else None,
            "top_p": num(f.get("top_p"), float) if "top_p" in caps else None,
            "key": (f.get("key") or None) if "key" in caps else None,
            "rules": (f.get("rules") or None) if "rules" in caps else None,
            "style": (f.get("style") or None) if "style" in caps else None,
            "iterations": num(f.get("iterations"), int) if "iterations" in caps else None,
            "latent_scale": num(f.get("latent_scale"), float) if "latent_scale" in caps else None,
            "threshold": num(f.get("threshold"), float) if "threshold" in caps else None,
            "primer_piece": num(f.get("primer_piece"), int) if "primer" in caps else None,
        }
        try:
            body = GenerateBody(model=model, bars=num(f.get("bars"), int) or 8, seed=num(f.get("seed"), int) or 0,
                                  num=num(f.get("num"), int) or 1, **given)
        except ValueError as e:  # pydantic's ValidationError
            raise StudioError(400, str(e).splitlines()[1] if "\n" in str(e) else str(e)) from None
        return go(f"/jobs/{h.generate_job(user, body)}")

    @app.get("/jobs/{job_id}", include_in_schema=False)
    def job_page(request: Request, job_id: ID):
        user = user_or_login(request)
        with h.session() as s:
            j = h.job_dict(h.own_job(s, job_id, user), s)
        return h.page(request, "job.html", user, job=j)

    @app.post("/jobs/{job_id}/cancel", include_in_schema=False)
    def job_cancel(request: Request, job_id: ID, csrf: str = Form("", max_length=200)):
        user = user_or_login(request)
        h.check_post(request, user, csrf)
        with h.session() as s:
            jobq.cancel(s, h.own_job(s, job_id, user))
        return go(f"/jobs/{job_id}")

    # -- pieces
    @app.get("/pieces/{piece_id}", include_in_schema=False)
    def piece_page(request: Request, piece_id: ID):
        user = h.maybe_user(request)
        p, owner, mine = h.get_piece(piece_id, user)
        d = h.piece_dict(p, owner)
        svg = None
        f = piece_file(p, "svg")
        if f is not None:
            svg = f"/api/pieces/{p.id}/files/svg"
        gan = f"/api/pieces/{p.id}/files/gan.wav" if piece_file(p, "gan.wav") is not None else None
        d["playable"] = piece_file(p, "wav") is not None
        return h.page(request, "piece.html", user, piece=d, mine=mine, svg=svg, gan=gan,
                      models=list(h.models().values()), voices=h.voices() if user else {},
                      is_owner=user is not None and p.owner_id == user.id)

    @app.post("/pieces/{piece_id}/render", include_in_schema=False)
    def piece_render(request: Request, piece_id: ID, csrf: str = Form("", max_length=200)):
        user = user_or_login(request)
        h.check_post(request, user, csrf)
        return go(f"/jobs/{h.render_job(user, piece_id)}")

    @app.post("/pieces/{piece_id}/voice", include_in_schema=False)
    def piece_voice(request: Request, piece_id: ID, voice: str = Form(..., max_length=300),
                    csrf: str = Form("", max_length=200)):
        user = user_or_login(request)
        h.check_post(request, user, csrf)
        model, _, instrument = voice.partition("|")
        return go(f"/jobs/{h.voice_job(user, piece_id, VoiceBody(model=model, instrument=instrument or None))}")

    @app.post("/pieces/{piece_id}/event", include_in_schema=False)
    def piece_event(request: Request, piece_id: ID, kind: str = Form(..., max_length=16),
                    value: str = Form("", max_length=20), csrf: str = Form("", max_length=200)):
        user = user_or_login(request)
        h.check_post(request, user, csrf)
        if kind not in ("like", "rating", "skip"):
            raise StudioError(400, "kind: like, rating or skip")
        h.add_event(user, piece_id, kind, num(value, float) if kind == "rating" else None)
        return go(f"/pieces/{piece_id}")

    @app.post("/pieces/{piece_id}/visibility", include_in_schema=False)
    def piece_visibility(request: Request, piece_id: ID, public: str = Form("0", max_length=5),
                         csrf: str = Form("", max_length=200)):
        user = user_or_login(request)
        h.check_post(request, user, csrf)
        h.set_visibility(user, piece_id, public == "1")
        return go(f"/pieces/{piece_id}")

    @app.post("/pieces/{piece_id}/rework", include_in_schema=False)
    async def piece_rework(request: Request, piece_id: ID):
        user = user_or_login(request)
        form = await request.form()
        f = {k: str(v)[:200] for k, v in form.items() if isinstance(v, str)}
        h.check_post(request, user, f.get("csrf", ""))
        command = f.get("command", "")
        if command == "continue":
            body = GenerateBody(model=f.get("model", ""), bars=num(f.get("bars"), int) or 8,
                                  seed=num(f.get("seed"), int) or 0, primer_piece=piece_id)
            return go(f"/jobs/{h.generate_job(user, body)}")
        if command == "evaluate":
            return go(f"/jobs/{h.evaluate_job(user, piece_id)}")
        try:
            body = ReworkBody(command=command, piece=piece_id, model=f.get("model") or "chorale-cnn",
                                bars=f.get("bars") or None, voices=f.get("voices") or None,
                                seed=num(f.get("seed"), int) or 0, particles=num(f.get("particles"), int))
        except ValueError as e:
            raise StudioError(400, str(e).splitlines()[1] if "\n" in str(e) else str(e)) from None
        return go(f"/jobs/{h.rework_job(user, body)}")

    @app.get("/pieces/{piece_id}/similar", include_in_schema=False)
    def piece_similar(request: Request, piece_id: ID):
        user = h.maybe_user(request)
        p, owner, _ = h.get_piece(piece_id, user)
        try:
            items, error = h.similar(user, piece_id), None
        except StudioError as e:
            items, error = [], e.message
        return h.page(request, "list.html", user, heading=f"Pieces like {p.title or p.key}", items=items,
                      error=error)

    @app.get("/library", include_in_schema=False)
    def library_page(request: Request):
        user = user_or_login(request)
        return h.page(request, "library.html", user, pieces=h.library(user))

    @app.get("/upload", include_in_schema=False)
    def upload_page(request: Request):
        user = user_or_login(request)
        from tunesmith.music.meter import METERS

        return h.page(request, "upload.html", user, max_mb=h.cfg.max_upload_mb, meters=list(METERS))

    @app.post("/upload", include_in_schema=False)
    async def upload_post(request: Request, file: UploadFile | None = File(None), abc: str = Form("", max_length=100_000),
                          title: str = Form("", max_length=200), csrf: str = Form("", max_length=200),
                          meter: str = Form("", max_length=20)):
        user = user_or_login(request)
        h.check_post(request, user, csrf)
        if file is not None and file.filename:
            data = await h.read_limited(file)
            return go(f"/jobs/{h.import_job(user, data, file.filename, title, meter=meter.strip())}")
        if abc.strip():
            body = AbcBody(abc=abc, title=title)
            return go(f"/jobs/{h.import_job(user, h.abc_text(body.abc, title).encode(), 'typed.abc', title)}")
        raise StudioError(400, "choose a file or type a melody as ABC")

    # -- find a tune
    @app.get("/find", include_in_schema=False)
    def find_page(request: Request):
        user = user_or_login(request)
        from pathlib import Path

        src = h.cfg.tune_sources
        sources = ", ".join(x if "/" not in x else Path(x).name for x in src) if src else "the bundled corpora"
        return h.page(request, "find.html", user, max_mb=h.cfg.max_upload_mb, sources=sources)

    @app.post("/find", include_in_schema=False)
    async def find_post(request: Request, file: UploadFile | None = File(None), abc: str = Form("", max_length=100_000),
                        bars: str = Form("", max_length=20), csrf: str = Form("", max_length=200)):
        user = user_or_login(request)
        h.check_post(request, user, csrf)
        data = await h.read_limited(file) if file is not None and file.filename else None
        return go(f"/jobs/{h.find_job(user, data=data, name=file.filename if data else '', abc=abc, bars=bars)}")

    @app.post("/pieces/{piece_id}/find", include_in_schema=False)
    def piece_find_post(request: Request, piece_id: ID, bars: str = Form("", max_length=20),
                        csrf: str = Form("", max_length=200)):
        user = user_or_login(request)
        h.check_post(request, user, csrf)
        return go(f"/jobs/{h.find_job(user, piece_id=piece_id, bars=bars)}")

    # -- discover
    @app.get("/discover", include_in_schema=False)
    def discover(request: Request, q: str = ""):
        user = h.maybe_user(request)
        return h.page(request, "discover.html", user, feed=h.recommendations(user), q=q[:100],
                      results=h.search_pieces(user, q) if q else None)

    @app.post("/discover/catalogue", include_in_schema=False)
    def discover_catalogue(request: Request, csrf: str = Form("", max_length=200)):
        user = user_or_login(request)
        h.check_post(request, user, csrf)
        return go(f"/jobs/{h.catalogue_job(user)}")

    # -- listening tests
    @app.get("/tests", include_in_schema=False)
    def tests_page(request: Request):
        user = user_or_login(request)
        return h.page(request, "tests.html", user, tests=h.my_tests(user), pieces=h.library(user))

    @app.post("/tests", include_in_schema=False)
    async def tests_post(request: Request):
        user = user_or_login(request)
        form = await request.form()
        h.check_post(request, user, str(form.get("csrf", "")))
        systems: dict[str, list[int]] = {}
        for slot in ("1", "2", "3"):
            name = str(form.get(f"system{slot}", "")).strip()[:60]
            ids = [num(str(v), int) for v in form.getlist(f"pieces{slot}")]
            if name and ids:
                systems[name] = [i for i in ids if i is not None]
        try:
            body = TestBody(name=str(form.get("name", ""))[:200] or "listening test",
                              kind=str(form.get("kind", "mos")), systems=systems)
        except ValueError as e:
            raise StudioError(400, str(e).splitlines()[1] if "\n" in str(e) else str(e)) from None
        return go(f"/tests/{h.create_test(user, body)}/results")

    @app.get("/tests/{test_id}", include_in_schema=False)
    def take_test(request: Request, test_id: ID):
        user = user_or_login(request)
        return h.page(request, "take.html", user, t=h.next_trial(user, test_id))

    @app.post("/tests/{test_id}", include_in_schema=False)
    def answer_post(request: Request, test_id: ID, trial: int = Form(...), answer: str = Form(..., max_length=8),
                    csrf: str = Form("", max_length=200)):
        user = user_or_login(request)
        h.check_post(request, user, csrf)
        try:
            body = AnswerBody(trial=trial, answer=answer)
        except ValueError:
            raise StudioError(400, "answer: a rating 1–5, or a / b / tie") from None
        h.answer(user, test_id, body)
        return go(f"/tests/{test_id}")

    @app.get("/tests/{test_id}/results", include_in_schema=False)
    def results_page(request: Request, test_id: ID):
        user = user_or_login(request)
        with h.session() as s:
            t = h.get_test(s, test_id)
            if t.owner_id != user.id:
                raise StudioError(404, "no such listening test")
            info = {"id": t.id, "name": t.name, "kind": t.kind, "systems": t.systems}
        return h.page(request, "results.html", user, t=info, res=h.test_results(user, test_id))
