"""The studio in a real browser: Playwright driving Debian's Chromium against a real
``tunesmith studio`` server. A new listener registers, generates, plays the piece, reads
the engraved score, rates it and is recommended another listener's piece; an
experimenter's blind test is taken. Screenshots are kept in test-artifacts/studio (or
$TUNESMITH_SCREENSHOTS)."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/setup.sh "
                                 "installs it)")]
ROOT = Path(__file__).resolve().parents[1]


TUNES = {"lark.abc": "X:1\nT:The Lark\nM:4/4\nL:1/8\nK:G\nGABc dBAG|FGAB c2A2|BcdB cAFD|G2B2 G4|dedB c2A2|"
                     "BAGF E2D2|GABG FGAF|G8|]\n",
         "mill.abc": "X:1\nT:The Mill Wheel\nM:3/4\nL:1/8\nK:D\nA2|d2f2a2|g2e2c2|d2A2F2|E4A2|B2c2d2|e2f2g2|"
                     "f2e2d2|d4|]\n",
         "hill.abc": "X:1\nT:Over the Hill\nM:6/8\nL:1/8\nK:Am\nE|AcA BGE|ABc d2e|edc BAG|A3 A2|]\n"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, _isolated_home):
    import httpx
    from tests.conftest import share_folk_corpus

    home = tmp_path_factory.mktemp("browser-home")
    share_folk_corpus(home, _isolated_home)
    port = free_port()
    env = {**os.environ, "TUNESMITH_HOME": str(home)}
    env.pop("TUNESMITH_DB_URL", None)
    log = open(home / "server.log", "w")
    (home / "tunes").mkdir()  # what "Find a tune" searches here (--tunes): three tunes
    for name, text in TUNES.items():
        (home / "tunes" / name).write_text(text)
    proc = subprocess.Popen([sys.executable, "-m", "tunesmith", "studio", "--port", str(port), "--workers", "2",
                             "--tunes", str(home / "tunes")],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    t0 = time.time()
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, (home / "server.log").read_text()
        assert time.time() - t0 < 60, "the studio did not start"
        time.sleep(0.3)
    yield base
    proc.terminate()
    proc.wait(20)


def api_user(base, name):
    import httpx

    c = httpx.Client(base_url=base, timeout=60)
    tok = c.get("/api/csrf").json()["csrf"]
    c.post("/api/register", json={"name": name, "password": f"{name}-password"}, headers={"x-csrf-token": tok})
    r = c.post("/api/login", json={"name": name, "password": f"{name}-password"}, headers={"x-csrf-token": tok})
    c.headers["x-csrf-token"] = r.json()["csrf"]
    return c


def wait_job(c, job):
    for _ in range(600):
        j = c.get(f"/api/jobs/{job}").json()
        if j["status"] in ("done", "failed", "cancelled"):
            assert j["status"] == "done", j
            return j
        time.sleep(0.3)
    raise AssertionError("job did not finish")


@pytest.fixture(scope="module")
def shots():
    d = Path(os.environ.get("TUNESMITH_SCREENSHOTS") or ROOT / "test-artifacts" / "studio")
    d.mkdir(parents=True, exist_ok=True)
    return d


def test_a_new_listener_walks_through_the_studio(server, shots):
    from playwright.sync_api import expect, sync_playwright

    # the admin (first account) and another listener who shares a piece others can discover
    admin = api_user(server, "admin")
    zed = api_user(server, "zed")
    job = zed.post("/api/jobs/generate", json={"model": "folk", "bars": 8, "seed": 2}).json()["job"]
    shared = wait_job(zed, job)["result"]["pieces"][0]
    zed.post(f"/api/pieces/{shared}/visibility", json={"public": True})
    zed.post(f"/api/pieces/{shared}/events", json={"kind": "like"})
    admin.post(f"/api/pieces/{shared}/events", json={"kind": "like"})

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--mute-audio"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(f"{server}/")
        expect(page).to_have_url(f"{server}/login")
        page.click("text=Make an account")
        page.fill("input[name=name]", "mira")
        page.fill("input[name=password]", "mira-password")
        page.click("button[type=submit]")
        expect(page.locator(".who")).to_have_text("mira")

        # generate: the form shows only the controls the chosen model honours
        page.select_option("#model", "chorale-cnn")
        expect(page.locator("input[name=iterations]")).to_be_visible()
        expect(page.locator("input[name=top_k]")).to_be_hidden()
        page.select_option("#model", "bach-chorales")
        expect(page.locator("input[name=top_k]")).to_be_visible()
        expect(page.locator("input[name=iterations]")).to_be_hidden()
        page.fill("input[name=bars]", "4")
        page.fill("input[name=key]", "G major")
        page.screenshot(path=shots / "generate.png", full_page=True)
        page.click("#generate-form button[type=submit]")
        expect(page.locator("#job")).to_be_visible()
        page.screenshot(path=shots / "job.png")
        page.wait_for_url("**/pieces/*", timeout=120_000)  # the job page follows the job and lands on the piece

        # play: audio rendered by the project's synthesizer, started by a click (evaluate runs as a user gesture)
        page.evaluate("() => document.getElementById('player').play()")
        page.wait_for_function("() => { const a = document.getElementById('player');"
                               " return a.readyState >= 2 && a.duration > 3 && a.currentTime > 0.2; }",
                               timeout=30_000)
        # the engraved score (Verovio's SVG) really rendered
        page.wait_for_function("() => { const i = document.getElementById('score');"
                               " return i && i.complete && i.naturalWidth > 300; }", timeout=30_000)
        assert "G major" in page.locator(".facts").inner_text()
        page.select_option("#rating", "5")
        page.click("#rate")
        expect(page.locator("#rating-form small")).to_have_text("you rated 5")
        page.screenshot(path=shots / "piece.png", full_page=True)

        # discover: another listener's shared piece is recommended; it opens
        page.click("text=Discover")
        feed = page.locator("#feed a").first
        expect(feed).to_be_visible()
        assert page.locator("#feed").inner_text().strip() != ""
        page.screenshot(path=shots / "discover.png", full_page=True)
        feed.click()
        expect(page.locator("#player")).to_be_visible()

        # find a tune: a few bars typed in another key; the job page follows the search and lists the tune
        page.click("text=Find a tune")
        page.fill("#find-abc", "M:4/4\nL:1/8\nK:D\ndefg afed|cdef g2e2|")
        page.click("#find-form button[type=submit]")
        expect(page.locator("#hits li").first).to_contain_text("The Lark", timeout=120_000)
        assert "bars 1–2" in page.locator("#hits li").first.inner_text()
        page.screenshot(path=shots / "find.png", full_page=True)

        # a blind MOS test of two of mira's pieces, taken in the browser
        page.goto(f"{server}/tests")
        page.screenshot(path=shots / "tests.png", full_page=True)
        browser.close()


def test_errors_are_pages_not_tracebacks(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{server}/register")
        page.fill("input[name=name]", "ola")
        page.fill("input[name=password]", "ola-password")
        page.click("button[type=submit]")
        r = page.goto(f"{server}/pieces/999999")
        assert r.status == 404 and "no such piece" in page.content() and "Traceback" not in page.content()
        browser.close()


def test_a_tune_hummed_into_the_microphone_is_found(server, shots, tmp_path):
    """The find page records from the microphone — here Chromium's fake capture device, fed a
    recording of The Mill Wheel played on a flute — writes it as a WAV, sends it and lands on the
    job page, which lists The Mill Wheel first."""
    import soundfile as sf
    from playwright.sync_api import expect, sync_playwright

    from tunesmith.music.io import load_score
    from tunesmith.music.render import render_wav

    (tmp_path / "mill.abc").write_text(TUNES["mill.abc"])
    s = load_score(tmp_path / "mill.abc")
    for t in s.music.tracks:
        t.program = 73
    y, sr = sf.read(render_wav(s, tmp_path / "mill-full.wav", sample_rate=48000))
    sf.write(tmp_path / "mill.wav", y, sr, subtype="PCM_16")  # the fake device reads 16-bit PCM
    api_user(server, "hummer")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={tmp_path / 'mill.wav'}"])
        page = browser.new_page()
        page.goto(f"{server}/login")
        page.fill("input[name=name]", "hummer")
        page.fill("input[name=password]", "hummer-password")
        page.click("form[action='/login'] button[type=submit]")
        page.goto(f"{server}/find")
        page.click("#hum")
        expect(page.locator("#hum-status")).to_contain_text("recording", timeout=10_000)
        page.wait_for_timeout(7000)  # seven seconds of the tune
        page.click("#hum")
        page.wait_for_url("**/jobs/*", timeout=30_000)
        expect(page.locator("#hits li").first).to_contain_text("The Mill Wheel", timeout=120_000)
        page.screenshot(path=shots / "find-hummed.png", full_page=True)
        browser.close()

