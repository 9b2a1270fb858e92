"""The studio under load → benchmarks/results-studio.json (BENCHMARKS.md via run.py --md-only).

A real ``tunesmith studio`` server on loopback (its own $TUNESMITH_HOME, SQLite store, 2
worker processes). 50 listeners browse (discover, a piece page, the piece's JSON) and rate,
in a loop, while 10 other listeners each generate a folk tune and 10 more each look for three
tunes ("Find a tune": a few bars typed as ABC, searched over the bundled corpora; the index is
built by one search before the clock starts, from this machine's prepared corpus datasets);
bounded by a request count per listener and a time cap. Reported: page latency percentiles,
job wait (queued → started) and turnaround, find turnaround, errors, and ratings sent against
ratings stored (lost ratings).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results-studio.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def login(c: httpx.AsyncClient, name: str) -> None:
    tok = (await c.get("/api/csrf")).json()["csrf"]
    h = {"x-csrf-token": tok}
    await c.post("/api/register", json={"name": name, "password": f"{name}-pw-123"}, headers=h)
    r = await c.post("/api/login", json={"name": name, "password": f"{name}-pw-123"}, headers=h)
    c.headers["x-csrf-token"] = r.json()["csrf"]


# what the finders type: the openings of tunes everyone knows, as ABC
SNIPPETS = ("M:4/4\nL:1/4\nK:C\nE E F G|G F E D|C C D E|E3/2 D/ D2|",  # Ode to Joy
            "M:3/4\nL:1/4\nK:F\nC3/2 C/ D|C F E2|C3/2 C/ D|C G F2|",  # Happy Birthday
            "M:4/4\nL:1/4\nK:C\nC C G G|A A G2|F F E E|D D C2|")  # Twinkle, twinkle


async def find(c: httpx.AsyncClient, abc: str) -> dict:
    r = await c.post("/api/find", data={"abc": abc})
    if r.status_code != 202:
        return {"status": f"HTTP {r.status_code}", "message": r.text[:200]}
    j = r.json()["job"]
    while (st := (await c.get(f"/api/jobs/{j}")).json())["status"] not in ("done", "failed", "cancelled"):
        await asyncio.sleep(0.25)
    return st


async def run(base: str, n_listeners: int, n_generators: int, requests_each: int, cap_s: float,
              n_finders: int = 10) -> dict:
    limits = httpx.Limits(max_connections=200)
    lat: list[float] = []
    errors: list[str] = []
    ratings_ok = 0
    # a few shared pieces to browse
    seed_c = httpx.AsyncClient(base_url=base, timeout=120, limits=limits)
    await login(seed_c, "seeder")
    pieces = []
    for s in range(4):
        j = (await seed_c.post("/api/jobs/generate", json={"model": "folk", "bars": 4, "seed": s})).json()["job"]
        while (st := (await seed_c.get(f"/api/jobs/{j}")).json())["status"] not in ("done", "failed"):
            await asyncio.sleep(0.3)
        pid = st["result"]["pieces"][0]
        await seed_c.post(f"/api/pieces/{pid}/visibility", json={"public": True})
        pieces.append(pid)
    t_index = time.perf_counter()
    warm = await find(seed_c, SNIPPETS[0]) if n_finders else None  # builds the index (once per studio home)
    index_s = time.perf_counter() - t_index
    if warm is not None and warm["status"] != "done":
        errors.append(f"first find {warm['status']}: {warm.get('message')}")
    deadline = time.monotonic() + cap_s

    async def timed(c, method, url, **kw):
        t = time.perf_counter()
        r = await c.request(method, url, **kw)
        lat.append(time.perf_counter() - t)
        if r.status_code >= 400:
            errors.append(f"{method} {url} {r.status_code}")
        return r

    async def listener(i: int):
        nonlocal ratings_ok
        c = httpx.AsyncClient(base_url=base, timeout=60, limits=limits)
        await login(c, f"listener{i}")
        rng = np.random.default_rng(i)
        for _ in range(requests_each // 4):
            if time.monotonic() > deadline:
                break
            pid = int(rng.choice(pieces))
            await timed(c, "GET", "/discover")
            await timed(c, "GET", f"/pieces/{pid}")
            await timed(c, "GET", f"/api/pieces/{pid}")
            r = await timed(c, "POST", f"/api/pieces/{pid}/events", json={"kind": "rating",
                                                                          "value": int(rng.integers(1, 6))})
            ratings_ok += r.status_code == 201
        await c.aclose()

    waits, turnarounds = [], []

    async def generator(i: int):
        c = httpx.AsyncClient(base_url=base, timeout=60, limits=limits)
        await login(c, f"maker{i}")
        t0 = time.perf_counter()
        r = await c.post("/api/jobs/generate", json={"model": "folk", "bars": 8, "seed": 100 + i})
        if r.status_code != 202:
            errors.append(f"generate {r.status_code}")
            return
        j = r.json()["job"]
        while True:
            st = (await c.get(f"/api/jobs/{j}")).json()
            if st["status"] in ("done", "failed", "cancelled"):
                break
            await asyncio.sleep(0.25)
        if st["status"] != "done":
            errors.append(f"job {j} {st['status']}: {st['message']}")
        turnarounds.append(time.perf_counter() - t0)
        waits.append(st)
        await c.aclose()

    finds = []

    async def finder(i: int):
        c = httpx.AsyncClient(base_url=base, timeout=60, limits=limits)
        await login(c, f"finder{i}")
        for abc in SNIPPETS:
            if time.monotonic() > deadline:
                break
            t = time.perf_counter()
            st = await find(c, abc)
            if st["status"] != "done":
                errors.append(f"find {st['status']}: {st.get('message')}")
                continue
            finds.append((time.perf_counter() - t, st["result"]["hits"][0]["name"] if st["result"]["hits"] else None))
        await c.aclose()

    t0 = time.perf_counter()
    await asyncio.gather(*[listener(i) for i in range(n_listeners)], *[generator(i) for i in range(n_generators)],
                         *[finder(i) for i in range(n_finders)])
    wall = time.perf_counter() - t0
    await seed_c.aclose()
    return {"latencies": lat, "errors": errors, "ratings_sent_ok": ratings_ok, "turnarounds": turnarounds,
            "jobs": waits, "wall_seconds": wall, "finds": finds, "index_seconds": index_s}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--listeners", type=int, default=50)
    ap.add_argument("--generators", type=int, default=10)
    ap.add_argument("--finders", type=int, default=10, help="listeners who each look for three tunes")
    ap.add_argument("--requests", type=int, default=40, help="requests per listener (bounded)")
    ap.add_argument("--cap-seconds", type=float, default=240)
    a = ap.parse_args(argv)
    from sqlalchemy import func, select

    from tunesmith.fileio import tunesmith_home
    from tunesmith.store import db
    from tunesmith.store.models import Event, Job

    with tempfile.TemporaryDirectory() as home:
        prepared = tunesmith_home() / "datasets"
        if prepared.is_dir():  # the corpora as this machine prepared them: the first search indexes them in seconds
            (Path(home) / "datasets").symlink_to(prepared)
        port = free_port()
        env = {**os.environ, "TUNESMITH_HOME": home}
        env.pop("TUNESMITH_DB_URL", None)
        proc = subprocess.Popen([sys.executable, "-m", "tunesmith", "studio", "--port", str(port), "--workers", "2",
                                 "--queue-limit", "3"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(200):
                try:
                    if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.3)
            r = asyncio.run(run(base, a.listeners, a.generators, a.requests, a.cap_seconds, a.finders))
        finally:
            proc.terminate()
            proc.wait(30)
        url = f"sqlite:///{home}/tunesmith.db"
        with db.session(url) as s:
            stored = s.scalar(select(func.count()).select_from(Event).where(Event.kind == "rating"))
            jobs = s.execute(select(Job.created_at, Job.started_at, Job.finished_at).where(
                Job.kind == "generate", Job.params["bars"].as_integer() == 8)).all()
    lat = np.array(r["latencies"]) * 1000
    wait = [(st - cr).total_seconds() for cr, st, _ in jobs if st]
    res = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
           "date": date.today().isoformat(), "listeners": a.listeners, "generators": a.generators,
           "requests": len(lat), "wall_seconds": round(r["wall_seconds"], 1),
           "latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
           "latency_ms_p95": round(float(np.percentile(lat, 95)), 1),
           "latency_ms_max": round(float(lat.max()), 1),
           "job_wait_s_median": round(float(np.median(wait)), 1) if wait else None,
           "job_wait_s_max": round(float(max(wait)), 1) if wait else None,
           "job_turnaround_s_median": round(float(np.median(r["turnarounds"])), 1),
           "job_turnaround_s_max": round(float(max(r["turnarounds"])), 1),
           "finders": a.finders, "finds": len(r["finds"]),
           "find_first_s": round(r["index_seconds"], 1),
           "find_turnaround_s_median": round(float(np.median([f[0] for f in r["finds"]])), 2) if r["finds"] else None,
           "find_turnaround_s_max": round(float(max(f[0] for f in r["finds"])), 2) if r["finds"] else None,
           "find_top_hits": sorted({f[1] for f in r["finds"] if f[1]}),
           "errors": len(r["errors"]), "error_examples": r["errors"][:5],
           "ratings_sent": r["ratings_sent_ok"], "ratings_stored": int(stored),
           "ratings_lost": int(r["ratings_sent_ok"] - stored)}
    OUT.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
