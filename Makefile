# notewave: the two set-up commands.
#   make demo   install everything (system packages, .venv from requirements.lock, notewave), continue a
#               real chorale and turn the result into audio with the audio LM (melody conditioning)
#   make test   the same install, then lint, format check and the test suite
#   make lock   re-resolve setup.cfg's ranges in a clean temporary venv, run the suite there and, only
#               if it passes, rewrite requirements.lock
# Override the torch requirement for a GPU build: make demo TORCH=torch (the lock's torch line is then
# left out and TORCH installed with the rest). Another venv folder: make test VENV=/tmp/nw/venv

PYTHON ?= python3
VENV ?= .venv
LOCK := requirements.lock
# The torch of the lock (its CPU build); TORCH different from it replaces the lock's torch line.
TORCH_PIN := torch==2.13.0
TORCH ?= $(TORCH_PIN)
# Crash isolation: the tests run in a pytest-xdist worker process; a native crash (segfault) is
# reported as the failure of the test that was running (with faulthandler's trace in the log), the
# worker is replaced and the suite goes on. One worker: two were slower on 2 cores (README).
PYTEST_ISOLATION ?= -n 1 --max-worker-restart 20
BIN := $(VENV)/bin
SYSTEM_PACKAGES := fluidsynth libfluidsynth3 timgm6mb-soundfont
# Real audio and a second SoundFont for the tests of the codec, audio LM and transcriber
# (Wesnoth's recorded game music as OGG; FluidR3 GM), and opus-tools for the codec comparison.
# Real MIDI sources of `notewave data freedoom|mma` (Freedoom's WAD music lumps, MMA's groove library).
# More real produced music for `notewave data game-music` (Warzone 2100, UFO:AI, HyperRogue, Nexuiz) and
# TiMidity++ with freepats, the second synthesis engine the transcriber is judged on (never trained on);
# two more General MIDI SoundFonts (Csound's sf_GMbank, an OPL-3 FM bank) for the transcriber's renders.
GAME_MUSIC := warzone2100-music ufoai-music hyperrogue-music nexuiz-music
TEST_PACKAGES := $(SYSTEM_PACKAGES) wesnoth-1.16-music fluid-soundfont-gm opus-tools freedoom mma musescore3 \
	$(GAME_MUSIC) timidity freepats csound-soundfont opl3-soundfont
DEMO_PROMPT := data/jsb/test/jsb_test_000.mid
DEMO_BAND := data/examples/freedoom2_D_COUNT2.mid

.PHONY: demo test install system system-test lint lock fuzz clean

system-test: PACKAGES = $(TEST_PACKAGES)
system: PACKAGES = $(SYSTEM_PACKAGES)
system system-test:
	@missing=""; \
	for pkg in $(PACKAGES); do \
		dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
			echo "installing system packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
		else \
			echo "notewave needs the system packages:$$missing" >&2; \
			echo "install them as root:  sudo apt-get install -y --no-install-recommends$$missing" >&2; \
			exit 1; \
		fi; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(LOCK) setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip "setuptools<81" wheel
	if [ "$(TORCH)" = "$(TORCH_PIN)" ]; then \
		$(BIN)/pip install -q -r $(LOCK); \
	else \
		grep -v '^torch==' $(LOCK) > $(VENV)/requirements-without-torch.txt && \
		$(BIN)/pip install -q -r $(VENV)/requirements-without-torch.txt "$(TORCH)"; \
	fi
	$(BIN)/pip install -q --no-deps -e .
	touch $@

install: system $(VENV)/.installed

demo: install
	$(BIN)/notewave generate --prompt $(DEMO_PROMPT) --prompt-bars 4 --bars 8 --style bach --temperature 0.8 \
		--out out/demo.mid --wav out/demo.wav
	$(BIN)/notewave generate --prompt $(DEMO_BAND) --prompt-bars 8 --bars 4 --style game-rock \
		--out out/demo_band.mid --png out/demo_band.png
	$(BIN)/notewave infill out/demo_band.mid --bars 5-6 --tracks "Bass,Drums" --style game-rock \
		--out out/demo_band_infill.mid --wav out/demo_band_infill.wav
	$(BIN)/notewave generate-audio --melody out/demo.mid --text "Bach chorale, church organ" --style bach \
		--seconds 12 --cfg-coef 3 --seed 0 --out out/demo_audio_lm.wav
	@echo "demo written to $(CURDIR)/out/: demo.mid + demo.wav (a held-out chorale continued, FluidSynth"
	@echo "  render), demo_band.mid + .png (a 12-track Freedoom piece continued by 4 bars), demo_band_infill.mid"
	@echo "  + .wav (its bass and drums of bars 5-6 regenerated), demo_audio_lm.wav (the audio LM following"
	@echo "  the chorale continuation's melody)"

lint: system-test install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# NOTEWAVE_FUZZ_REPORT: where the fuzz tests count their cases (printed at the end of the run).
test: lint
	report=$$(mktemp -d) && NOTEWAVE_FUZZ_REPORT=$$report $(BIN)/python -m pytest -q $(PYTEST_ISOLATION); \
	status=$$?; rm -rf "$$report"; exit $$status

# Many thousands of fuzz cases (fresh random draws each run; FUZZ_SCALE x the suite's counts).
FUZZ_SCALE ?= 25
fuzz: system-test install
	report=$$(mktemp -d) && NOTEWAVE_FUZZ_REPORT=$$report NOTEWAVE_FUZZ_RANDOM=1 NOTEWAVE_FUZZ_SCALE=$(FUZZ_SCALE) \
		$(BIN)/python -m pytest -q $(PYTEST_ISOLATION) tests/reliability/test_fuzz_inputs.py; \
	status=$$?; rm -rf "$$report"; exit $$status

# The lock: pip freeze of a clean venv (torch + notewave[dev] resolved from setup.cfg's ranges) that
# passed the whole test suite; written to a temporary file and moved into place only then.
lock: system-test
	set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/pip" install -q --upgrade pip "setuptools<81" wheel; \
	"$$tmp/venv/bin/pip" install -q "$(TORCH_PIN)"; \
	"$$tmp/venv/bin/pip" install -q -e ".[dev]"; \
	"$$tmp/venv/bin/python" -m pytest -q -p no:cacheprovider $(PYTEST_ISOLATION); \
	{ echo "# notewave's pinned environment, written by 'make lock' (pip freeze of a clean venv that"; \
	  echo "# passed the test suite; notewave itself is installed with 'pip install --no-deps -e .')."; \
	  echo "# Python $$("$$tmp/venv/bin/python" -c 'import platform; print(platform.python_version())'), $$(uname -m). Do not edit by hand: run 'make lock'."; \
	  "$$tmp/venv/bin/pip" freeze --all --exclude-editable | grep -v '^pip=='; } > "$$tmp/$(LOCK)"; \
	grep -q '^torch==' "$$tmp/$(LOCK)"; \
	cp "$$tmp/$(LOCK)" $(LOCK).tmp && mv $(LOCK).tmp $(LOCK); \
	echo "$(LOCK) written ($$(grep -c '==' $(LOCK)) packages)"

clean:
	rm -rf out .pytest_cache .ruff_cache
