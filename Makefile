# Two commands: `make run` and `make test`. Both set up what they need first:
# the engines from Debian packages when missing, a virtualenv, the package.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PYTHON ?= python3
APT_PACKAGES := redis-server redis-tools memcached libmemcached-tools sasl2-bin nftables chromium chromium-driver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup engines venv run test lint typecheck layers unit coverage-doc clean

setup: engines venv

engines:
	@missing=""; \
	for bin in redis-server redis-cli memcached memcslap saslpasswd2 nft chromium chromedriver; do \
	  command -v $$bin >/dev/null 2>&1 || missing="yes"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing engines: $(APT_PACKAGES)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

run: setup
	$(BIN)/cacheyard up

lint: venv
	$(BIN)/ruff check src tests bench scripts examples
	$(BIN)/ruff format --check src tests bench scripts examples

typecheck: venv
	$(BIN)/mypy
	MYPYPATH=src $(BIN)/mypy --strict examples/shop
	for dir in tests/*/; do MYPYPATH=src:tests/support:$$dir $(BIN)/mypy --strict --explicit-package-bases tests/conftest.py $$dir || exit; done

layers: venv
	$(BIN)/lint-imports

unit: venv
	$(BIN)/pytest

test: setup lint typecheck layers
	$(BIN)/pytest

coverage-doc: venv
	$(PY) scripts/gen_coverage.py > docs/coverage.md

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
