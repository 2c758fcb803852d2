# Two commands set everything up on a fresh machine:
#   make run    create .venv, install, write the offline demo datasets, start the app
#   make test   the same set-up plus test tools, then the whole suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
DEMO_DIR ?= data/shapes
DETECTION_DEMO_DIR ?= data/shapes-detection

.PHONY: setup demo run test clean

$(VENV)/.installed: requirements.txt pyproject.toml plugins/sunnybrook/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -e . -e plugins/sunnybrook
	touch $@

PLUGINS := plugins/sunnybrook plugins/example_gradients

$(VENV)/.test-installed: $(VENV)/.installed requirements-test.txt $(wildcard $(addsuffix /pyproject.toml,$(PLUGINS)))
	$(PY) -m pip install --quiet -r requirements-test.txt $(addprefix -e ,$(PLUGINS))
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) -m digits_engine.download_data shapes $(DEMO_DIR) --if-missing
	$(PY) -m digits_engine.download_data shapes-detection $(DETECTION_DEMO_DIR) --if-missing

run: demo
	DIGITS_DEMO_DIR=$(abspath $(DEMO_DIR)) DIGITS_DETECTION_DEMO_DIR=$(abspath $(DETECTION_DEMO_DIR)) \
		$(VENV)/bin/streamlit run app/main.py --server.port $(PORT) \
		--server.maxUploadSize $${DIGITS_UPLOAD_MAX_MB:-1024}

test: $(VENV)/.test-installed
	$(PY) -m pytest

clean:
	rm -rf $(VENV) .pytest_cache
