"""The studio's API and pages, through FastAPI's test client against a real SQLite store
and real worker processes: accounts, CSRF, privacy, uploads, jobs (progress, cancel,
restart), pieces, events, discovery, listening tests, and a schema fuzz with no 5xx."""

import io
import re
import time
import wave

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import select  # noqa: E402
from tests.conftest import make_score, share_folk_corpus, tunesmith_home_at  # noqa: E402

from tunesmith.store import db  # noqa: E402
from tunesmith.store.models import Account, Event, Job  # noqa: E402
from tunesmith.studio.app import create_app  # noqa: E402
from tunesmith.studio.schemas import StudioConfig  # noqa: E402

MELODY = "X:1\nT:Test tune\nM:4/4\nL:1/4\nK:G\nG A B c | d2 B2 | c B A G | A4 | B c d e | d2 B2 | A G A B | G4 |]\n"


@pytest.fixture(scope="module")
def home(tmp_path_factory, _isolated_home):
    with tunesmith_home_at(tmp_path_factory.mktemp("studio-home")) as h:
        share_folk_corpus(h, _isolated_home)
        yield h


TUNES = {  # what "find a tune" searches in these tests (the studio's --tunes): three tunes of a folder
    "lark.abc": "X:1\nT:The Lark\nM:4/4\nL:1/8\nK:G\nGABc dBAG|FGAB c2A2|BcdB cAFD|G2B2 G4|"
                "dedB c2A2|BAGF E2D2|GABG FGAF|G8|]\n",
    "mill.abc": "X:1\nT:The Mill Wheel\nM:3/4\nL:1/8\nK:D\nA2|d2f2a2|g2e2c2|d2A2F2|E4A2|B2c2d2|e2f2g2|"
                "f2e2d2|d4|]\n",
    "hill.abc": "X:1\nT:Over the Hill\nM:6/8\nL:1/8\nK:Am\nE|AcA BGE|ABc d2e|edc BAG|A3 A2|]\n",
}


@pytest.fixture(scope="module")
def tunes(home):
    folder = home / "tunes"
    folder.mkdir()
    for name, text in TUNES.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture(scope="module")
def app(home, tunes):
    cfg = StudioConfig(db_url=f"sqlite:///{home / 'studio.db'}", workers=1, max_upload_mb=0.5, queue_limit=3,
                       login_per_minute=30, tune_sources=[str(tunes)])
    a = create_app(cfg)
    with TestClient(a):  # runs the lifespan: the worker pool starts and stops with it
        yield a


def client(app) -> TestClient:
    return TestClient(app)


def register(app, name, password="correct-horse"):
    c = client(app)
    tok = c.get("/api/csrf").json()["csrf"]
    r = c.post("/api/register", json={"name": name, "password": password}, headers={"x-csrf-token": tok})
    assert r.status_code == 201, r.text
    r = c.post("/api/login", json={"name": name, "password": password}, headers={"x-csrf-token": tok})
    assert r.status_code == 200
    c.headers["x-csrf-token"] = r.json()["csrf"]
    return c


def wait(c, job, timeout=240):
    t0 = time.time()
    while time.time() - t0 < timeout:
        j = c.get(f"/api/jobs/{job}").json()
        if j["status"] in ("done", "failed", "cancelled"):
            return j
        time.sleep(0.3)
    app = c.app
    with db.session(app.state.url) as s:
        table = [(x.id, x.kind, x.status, x.message, x.worker) for x in s.scalars(select(Job))]
    pool = app.state.pool
    alive = {n: p.is_alive() for n, p in pool.procs.items()} if pool else None
    raise AssertionError(f"job {job} still {j['status']} after {timeout} s; jobs {table}; workers {alive}")


def upload_abc(c, text=MELODY, title=""):
    r = c.post("/api/pieces/abc", json={"abc": text, "title": title})
    assert r.status_code == 202, r.text
    j = wait(c, r.json()["job"])
    assert j["status"] == "done", j
    return j["result"]["pieces"][0]


@pytest.fixture(scope="module")
def ann(app):
    return register(app, "ann")


@pytest.fixture(scope="module")
def bob(app):
    return register(app, "bob")


@pytest.fixture(scope="module")
def anns_piece(ann):
    r = ann.post("/api/jobs/generate", json={"model": "bach-chorales", "bars": 4, "seed": 3, "key": "D major"})
    assert r.status_code == 202, r.text
    j = wait(ann, r.json()["job"])
    assert j["status"] == "done", j
    return j["result"]["pieces"][0]


def test_only_health_without_an_account(app):
    c = client(app)
    assert c.get("/health").json()["ok"] is True
    assert c.get("/api/pieces").status_code == 401
    assert c.get("/api/models").status_code == 401
    r = c.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert c.get("/pieces/1", follow_redirects=False).headers["location"] == "/login"


def test_accounts(app, home):
    c = client(app)
    tok = c.get("/api/csrf").json()["csrf"]
    h = {"x-csrf-token": tok}
    assert c.post("/api/register", json={"name": "cy", "password": "short"}, headers=h).status_code == 400
    assert c.post("/api/register", json={"name": "c y<", "password": "long-enough"}, headers=h).status_code == 400
    assert c.post("/api/register", json={"name": "cy", "password": "long-enough"}).status_code == 403  # no CSRF
    assert c.post("/api/register", json={"name": "cy", "password": "long-enough"}, headers=h).status_code == 201
    assert c.post("/api/register", json={"name": "cy", "password": "other-pass"}, headers=h).status_code == 409
    assert c.post("/api/login", json={"name": "cy", "password": "wrong-pass"}, headers=h).status_code == 401
    r = c.post("/api/login", json={"name": "cy", "password": "long-enough"}, headers=h)
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    with db.session(app.state.url) as s:
        hashes = list(s.scalars(select(Account.password_hash)))
    assert all(x.startswith("$argon2id$") for x in hashes) and not any("long-enough" in x for x in hashes)
    me = c.get("/api/me").json()
    assert me["name"] == "cy"
    c.headers["x-csrf-token"] = me["csrf"]
    assert c.post("/api/logout").status_code == 200
    assert c.get("/api/me").status_code == 401  # the session is gone on the server, not only the cookie


def test_login_form_and_pages(app):
    c = client(app)
    r = c.get("/register")
    pre = re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)
    r = c.post("/register", data={"name": "dee", "password": "dee-password", "csrf": pre}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    for path in ("/", "/library", "/upload", "/discover", "/tests"):
        assert c.get(path).status_code == 200, path
    bad = client(app)
    bad.get("/login")
    r = bad.post("/login", data={"name": "dee", "password": "dee-password", "csrf": "forged"})
    assert r.status_code == 403


def test_generate_piece_and_its_page(ann, anns_piece):
    p = ann.get(f"/api/pieces/{anns_piece}").json()
    assert p["kind"] == "generated" and p["model"] == "bach-chorales"
    assert p["settings"]["key"] == "D major" and p["settings"]["seed"] == 3 and p["settings"]["bars"] == 4
    assert p["meta"]["analysis"]["key"] == "D major"
    page = ann.get(f"/pieces/{anns_piece}").text
    assert '<audio id="player"' in page and f"/api/pieces/{anns_piece}/files/svg" in page
    assert ann.get(f"/api/pieces/{anns_piece}/files/svg").text.lstrip().startswith("<svg")
    wav = ann.get(f"/api/pieces/{anns_piece}/files/wav").content
    with wave.open(io.BytesIO(wav)) as w:
        assert w.getnframes() / w.getframerate() > 4
    assert ann.get(f"/api/pieces/{anns_piece}/files/mid").content[:4] == b"MThd"
    assert b"<score-partwise" in ann.get(f"/api/pieces/{anns_piece}/files/musicxml").content[:2000]
    assert ann.get(f"/api/pieces/{anns_piece}/files/png").content[:4] == b"\x89PNG"
    assert anns_piece in [x["id"] for x in ann.get("/api/pieces").json()]


def test_generate_refuses_what_a_model_cannot_do(ann):
    r = ann.post("/api/jobs/generate", json={"model": "chorale-gan", "top_k": 5})
    assert r.status_code == 400 and "top_k" in r.json()["error"]
    r = ann.post("/api/jobs/generate", json={"model": "nope"})
    assert r.status_code == 400 and "unknown model" in r.json()["error"]
    r = ann.post("/api/jobs/generate", json={"model": "folk", "key": "H major"})
    assert r.status_code == 400
    r = ann.post("/api/jobs/generate", json={"model": "folk", "bars": 1000})
    assert r.status_code == 422
    models = {m["name"]: m for m in ann.get("/api/models").json()}
    assert "iterations" in models["chorale-cnn"]["capabilities"]
    assert "top_p" in models["folk"]["capabilities"]


def test_privacy_between_listeners(ann, bob, anns_piece):
    for path in (f"/api/pieces/{anns_piece}", f"/api/pieces/{anns_piece}/files/wav", f"/pieces/{anns_piece}",
                 f"/api/pieces/{anns_piece}/similar"):
        assert bob.get(path).status_code == 404, path  # not 403: bob must not learn it exists
    assert bob.post(f"/api/pieces/{anns_piece}/events", json={"kind": "like"}).status_code == 404
    assert bob.post(f"/api/pieces/{anns_piece}/visibility", json={"public": True}).status_code == 404
    assert bob.post("/api/jobs/rework", json={"command": "harmonize", "piece": anns_piece}).status_code == 404
    jobs = ann.get("/api/jobs").json()
    assert bob.get(f"/api/jobs/{jobs[0]['id']}").status_code == 404
    assert anns_piece not in [x["id"] for x in bob.get("/api/pieces").json()]
    assert ann.post(f"/api/pieces/{anns_piece}/visibility", json={"public": True}).status_code == 200
    assert bob.get(f"/api/pieces/{anns_piece}").status_code == 200
    recs = bob.get("/api/recommendations").json()  # a shared piece is recommended to others
    assert anns_piece in [r["id"] for r in recs]
    assert anns_piece not in [r["id"] for r in ann.get("/api/recommendations").json()]  # never one's own
    assert ann.post(f"/api/pieces/{anns_piece}/visibility", json={"public": False}).status_code == 200
    assert bob.get(f"/api/pieces/{anns_piece}").status_code == 404


def test_csrf_is_checked_on_every_post(app, ann, anns_piece):
    c = client(app)
    c.cookies.update(ann.cookies)
    assert c.post(f"/api/pieces/{anns_piece}/events", json={"kind": "like"}).status_code == 403
    assert c.post(f"/api/pieces/{anns_piece}/events", json={"kind": "like"},
                  headers={"x-csrf-token": "forged"}).status_code == 403
    r = c.post(f"/pieces/{anns_piece}/event", data={"kind": "like", "csrf": "forged"})
    assert r.status_code == 403
    assert c.post("/api/jobs/generate", json={"model": "folk"}).status_code == 403


def test_events_reach_the_store(app, ann, anns_piece):
    for body in ({"kind": "like"}, {"kind": "rating", "value": 4}, {"kind": "play", "value": 3.5},
                 {"kind": "complete"}):
        assert ann.post(f"/api/pieces/{anns_piece}/events", json=body).status_code == 201
    assert ann.post(f"/api/pieces/{anns_piece}/events", json={"kind": "rating", "value": 9}).status_code == 400
    assert ann.post(f"/api/pieces/{anns_piece}/events", json={"kind": "hum"}).status_code == 422
    with db.session(app.state.url) as s:
        kinds = list(s.scalars(select(Event.kind).where(Event.piece_id == anns_piece)))
    assert {"like", "rating", "play", "complete"} <= set(kinds)
    assert ann.get(f"/api/pieces/{anns_piece}").json()["mine"]["rating"] == 4


def test_user_text_is_escaped(ann):
    pid = upload_abc(ann, MELODY.replace("T:Test tune", "T:<script>alert(1)</script>"))
    page = ann.get(f"/pieces/{pid}").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert" not in ann.get("/library").text


def test_downloads_cannot_leave_the_piece(ann, anns_piece):
    for fmt in ("..%2F..%2Fstudio.db", "../../studio.db", "py", "json", "analysis.json", "%2e%2e"):
        r = ann.get(f"/api/pieces/{anns_piece}/files/{fmt}")
        assert r.status_code in (404, 422), fmt  # a path the client normalises lands elsewhere
        assert b"SQLite" not in r.content


def test_uploads_are_judged_by_content_and_size(ann):
    r = ann.post("/api/pieces/upload", files={"file": ("song.mid", b"\x7fELF" + b"\0" * 100, "audio/midi")})
    assert r.status_code == 415 and "judged by its content" in r.json()["error"]
    r = ann.post("/api/pieces/upload", files={"file": ("song.mid", b"MThd" + b"\0" * 600_000, "audio/midi")})
    assert r.status_code == 413 and "over 0.5 MB" in r.json()["error"]
    r = ann.post("/api/pieces/upload", files={"file": ("empty.mid", b"", "audio/midi")})
    assert r.status_code == 400
    # a real MIDI file with a misleading name is read as what it is
    import tempfile

    from tunesmith.music.corpora import corpus_files
    from tunesmith.music.io import load_score, save_midi

    with tempfile.TemporaryDirectory() as d:
        save_midi(load_score(corpus_files("bach-chorales")[0]), f"{d}/x.mid")
        data = open(f"{d}/x.mid", "rb").read()
    r = ann.post("/api/pieces/upload", files={"file": ("chorale.txt", data, "text/plain")})
    assert r.status_code == 202
    j = wait(ann, r.json()["job"])
    assert j["status"] == "done"
    p = ann.get(f"/api/pieces/{j['result']['pieces'][0]}").json()
    assert p["kind"] == "upload" and p["meta"]["voices"] == 4
    # a MIDI file that writes its upbeat at time 0: the page says the upbeat was read from the notes
    from tunesmith.music.meter import from_first_note

    bwv269 = load_score(next(f for f in corpus_files("bach-chorales") if f.name.startswith("bwv269.")))
    r = ann.post("/api/pieces/upload", files={"file": ("bwv269.mid", bytes(from_first_note(bwv269.music).dumps_midi()),
                                                       "audio/midi")})
    j = wait(ann, r.json()["job"])
    p = ann.get(f"/api/pieces/{j['result']['pieces'][0]}").json()
    assert p["meta"]["analysis"]["meter"] == "3/4"
    assert p["meta"]["analysis"]["meter_note"].startswith("an upbeat of 1 quarter note"), p["meta"]["analysis"]
    assert "an upbeat of 1 quarter note" in ann.get(f"/pieces/{p['id']}").text


def test_harmonize_an_uploaded_melody(ann):
    pid = upload_abc(ann)
    r = ann.post("/api/jobs/rework", json={"command": "harmonize", "piece": pid, "model": "bach-chorales", "seed": 1})
    assert r.status_code == 202, r.text
    j = wait(ann, r.json()["job"])
    assert j["status"] == "done", j
    out = ann.get(f"/api/pieces/{j['result']['pieces'][0]}").json()
    assert out["meta"]["voices"] == 4 and "harmonized" in out["title"]
    r = ann.post("/api/jobs/rework", json={"command": "infill", "piece": pid, "model": "folk", "bars": "1-2"})
    assert r.status_code == 400 and "cannot infill" in r.json()["error"]
    r = ann.post("/api/jobs/rework", json={"command": "harmonize", "piece": pid, "model": "bach-chorales",
                                          "particles": 2})
    j = wait(ann, r.json()["job"])
    assert j["status"] == "done", j
    r = ann.post("/api/jobs/rework", json={"command": "harmonize", "piece": pid, "model": "chorale-cnn", "particles": 2})
    assert r.status_code == 400 and r.json()["error"].startswith("particles:")
    r = ann.post("/api/jobs/rework", json={"command": "harmonize", "piece": pid, "model": "bach-chorales",
                                          "particles": 65})
    assert r.status_code in (400, 422) and "particles" in r.text


def test_queue_limit_and_cancel(app, home):
    c = register(app, "eve")
    slow = {"model": "chorale-cnn", "bars": 16, "iterations": 1000, "seed": 1}
    ids = [c.post("/api/jobs/generate", json=slow).json()["job"] for _ in range(3)]
    r = c.post("/api/jobs/generate", json=slow)
    assert r.status_code == 429 and "at most 3" in r.json()["error"]
    # cancel a queued one and then the running one
    t0 = time.time()
    while c.get(f"/api/jobs/{ids[0]}").json()["status"] != "running":
        assert time.time() - t0 < 120
        time.sleep(0.2)
    assert c.post(f"/api/jobs/{ids[2]}/cancel").json()["status"] == "cancelled"
    assert c.post(f"/api/jobs/{ids[0]}/cancel").json()["status"] in ("cancelling", "cancelled")
    assert wait(c, ids[0], 60)["status"] == "cancelled"
    # the pool replaced the worker: the next job starts; cancel it too
    t0 = time.time()
    while c.get(f"/api/jobs/{ids[1]}").json()["status"] != "running":
        assert time.time() - t0 < 120, "the worker pool did not replace the cancelled worker"
        time.sleep(0.2)
    c.post(f"/api/jobs/{ids[1]}/cancel")
    assert wait(c, ids[1], 60)["status"] == "cancelled"
    assert not list((home / "studio" / "pieces").glob(".tmp-*"))  # no half-written piece is left


def test_a_job_running_at_a_restart_is_run_again(home, tmp_path):
    url = f"sqlite:///{tmp_path / 'restart.db'}"
    first = create_app(StudioConfig(db_url=url, workers=0))
    c = TestClient(first)
    tok = c.get("/api/csrf").json()["csrf"]
    c.post("/api/register", json={"name": "fay", "password": "fay-password"}, headers={"x-csrf-token": tok})
    with db.session(url) as s:  # the studio stopped while this job ran (and after two tries of another)
        from tunesmith.store.models import Listener

        lid = s.scalar(select(Listener.id).where(Listener.name == "fay"))
        s.add(Job(listener_id=lid, kind="generate", params={"model": "folk", "bars": 2, "seed": 5}, status="running",
                  progress=0.4, message="piece 1 of 1", attempts=1))
        s.add(Job(listener_id=lid, kind="generate", params={"model": "folk", "bars": 2}, status="running",
                  progress=0.4, message="piece 1 of 1", attempts=3))
    (home / "studio" / "pieces").mkdir(parents=True, exist_ok=True)
    half = home / "studio" / "pieces" / ".tmp-job1-deadbeef"
    half.mkdir()
    second = create_app(StudioConfig(db_url=url, workers=1))
    with TestClient(second) as c2:
        assert not half.exists()
        t0 = time.time()
        while True:
            with db.session(url) as s:
                a, b = [(j.status, j.message) for j in s.scalars(select(Job).order_by(Job.id))]
            if a[0] in ("done", "failed"):
                break
            assert time.time() - t0 < 120
            time.sleep(0.3)
        assert a == ("done", "done")
        assert b[0] == "failed" and "the studio stopped while this job ran" in b[1]
        assert c2.get("/health").status_code == 200


def test_listening_tests(app, ann, bob):
    a1, a2 = upload_abc(ann, title="A one"), upload_abc(ann, title="A two")
    b1, b2 = upload_abc(ann, MELODY.replace("G A B c", "B A G A"), "B one"), upload_abc(ann, MELODY, "B two")
    r = ann.post("/api/tests", json={"name": "mos", "kind": "mos", "systems": {"lstm": [a1, a2], "bach": [b1, b2]}})
    assert r.status_code == 201
    tid = r.json()["test"]
    for who, score in ((ann, "4"), (bob, "2")):
        t = who.get(f"/api/tests/{tid}/next").json()
        seen = []
        while t["trial"] is not None:
            assert "lstm" not in str(t) and "bach" not in str(t)  # unlabelled
            assert who.get(t["clips"][0]).content[:4] == b"RIFF"  # bob hears ann's private pieces only here
            seen.append(t["trial"])
            t = who.post(f"/api/tests/{tid}/answers", json={"trial": t["trial"], "answer": score}).json()
        assert sorted(seen) == [0, 1, 2, 3]
        assert who.post(f"/api/tests/{tid}/answers", json={"trial": 0, "answer": "3"}).status_code == 409
    assert bob.get(f"/api/pieces/{a1}").status_code == 404
    csv = ann.get(f"/api/tests/{tid}/export.csv").text
    assert csv.splitlines()[0] == "rater,item,system,rating" and len(csv.splitlines()) == 9
    assert bob.get(f"/api/tests/{tid}/export.csv").status_code == 404  # only its owner sees results
    res = ann.get(f"/api/tests/{tid}/results").json()
    assert res["answers"] == 8 and "MOS" in res["report"]
    assert ann.get(f"/tests/{tid}/results").status_code == 200
    # an A/B test: the clips' order is randomised per listener and trial, answers are stored per system
    r = ann.post("/api/tests", json={"name": "ab", "kind": "ab", "systems": {"lstm": [a1], "bach": [b1]}})
    tid = r.json()["test"]
    t = bob.get(f"/api/tests/{tid}/next").json()
    first = bob.get(t["clips"][0]).content
    chose_bach = "a" if first == ann.get(f"/api/pieces/{b1}/files/wav").content else "b"
    bob.post(f"/api/tests/{tid}/answers", json={"trial": t["trial"], "answer": chose_bach})
    row = ann.get(f"/api/tests/{tid}/export.csv").text.splitlines()[1].split(",")
    assert row[2:] == ["bach", "lstm", "a"]  # systems in name order: bach is system a
    assert ann.post("/api/tests", json={"name": "x", "kind": "mos", "systems": {"one": [a1]}}).status_code == 400


def test_rate_limit_on_logins(app):
    c = client(app)
    tok = c.get("/api/csrf").json()["csrf"]
    codes = [c.post("/api/login", json={"name": "nobody", "password": "x"}, headers={"x-csrf-token": tok}).status_code
             for _ in range(35)]
    assert codes[0] == 401 and codes[-1] == 429


def test_openapi_covers_the_api(app):
    paths = client(app).get("/openapi.json").json()["paths"]
    for p in ("/api/jobs/generate", "/api/jobs/rework", "/api/pieces/upload", "/api/pieces/{piece_id}/events",
              "/api/recommendations", "/api/tests", "/api/tests/{test_id}/answers", "/api/login"):
        assert p in paths


def test_schema_fuzz_never_answers_5xx(app):
    fuzz = register(app, "fuzz")
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures, tried = [], 0
    headers = {"x-csrf-token": fuzz.headers["x-csrf-token"]}
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith(("/api/admin", "/api/logout")):
            continue  # the catalogue job prepares whole corpora; logging out would end the session

        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        @given(operation.as_strategy())
        def run(case):
            resp = case.call(headers=headers, cookies=dict(fuzz.cookies))
            if resp.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} → {resp.status_code}")

        run()
        tried += 1
    for j in fuzz.get("/api/jobs").json():  # the jobs the fuzz queued must not hold up the other tests
        fuzz.post(f"/api/jobs/{j['id']}/cancel")
    assert tried >= 20 and failures == []


def test_continue_infill_and_similar(ann):
    tune = upload_abc(ann, title="Continue me")
    r = ann.post("/api/jobs/generate", json={"model": "folk", "bars": 4, "primer_piece": tune, "seed": 2})
    assert r.status_code == 202, r.text
    j = wait(ann, r.json()["job"])
    assert j["status"] == "done", j
    cont = ann.get(f"/api/pieces/{j['result']['pieces'][0]}").json()
    assert "after Continue me" in cont["title"] and cont["meta"]["analysis"]["bars"] >= 8 + 4 - 1
    # a model that cannot continue a piece is refused with the ones that can (it said "primer_piece: the
    # model does not take this control")
    r = ann.post("/api/jobs/generate", json={"model": "chorale-cnn", "bars": 4, "primer_piece": tune})
    assert r.status_code == 400 and "cannot continue a piece; choose" in r.text and "folk" in r.text, r.text
    # infill bars 2-3 of the alto and tenor of a harmonized chorale with Coconet
    r = ann.post("/api/jobs/rework", json={"command": "harmonize", "piece": tune, "model": "chorale-cnn",
                                           "iterations": 4})
    chorale = wait(ann, r.json()["job"])["result"]["pieces"][0]
    r = ann.post("/api/jobs/rework", json={"command": "infill", "piece": chorale, "model": "chorale-cnn",
                                           "bars": "2-3", "voices": "alto,tenor", "iterations": 4})
    assert r.status_code == 202, r.text
    j = wait(ann, r.json()["job"])
    assert j["status"] == "done", j
    assert ann.post("/api/jobs/rework", json={"command": "infill", "piece": chorale, "model": "chorale-cnn",
                                              "bars": "x"}).status_code == 400
    # similar pieces: without a fitted recommender, by the MIR features saved with every piece
    sims = ann.get(f"/api/pieces/{chorale}/similar").json()
    assert sims and all(s["id"] != chorale for s in sims) and "sounds alike" in sims[0]["why"]


@pytest.mark.slow
def test_audio_upload_is_transcribed(ann, tmp_path):
    sr = 22050
    t = np.arange(int(sr * 0.5)) / sr
    notes = [60, 64, 67, 72]
    audio = np.concatenate([0.4 * np.sin(2 * np.pi * 440 * 2 ** ((m - 69) / 12) * t) * np.exp(-2 * t) for m in notes])
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((audio * 32767).astype("<i2").tobytes())
    r = ann.post("/api/pieces/upload", files={"file": ("take.bin", buf.getvalue(), "application/octet-stream")})
    assert r.status_code == 202
    j = wait(ann, r.json()["job"], 300)
    assert j["status"] == "done", j
    p = ann.get(f"/api/pieces/{j['result']['pieces'][0]}").json()
    assert p["kind"] == "upload" and p["meta"]["voices"] >= 1
    # the recording's own analysis (analyze's audio part) and its chromagram are on the piece page
    rec = p["meta"]["analysis"]["recording"]
    assert abs(rec["seconds"] - 2.0) < 0.05 and rec["key"] in ("C major", "A minor") and abs(rec["tuning_cents"]) < 10, rec
    png = ann.get(f"/api/pieces/{p['id']}/files/chroma.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG") and png.headers["content-type"] == "image/png"
    assert 'id="chroma"' in ann.get(f"/pieces/{p['id']}").text
    # four notes say nothing of a meter: the page says its 4/4 is assumed, not read from the recording
    assert p["meta"]["analysis"]["meter_note"].startswith("assumed"), p["meta"]["analysis"]
    assert "(assumed: too few notes" in ann.get(f"/pieces/{p['id']}").text
    # the meter of a recording can be given (and is refused for a score, or when unknown)
    r = ann.post("/api/pieces/upload", files={"file": ("take.wav", buf.getvalue(), "audio/wav")}, data={"meter": "3/4"})
    j = wait(ann, r.json()["job"], 300)
    p = ann.get(f"/api/pieces/{j['result']['pieces'][0]}").json()
    assert p["meta"]["analysis"]["meter"] == "3/4" and p["meta"]["analysis"]["meter_note"].startswith("as given")
    midi = bytes(make_score([[(0, 480, 60), (480, 480, 62)]]).music.dumps_midi())
    for data, name, why in ((buf.getvalue(), "take.wav", "is not one of"), (midi, "a.mid", "only a recording's")):
        r = ann.post("/api/pieces/upload", files={"file": (name, data, "application/octet-stream")},
                     data={"meter": "5/4" if name == "take.wav" else "3/4"})
        assert r.status_code == 400 and why in r.json()["error"], r.text
    assert '<select name="meter"' in ann.get("/upload").text


def test_security_headers(ann, anns_piece):
    page = ann.get(f"/pieces/{anns_piece}")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    svg = ann.get(f"/api/pieces/{anns_piece}/files/svg")
    assert "sandbox" in svg.headers["content-security-policy"]


@pytest.mark.slow
def test_originality_of_a_generated_piece(ann, anns_piece):
    """The evaluation summary: the job indexes the model's training set (preparing the dataset
    in the worker, which starts processes of its own) and names the nearest training piece
    where the piece shares any 4-note pattern with one."""
    r = ann.post(f"/api/pieces/{anns_piece}/evaluate")
    assert r.status_code == 202, r.text
    j = wait(ann, r.json()["job"], 600)
    assert j["status"] == "done", j
    o = ann.get(f"/api/pieces/{anns_piece}").json()["meta"]["originality"]
    assert o["training_set"].startswith("bach-chorales") and o["longest_run_bars"] >= 0 and o["flagged"] is False
    assert o["nearest_name"] is None or o["nearest_name"].startswith("bach-chorales/")
    assert "Originality" in ann.get(f"/pieces/{anns_piece}").text


def test_a_waveform_gan_plays_a_piece(ann, bob):
    voices = ann.get("/api/voices").json()
    assert "notes-gan" in voices and voices["notes-gan"]
    pid = upload_abc(ann, title="For the GAN")
    assert ann.post(f"/api/pieces/{pid}/voice", json={"model": "folk"}).status_code == 400
    assert ann.post(f"/api/pieces/{pid}/voice", json={"instrument": "kazoo"}).status_code == 400
    assert bob.post(f"/api/pieces/{pid}/voice", json={}).status_code == 404
    r = ann.post(f"/api/pieces/{pid}/voice", json={"model": "notes-gan", "instrument": voices["notes-gan"][0]})
    assert r.status_code == 202, r.text
    j = wait(ann, r.json()["job"])
    assert j["status"] == "done", j
    wav = ann.get(f"/api/pieces/{pid}/files/gan.wav").content
    with wave.open(io.BytesIO(wav)) as w:
        assert w.getnframes() / w.getframerate() > 4
    assert 'id="gan-player"' in ann.get(f"/pieces/{pid}").text


@pytest.mark.slow
def test_a_catalogue_piece_is_made_listenable(app, ann):
    """A recommended catalogue piece has no files until someone opens it: the render job makes
    its audio, score and analysis once (the dataset is the one the originality test prepared)."""
    from tunesmith.recommend.catalogue import corpus_rows
    from tunesmith.store.events import add_pieces
    from tunesmith.store.models import Piece

    rows = corpus_rows("bach-chorales", progress=False)[:2]
    with db.session(app.state.url) as s:
        add_pieces(s, rows)
        pid = s.scalar(select(Piece.id).where(Piece.key == rows[0]["key"]))
    assert 'id="prepare"' in ann.get(f"/pieces/{pid}").text and ann.get(f"/api/pieces/{pid}/files/wav").status_code == 404
    r = ann.post(f"/api/pieces/{pid}/render")
    assert r.status_code == 202, r.text
    j = wait(ann, r.json()["job"], 300)
    assert j["status"] == "done", j
    page = ann.get(f"/pieces/{pid}").text
    assert 'id="player"' in page and "/files/svg" in page
    assert ann.get(f"/api/pieces/{pid}/files/wav").content[:4] == b"RIFF"
    assert ann.get(f"/api/pieces/{pid}").json()["key"] == rows[0]["key"]  # still the catalogue's piece


def find(c, job_response, timeout=240):
    assert job_response.status_code == 202, job_response.text
    j = wait(c, job_response.json()["job"], timeout)
    assert j["status"] == "done", j
    return j["result"]


def test_find_a_tune_from_a_typed_snippet_a_recording_and_a_piece(app, home, ann, bob, tmp_path):
    """The studio's "find a tune" searches its sources (here a folder of three tunes, indexed by the
    first search): a snippet typed in another key and rhythm, a played recording of one, and a
    listener's own piece each find their tune first, with its bars; another listener's private
    piece is not found, and a hit in the catalogue links to its piece."""
    # The Lark's bars 5–6, a fourth higher, with a note split in two: typed as ABC
    uploads = home / "studio" / "uploads"
    before = {f for f in uploads.rglob("*") if f.is_file()}
    res = ann.post("/api/find", data={"abc": "M:4/4\nL:1/8\nK:C\nghge f2d2|edcB A2 AG|"})
    r = find(ann, res)
    assert r["hits"][0]["name"].endswith("The Lark"), r
    assert "heard" not in r  # a typed query is not heard
    job = ann.get(f"/api/jobs/{res.json()['job']}").json()
    assert "file" not in job["params"] and "sources" not in job["params"]  # no server path is shown
    assert {f for f in uploads.rglob("*") if f.is_file()} == before  # a query file is not kept after its search
    assert r["hits"][0]["bars"] == [5, 6] and r["query_notes"] >= 8
    # The Mill Wheel's first bars played on a violin, recorded: transcribed, then searched
    from tunesmith.music.io import load_score
    from tunesmith.music.render import render_wav

    (tmp_path / "mill.abc").write_text(TUNES["mill.abc"])
    s = load_score(tmp_path / "mill.abc")
    for t in s.music.tracks:
        t.program = 40
    import soundfile as sf

    y, sr = sf.read(render_wav(s, tmp_path / "full.wav", sample_rate=16000))
    sf.write(tmp_path / "take.wav", y[:sr * 7], sr, subtype="PCM_16")  # its first 7 seconds, under the upload limit
    r = find(ann, ann.post("/api/find", files={"file": ("take.wav", (tmp_path / "take.wav").read_bytes(),
                                                        "audio/wav")}), 300)
    assert r["hits"][0]["name"].endswith("The Mill Wheel"), r
    assert len(r["heard"]) == min(r["query_notes"], 48) and r["heard"][:2] == ["A4", "D5"], r  # the tune as heard
    assert "voices_heard" not in r  # one line heard: no warning
    # a listener's own piece (uploaded), its bars 1–2; the page lists the tunes with their bars
    pid = upload_abc(ann, "X:1\nT:Mine\nM:6/8\nL:1/8\nK:Dm\nA|dfd ecA|def g2a|]\n")
    res = ann.post(f"/api/pieces/{pid}/find", json={"bars": "1-2", "top": 2})
    r = find(ann, res)
    assert r["hits"][0]["name"].endswith("Over the Hill") and len(r["hits"]) <= 2 and r["bars"] == [1, 2], r
    page = ann.get(f"/jobs/{res.json()['job']}").text
    assert "Over the Hill" in page and 'id="hits"' in page
    # bob may not search with ann's private piece
    assert bob.post(f"/api/pieces/{pid}/find", json={}).status_code == 404
    # a hit that is in the catalogue links to its piece
    from tunesmith.store.models import Piece

    with db.session(app.state.url) as s:
        row = Piece(key="folk/the-lark", kind="corpus", title="The Lark", content_hash=r["hits"][0]["id"],
                    path="x.abc", public=True)
        s.add(row)
        s.flush()
        lark = row.id
    r = find(ann, ann.post(f"/api/pieces/{pid}/find", json={"bars": "1-2"}))
    assert r["hits"][0]["piece"] == lark, r


def test_find_a_tune_refuses_bad_input_with_a_reason(ann, home):
    for data, files, why in (({}, None, "choose a file"), ({"abc": "K:G\nGABc", "bars": "x"}, None, "bar range"),
                             ({"abc": "K:G\nGABc", "top": "0"}, None, "between 1 and 50"),
                             ({}, {"file": ("a.txt", b"hello there", "text/plain")}, "is not a MIDI")):
        r = ann.post("/api/find", data=data, files=files)
        assert 400 <= r.status_code < 500 and why in r.text, (data, r.status_code, r.text)
    assert ann.post("/api/pieces/999999/find", json={}).status_code == 404
    assert ann.post("/api/pieces/1/find", json={"top": 99}).status_code in (400, 422)
    # a melody too short to search with: the job fails with the reason, nothing else
    before = {f for f in (home / "studio" / "uploads").rglob("*") if f.is_file()}
    j = wait(ann, ann.post("/api/find", data={"abc": "K:C\nC2"}).json()["job"])
    assert j["status"] == "failed" and "too short" in j["message"], j
    assert str(home) not in j["message"] and "uploads" not in j["message"], j  # no server path
    assert {f for f in (home / "studio" / "uploads").rglob("*") if f.is_file()} == before  # nor a failed one's
    page = ann.get("/find").text
    assert 'id="find-form"' in page and "tunes" in page



def test_studio_refuses_an_unknown_tune_source(cli, tmp_path):
    r = cli("studio", "--tunes", str(tmp_path / "nowhere"), "--port", "1")
    assert r.returncode != 0 and "--tunes" in r.stderr and "neither a bundled corpus nor a folder" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_piece_not_from_a_recording_has_no_chromagram(ann, anns_piece):
    assert "recording" not in ann.get(f"/api/pieces/{anns_piece}").json()["meta"]["analysis"]
    assert ann.get(f"/api/pieces/{anns_piece}/files/chroma.png").status_code == 404


def test_a_piece_page_names_the_nearest_composer_or_region(ann, anns_piece):
    """The bundled classifiers' nearest class: a composer for a generated chorale (Bach), a region and
    a collection for a typed folk tune; nothing for a snippet too short to judge."""
    a = ann.get(f"/api/pieces/{anns_piece}").json()["meta"]["analysis"]
    assert a["classes"]["composer"]["class"] == "Bach" and 0 < a["classes"]["composer"]["probability"] <= 1, a
    assert "Nearest composer" in ann.get(f"/pieces/{anns_piece}").text
    tune = ann.get(f"/api/pieces/{upload_abc(ann, MELODY)}").json()["meta"]["analysis"]
    assert set(tune["classes"]) == {"region", "collection"}, tune
    few = upload_abc(ann, "X:1\nM:4/4\nL:1/4\nK:G\nG A B c|]\n")
    short = ann.get(f"/api/pieces/{few}").json()
    assert short["meta"]["analysis"]["classes"] == {}



def test_no_nearest_composer_for_a_transcription_of_several_voices(chorale_like):
    """The classifiers learned scores; a transcription of several voices carries overtones and octave
    stops it heard as notes. Such a piece gets no nearest composer; the same piece as a score does."""
    from tunesmith.studio.pieces import nearest_classes

    long = chorale_like.copy()
    for tr in long.music.tracks:  # the chorale fixture repeated to 32 notes a voice
        notes = list(tr.notes)
        for k in range(1, 4):
            for n in notes:
                tr.notes.append(n.shift_time(k * 3840))
    assert set(nearest_classes(long, "four voices")) == {"composer"}
    long.meta.tags.append("transcribed")
    assert nearest_classes(long, "four voices") == {}
    assert set(nearest_classes(long, "melody")) == {"region", "collection"}  # a transcribed tune is judged


def test_find_with_a_recording_of_several_voices_warns_that_the_tune_may_be_another_voices(ann, chorale_like, tmp_path):
    from tunesmith.music.render import render_wav

    wav = render_wav(chorale_like, tmp_path / "choir.wav", sample_rate=16000)
    res = ann.post("/api/find", files={"file": ("choir.wav", wav.read_bytes(), "audio/wav")})
    r = find(ann, res, 300)
    assert r["voices_heard"] >= 0.2, r
    assert 'id="voices"' in ann.get(f"/jobs/{res.json()['job']}").text  # the job page says it


def test_find_tunes_like_a_catalogue_piece_not_yet_made_listenable(app, ann):
    """A catalogue piece that nobody has opened has no files yet: its melody is read from its
    corpus's prepared data (by content hash) and searched with; it is never its own match."""
    from tunesmith.music.corpora import corpus_of
    from tunesmith.music.dataset import open_dataset
    from tunesmith.store.models import Piece

    ds = open_dataset("folk", progress=False)
    e = next(x for x in ds.entries if len(ds.load(x).music.tracks[0].notes) >= 16)
    with db.session(app.state.url) as s:
        row = Piece(key="folk/catalogue-test", kind="corpus", title="A catalogue tune", public=True,
                    corpus=corpus_of(e["source"], "folk"), content_hash=e.get("hash") or e["id"], path=e["source"])
        s.add(row)
        s.flush()
        pid = row.id
    r = find(ann, ann.post(f"/api/pieces/{pid}/find", json={"bars": "1-4"}))
    assert r["query"] == "A catalogue tune" and r["query_notes"] >= 3 and r["bars"] == [1, 4], r
    assert all(h["id"] != (e.get("hash") or e["id"]) for h in r["hits"])
