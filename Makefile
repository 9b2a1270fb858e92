VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tunesmith-installed

.PHONY: setup demo test bench lint clean studio fuzz

$(STAMP): pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tunesmith generate --model bach-chorales --bars 8 --seed 1 --out out/chorale --force
	$(VENV)/bin/tunesmith generate --model folk --bars 16 --seed 1 --out out/folk --force
	@echo "demo: open out/chorale and out/folk (MIDI, WAV, MusicXML, PNG)"

studio: $(STAMP)
	$(VENV)/bin/tunesmith studio

# One pytest session: what a session prepares once (the folk and chorale datasets, the copy
# guard, compiled search kernels) is then not prepared twice. `-m "not slow"` runs the quick part.
test: $(STAMP)
	$(PY) -m pytest -q tests

# the robustness table (benchmarks/mir.py --only robust) renders with a second SoundFont, Debian's
# FluidR3_GM; without it that row is left out
bench: $(STAMP)
	@[ -e /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || { echo "bench: installing fluid-soundfont-gm (Debian)"; \
		S=$$([ "$$(id -u)" -eq 0 ] || echo sudo); { $$S apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$S apt-get install -y -qq fluid-soundfont-gm >/dev/null; } || \
		echo "bench: fluid-soundfont-gm could not be installed; the robustness table leaves out another SoundFont"; }
	$(PY) benchmarks/polyphonic.py
	$(PY) benchmarks/eval_suite.py
	$(PY) benchmarks/quality.py
	$(PY) benchmarks/style.py
	$(PY) benchmarks/audio.py
	$(PY) benchmarks/mir.py
	$(PY) benchmarks/recommend.py
	$(PY) benchmarks/studio_load.py
	$(PY) benchmarks/hardening.py
	$(PY) benchmarks/run.py

# coverage-guided fuzzing of the readers (issue #19); FUZZ_SECONDS=600 by default
FUZZ_SECONDS ?= 600
fuzz: $(STAMP)
	$(PY) -m pip install -q "atheris>=2.3"
	$(PY) -m pytest -q tests/test_fuzz.py tests/test_hostile.py
	mkdir -p fuzz/corpus/new
	$(PY) fuzz/fuzz_readers.py fuzz/corpus/new fuzz/corpus/midi fuzz/corpus/musicxml fuzz/corpus/abc fuzz/corpus/kern -max_total_time=$(FUZZ_SECONDS) -timeout=60 \
		-rss_limit_mb=2048 -max_len=65536

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf out build *.egg-info
