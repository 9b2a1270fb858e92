"""Hardening figures (issue #19) → benchmarks/results-hardening.json (BENCHMARKS.md via run.py).

- the crafted corpus (tests/hostile.py) through every command that reads a file, each in its
  own process with a time limit: cases tried, tracebacks, hangs, the worst peak memory;
- the coverage-guided fuzzer (fuzz/fuzz_readers.py, when atheris is installed) for a while;
- ``render`` peak memory for 1, 10 and 60 minutes of 8 tracks (block rendering), beside
  the whole-array rendering it replaced (pretty_midi) for 1 and 10 minutes;
- kill -9 points of data prepare / generate / evaluate / audio dataset, and runs that
  differ from an uninterrupted one afterwards;
- pairs of concurrent ``data prepare`` runs of one dataset, and their errors.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results-hardening.json"
LIMIT_S = 300  # a command past this is a hang

# runs tunesmith's CLI and reports the peak resident memory of it and its worker processes
WRAP = ("import atexit, resource, sys\n"
        "def peak():\n"
        "    r = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
        " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "    print(f'MAXRSS_KB={r}', file=sys.stderr)\n"
        "atexit.register(peak)\n"
        "from tunesmith.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n")


def run(args: list[str], env: dict) -> dict:
    t0 = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-c", WRAP, *args], env=env, capture_output=True, text=True,
                           timeout=LIMIT_S)
    except subprocess.TimeoutExpired:
        return {"rc": None, "hang": True, "seconds": LIMIT_S, "rss_mb": None, "traceback": False}
    m = re.search(r"MAXRSS_KB=(\d+)", r.stderr)
    err = [ln for ln in r.stderr.splitlines() if not ln.startswith("MAXRSS_KB=")]
    return {"rc": r.returncode, "hang": False, "seconds": round(time.perf_counter() - t0, 2),
            "rss_mb": round(int(m.group(1)) / 1024, 1) if m else None, "traceback": "Traceback" in r.stderr,
            "error_lines": sum(ln.startswith("tunesmith: error:") for ln in err)}


def crafted(env: dict, work: Path) -> dict:
    from tests.hostile import write_cases
    from tests.test_hostile import _commands

    from tunesmith.music.corpora import corpus_files

    ref = work / "reference"
    ref.mkdir()
    for f in corpus_files("bach-chorales")[:4]:
        (ref / f.name).write_bytes(f.read_bytes())
    rows = []
    for name, path, expect in write_cases(work / "files"):
        for command, argv in _commands(path, work / "out" / re.sub(r"\W+", "-", name), ref).items():
            r = run(argv, env)
            rows.append({"case": name, "command": command, "expect": expect, **r})
            print(f"{name:38} {command:18} rc={r['rc']} {r['seconds']:6.1f} s {r['rss_mb']} MB", flush=True)
    worst = max(rows, key=lambda r: r["rss_mb"] or 0)
    return {"cases": len({r["case"] for r in rows}), "runs": len(rows),
            "tracebacks": sum(r["traceback"] for r in rows), "hangs": sum(r["hang"] for r in rows),
            "bad_exit": sum(r["rc"] not in (0, 2) for r in rows if not r["hang"]),
            "errors_not_one_line": sum(r["rc"] == 2 and r["error_lines"] != 1 for r in rows),
            "refused_as_expected": sum(r["rc"] == 2 for r in rows if r["expect"] == "refused"
                                       and r["command"] != "evaluate"),
            "expected_refusals": sum(r["expect"] == "refused" and r["command"] != "evaluate" for r in rows),
            "peak_rss_mb": worst["rss_mb"], "peak_case": f"{worst['case']} ({worst['command']})",
            "slowest_s": max(r["seconds"] for r in rows)}


def fuzz(seconds: int) -> dict | None:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return None
    findings = ROOT / "fuzz" / "findings"  # kept (not committed) so that a finding can be reproduced
    findings.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as new:
        corpus = [str(ROOT / "fuzz" / "corpus" / k) for k in ("midi", "musicxml", "abc", "kern")]
        r = subprocess.run([sys.executable, str(ROOT / "fuzz" / "fuzz_readers.py"), new, *corpus,
                            f"-max_total_time={seconds}", "-timeout=60", "-rss_limit_mb=2048", "-max_len=65536",
                            f"-artifact_prefix={findings}/"], capture_output=True, text=True, cwd=new)
    runs = [int(x) for x in re.findall(r"^#(\d+)\s", r.stderr, re.M)]
    m = re.search(r"Done (\d+) runs in (\d+) second", r.stderr)
    kinds = re.findall(r"ERROR: libFuzzer: ([\w-]+)", r.stderr) + re.findall(r"(Uncaught Python exception): ", r.stderr)
    return {"seconds": seconds, "runs": int(m.group(1)) if m else (max(runs) if runs else None),
            "findings": 0 if r.returncode == 0 else 1, "finding": kinds[:2], "exit": r.returncode,
            "tail": r.stderr[-1500:] if r.returncode else ""}


def long_piece(minutes: float, path: Path, tracks: int = 8) -> Path:
    import symusic

    s = symusic.Score(480)
    s.tempos.append(symusic.Tempo(0, 120.0))
    beats = int(minutes * 120)
    for k in range(tracks):
        t = symusic.Track(program=[0, 24, 40, 41, 42, 56, 73, 19][k % 8])
        for b in range(beats):
            t.notes.append(symusic.Note(b * 480, 400, 48 + (k * 5 + b * 7) % 36, 80))
        s.tracks.append(t)
    s.dump_midi(str(path))
    return path


OLD_RENDER = ("import io, sys, resource, numpy as np, pretty_midi, soundfile as sf\n"
              "pm = pretty_midi.PrettyMIDI(sys.argv[1])\n"
              "a = pm.fluidsynth(fs=44100)\n"
              "sf.write(sys.argv[2], (a / np.abs(a).max() * 0.9).astype(np.float32), 44100, subtype='PCM_16')\n"
              "print(f'MAXRSS_KB={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}', file=sys.stderr)\n")


def render_memory(env: dict, work: Path) -> dict:
    out = {}
    for minutes in (1, 10, 60):
        mid = long_piece(minutes, work / f"long-{minutes}.mid")
        r = run(["render", str(mid), "--out", str(work / f"long-{minutes}.wav"), "--max-minutes", "200"], env)
        out[f"{minutes}"] = {"rss_mb": r["rss_mb"], "seconds": r["seconds"], "rc": r["rc"]}
        (work / f"long-{minutes}.wav").unlink(missing_ok=True)
        if minutes <= 10:
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, "-c", OLD_RENDER, str(mid), str(work / "old.wav")],
                               capture_output=True, text=True, timeout=1800)
            m = re.search(r"MAXRSS_KB=(\d+)", p.stderr)
            out[f"{minutes}"]["before_rss_mb"] = round(int(m.group(1)) / 1024, 1) if m else None
            out[f"{minutes}"]["before_seconds"] = round(time.perf_counter() - t0, 2)
        print(f"render {minutes} min: {out[f'{minutes}']}", flush=True)
    return out


def kill_points(work: Path) -> dict:
    from tests import test_kill as tk

    tried, differ = 0, 0
    for name in ("data prepare", "generate", "evaluate", "audio dataset"):
        tmp = work / re.sub(r"\W+", "-", name)
        tmp.mkdir()
        env, src, gen = tk._setup(tmp)
        first, again, skip = tk._commands(src, gen, tmp / "straight")[name]
        took = tk._run(first, env)
        want = tk._tree(tmp / "straight", skip)
        first, again, _ = tk._commands(src, gen, tmp / "killed")[name]
        for k, frac in enumerate((0.2, 0.4, 0.6, 0.8)):
            tried += tk._run(first if k == 0 else again, env, kill_after=max(0.5, frac * took)) is None
        tk._run(again, env)
        differ += tk._tree(tmp / "killed", skip) != want
        print(f"kill points: {name} done", flush=True)
    return {"kill_points": tried, "commands": 4, "runs_differing": differ}


def concurrent_prepares(work: Path, trials: int = 3) -> dict:
    from tunesmith.music.corpora import corpus_files

    src = work / "src"
    src.mkdir()
    for f in corpus_files("bach-chorales")[:40]:
        (src / f.name).write_bytes(f.read_bytes())
    errors = 0
    for t in range(trials):
        env = dict(os.environ, TUNESMITH_HOME=str(work / f"home-{t}"))
        cmd = [sys.executable, "-m", "tunesmith", "data", "prepare", str(src), "--out", str(work / f"ds-{t}"),
               "--quiet", "--workers", "2"]
        procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)]
        errors += sum(p.wait(timeout=600) != 0 for p in procs)
    return {"trials": trials, "processes": 2 * trials, "errors": errors}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fuzz-seconds", type=int, default=120)
    ap.add_argument("--only", help="comma list of: crafted, fuzz, render, kill, concurrent")
    a = ap.parse_args()
    parts = set((a.only or "crafted,fuzz,render,kill,concurrent").split(","))
    res = json.loads(OUT.read_text()) if OUT.is_file() else {}
    res.update({"date": date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores"})
    with tempfile.TemporaryDirectory(prefix="tunesmith-hardening-") as tmp:
        work = Path(tmp)
        env = dict(os.environ, TUNESMITH_HOME=str(work / "home"))
        if "crafted" in parts:
            (work / "crafted").mkdir()
            res["crafted"] = crafted(env, work / "crafted")
        if "fuzz" in parts:
            res["fuzz"] = fuzz(a.fuzz_seconds)
        if "render" in parts:
            (work / "render").mkdir()
            res["render"] = render_memory(env, work / "render")
        if "kill" in parts:
            (work / "kill").mkdir()
            res["kill"] = kill_points(work / "kill")
        if "concurrent" in parts:
            (work / "concurrent").mkdir()
            res["concurrent"] = concurrent_prepares(work / "concurrent")
    OUT.write_text(json.dumps(res, indent=1))
    print(json.dumps({k: v for k, v in res.items()}, indent=1))


if __name__ == "__main__":
    main()
