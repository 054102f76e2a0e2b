# Every target builds .venv itself on first use, from requirements.lock.
# The system's Python 3.11 where there is one: an interpreter outside /root, so that hardened
# mode's unprivileged kernel user can run it too.
PYTHON ?= $(firstword $(wildcard /usr/bin/python3.11) python3)
VENV := .venv
PY := $(VENV)/bin/python
# Two stamps: .installed once the pinned requirements are in, .editable once the grader itself is
# (editable: .venv/bin/dask, python and resnet-grader import this checkout from any folder, with no
# PYTHONPATH). Targets depend on $(STAMP), the second: a .venv made before it existed only gets the latter.
DEPS := $(VENV)/.installed
STAMP := $(VENV)/.editable

SUBMISSION ?= examples/example_submission.ipynb
OUT ?= results
PYTEST_ARGS ?=

.PHONY: grade expected test test-fast data train clean bwrap

$(DEPS): requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $(DEPS)

# Offline, with the venv's own setuptools; its build files go to a temporary folder, none into the tree.
$(STAMP): $(DEPS) pyproject.toml
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --no-index -e .
	touch $(STAMP)

## grade SUBMISSION (a notebook, several, or a folder of them) into OUT/results.json
grade: $(STAMP)
	@scripts/install-bwrap.sh || echo "warning: bubblewrap is not installed: student code will be isolated less (README: threat model)" >&2
	$(PY) -m grader grade $(SUBMISSION) --out $(OUT)

## install bubblewrap, the sandbox of the students' kernels (Debian's `bubblewrap`); no-op when present
bwrap:
	scripts/install-bwrap.sh

## regenerate grader/expected/ from solution/
expected: $(STAMP)
	$(PY) -m grader expected

## the whole test suite, slow tests included (what CI runs); `browser` installs Chromium for the HTML test,
## `bwrap` bubblewrap for the isolation tests
test: $(STAMP) browser bwrap
	$(PY) -m pytest $(PYTEST_ARGS)

## the quick tests only
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

## write a synthetic SIGNS set into data/signs/ unless the real files are there
data: $(STAMP)
	$(PY) -m signs.make_data data/signs

## train the reference model on data/signs/
train: $(STAMP) data
	$(PY) -m solution.train --data data/signs

clean:
	rm -rf $(VENV) results runs .pytest_cache

# Targets of other parts of the project (release, gradescope, bench, ...), one file each.
-include mk/*.mk
