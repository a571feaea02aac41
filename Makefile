# bankflow: `make demo` runs the whole product, `make test` the tests. Both build the
# environment from uv.lock first (only python3 and make are needed on the machine).
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .bankflow/tools
UV := $(TOOLS)/bin/uv
VENV := .venv
SYNCED := $(VENV)/.synced
MANIFEST := dbt_project/target/manifest.json
DBT_SOURCES := $(shell find dbt_project/models dbt_project/macros dbt_project/snapshots dbt_project/tests dbt_project/seeds -type f 2>/dev/null) dbt_project/dbt_project.yml

export UV_PYTHON_DOWNLOADS := never
export GX_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: setup demo test ui docs full-refresh lint bench bench-extract bench-parse bench-sftp bench-dbt bench-accuracy bench-recon bench-quality bench-export clean

setup: $(SYNCED) $(MANIFEST)

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(SYNCED): uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

# The dbt manifest is built here, before Dagster loads definitions, never at import time.
$(MANIFEST): $(SYNCED) $(DBT_SOURCES)
	cd dbt_project && ../$(VENV)/bin/dbt parse --profiles-dir . --project-dir . --quiet
	touch $@

demo: setup
	$(VENV)/bin/bankflow demo

# Two workers (pytest-xdist) for the CI machine's two cores; TEST_WORKERS=0 runs in one process.
# Against a configured server (BANKFLOW_DATABASE_URL) one process: two workers there failed in
# a way not yet explained (docs: README, Development).
TEST_WORKERS ?= $(if $(BANKFLOW_DATABASE_URL),0,2)

test: setup
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

ui: setup
	$(VENV)/bin/bankflow ui

# dbt's documentation site (every model, column, test, seed and exposure, with lineage and the
# warehouse's column types) into dbt_project/target/. dbt reads the catalog from the warehouse the
# demo uses: BANKFLOW_DATABASE_URL, else the embedded server, which stays up while dbt runs.
# DBT_ARGS: the dbt command to run there.
DBT_ON_WAREHOUSE := import os, shlex, subprocess; \
	from bankflow_cli.runtime import prepare_runtime; \
	from resources.settings import load_settings; \
	from resources.warehouse.database import dbt_env; \
	url = prepare_runtime(load_settings()).database_url; \
	dbt = ["../$(VENV)/bin/dbt", *shlex.split(os.environ["DBT_ARGS"]), "--profiles-dir", ".", "--project-dir", "."]; \
	raise SystemExit(subprocess.run(dbt, cwd="dbt_project", env={**os.environ, **dbt_env(url)}).returncode)

docs: setup
	DBT_ARGS="docs generate" $(VENV)/bin/python -c '$(DBT_ON_WAREHOUSE)'
	@echo "dbt docs: $(CURDIR)/dbt_project/target/index.html"
	@echo "serve them: cd dbt_project && ../$(VENV)/bin/dbt docs serve --port 8580 --profiles-dir . (http://127.0.0.1:8580)"

# Every dbt model rebuilt from all of raw (after a change of the rules or the transfer settings:
# incremental runs leave older rows as they were built), with the seeds and tests.
full-refresh: setup
	DBT_ARGS="build --full-refresh" $(VENV)/bin/python -c '$(DBT_ON_WAREHOUSE)'

lint: $(SYNCED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: setup
	$(VENV)/bin/python -m bench.load

# Each provider client against its sandbox bank's request floor (~10 min; see docs/benchmarks.md).
bench-extract: setup
	$(VENV)/bin/python -m bench.extract

# A 200 MB camt.053 through the streaming parser (peak RSS) and a 200 MB SFTP fetch vs OpenSSH's sftp.
bench-parse: setup
	$(VENV)/bin/python -m bench.parse

bench-sftp: setup
	$(VENV)/bin/python -m bench.sftp

# A day's dbt run with 1M and 10M rows of history (~40 min), and the marts against the sandbox's answer key.
bench-dbt: setup
	$(VENV)/bin/python -m bench.dbt_scale --history 1000000,10000000 --day-rows 1000 --accounts 20

bench-accuracy: setup
	$(VENV)/bin/python -m bench.accuracy

bench-recon: setup
	$(VENV)/bin/python -m bench.recon

bench-quality: setup
	$(VENV)/bin/python -m bench.quality

# The HTTP export of fct_transactions (200,000 rows, every page) vs psql \copy of the same rows.
bench-export: setup
	$(VENV)/bin/python -m bench.export

clean:
	rm -rf $(VENV) dbt_project/target dbt_project/logs
