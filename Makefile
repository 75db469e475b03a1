# Two commands do all set-up on a fresh machine (Python 3 + pip + make):
#   make demo   - create .venv, install, run examples/notebooks/quickstart.ipynb headlessly
#   make test   - create .venv, install everything the tests need, run the whole suite
#   make mutate - plant known bugs one at a time and check the tests catch each
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.glm-magic-installed

.PHONY: demo test bench lint typecheck venv clean mutate labextension wheel

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,cli]'
	touch $(STAMP)

venv: $(STAMP)

# The notebook bridge (JupyterLab 4 / Notebook 7): npm install + build when stale, linked into the venv.
labextension: $(STAMP)
	bash scripts/labextension-build.sh

# A wheel with the prebuilt bridge inside (dist/).
wheel: labextension
	$(PY) -m pip install --quiet build
	$(PY) -m build --wheel

demo: $(STAMP)
	$(PY) examples/demo.py

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy

test: $(STAMP)
	bash scripts/browser-setup.sh
	bash scripts/labextension-build.sh
	bash scripts/peer-setup.sh >/dev/null
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# Plants a curated list of bugs one at a time and checks the tests catch each (a few minutes).
mutate: $(STAMP)
	$(PY) scripts/mutate.py

clean:
	rm -rf $(VENV) .peer-venv build dist glm_magic/labextension labextension/lib labextension/node_modules labextension/tsconfig.tsbuildinfo test-artifacts .pytest_cache .mypy_cache .ruff_cache
