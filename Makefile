# make demo: install, train on the shared photos, recommend for sample photos.
# make test: install, run the tests.      make bench: install, run the benchmarks.
# make serve: install, train if there is no model yet, serve the page on http://127.0.0.1:8000/
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LFW ?= ../shared/datasets/lfw-photos/images
SAMPLES ?= $(LFW)/Thaksin_Shinawatra_0005.jpg $(LFW)/Yusuf_Misbac_0001.jpg

.PHONY: install install-test browser demo serve test bench clean

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .  # features/ importable from anywhere: Dask scheduler, workers, notebooks
	$(BIN)/python -m compileall -q features  # bytecode now: recommend.py starts 0.1 s faster
	touch $@

$(VENV)/.installed-test: requirements-test.txt $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $@

# artifacts/demo is the demo's own: emptied first, as copies made before they carried
# recommend.py's mark are refused (not its copies) and would fail the demo once trained
demo: install
	$(BIN)/python train.py
	rm -rf artifacts/demo
	$(BIN)/python recommend.py --annotate artifacts/demo $(SAMPLES)

serve: install artifacts/model.joblib
	$(BIN)/python serve.py

artifacts/model.joblib: | $(VENV)/.installed
	$(BIN)/python train.py

# The browser test drives Debian's chromium and chromedriver: installed here where apt-get
# can (as root); elsewhere this says how, and that test is skipped.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && apt-get install -y -qq chromium chromium-driver) >/dev/null \
		|| echo "make: could not install chromium; the browser test will be skipped"; \
	else echo "make: no chromium; install it with: sudo apt-get install chromium chromium-driver" \
		"(the browser test is skipped without it)"; fi

test: install-test browser
	$(BIN)/python -m pytest -q

# The reference pipeline: face_recognition without its dependencies (they would build dlib
# from source); it uses the prebuilt dlib and the model files already installed, which
# import pkg_resources (gone from setuptools 82).
bench: install-test
	$(BIN)/python -m pip install --quiet --no-deps face_recognition==1.3.0 "setuptools<82"
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/detection.py  # every detector candidate: benchmarks/detection_results.json
	$(BIN)/python benchmarks/wild_dev.py --json benchmarks/wild_dev_results.json --scores benchmarks/wild_dev_scores.csv  # end to end in the wild
	$(BIN)/python benchmarks/lfw_by_eye.py --json benchmarks/lfw_by_eye_results.json --scores benchmarks/lfw_by_eye_scores.csv  # end to end on news photos labelled by eye
	$(BIN)/python benchmarks/worker_death.py  # how long a worker's death holds the web server
	$(BIN)/python benchmarks/skin_tone.py  # out-of-fold errors by skin tone: benchmarks/skin_tone.json
	$(BIN)/python benchmarks/rolled_faces.py --without  # tilted heads: landmarks and decisions against upright

clean:
	rm -rf $(VENV) artifacts/*.joblib artifacts/*.json artifacts/*.csv artifacts/*.png artifacts/feature-cache
