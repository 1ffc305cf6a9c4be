# The two commands of the README:  make demo  (the main job)  and  make test.
# Both create .venv on first use; later runs reuse it (re-installed only when
# pyproject.toml changes).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
READY  := $(VENV)/.installed

.PHONY: demo test bench release venv clean

# The instructor's flow on the bundled sample class: release, grade, feedback, grades.csv.
demo: $(READY)
	$(PY) -m autograder.demo

# pytest exits 5 when it collected nothing: that is a failure here too.
test: $(READY)
	$(PY) -m pytest

bench: $(READY)
	$(PY) benchmarks/data_pipeline.py
	$(PY) benchmarks/training_speed.py
	$(PY) benchmarks/autograde.py

# Regenerate the student notebooks from solutions/ (commit the result).
release: $(READY)
	$(PY) -m autograder release cgan
	$(PY) -m autograder release netviz

venv: $(READY)

$(READY): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: python3 not found; install Python 3.11" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,grading]'
	touch $(READY)

clean:
	rm -rf out .pytest_cache
