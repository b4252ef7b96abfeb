# notewave: the two set-up commands.
#   make demo   install everything (system packages, .venv, CPU torch, notewave), continue a real chorale
#               and turn the result into audio with the audio LM (melody conditioning)
#   make test   the same install, then lint, format check and the test suite
# Override the torch requirement for a GPU build: make demo TORCH=torch

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
SYSTEM_PACKAGES := fluidsynth libfluidsynth3 timgm6mb-soundfont
# Real audio and a second SoundFont for the tests of the codec, audio LM and transcriber
# (Wesnoth's recorded game music as OGG; FluidR3 GM), and opus-tools for the codec comparison.
TEST_PACKAGES := $(SYSTEM_PACKAGES) wesnoth-1.16-music fluid-soundfont-gm opus-tools
DEMO_PROMPT := data/jsb/test/jsb_test_000.mid

.PHONY: demo test install system system-test lint clean

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

$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip "setuptools<81" wheel
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: system $(VENV)/.installed

demo: install
	$(BIN)/notewave generate --prompt $(DEMO_PROMPT) --prompt-bars 4 --bars 8 --style bach --temperature 0.8 \
		--out out/demo.mid --wav out/demo.wav
	$(BIN)/notewave generate-audio --melody out/demo.mid --text "Bach chorale, church organ" --style bach \
		--seconds 12 --cfg-coef 3 --seed 0 --out out/demo_audio_lm.wav
	@echo "demo written: $(CURDIR)/out/demo.mid, $(CURDIR)/out/demo.wav (FluidSynth render) and"
	@echo "  $(CURDIR)/out/demo_audio_lm.wav (the audio LM following the continuation's melody)"

lint: system-test install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf out .pytest_cache .ruff_cache
