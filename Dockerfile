# The bankflow code location: a Dagster gRPC code server on port 4000, for Dagster's Helm chart
# (docs/deploy.md). Webserver and daemon run Dagster's own images; this one serves the definitions
# and runs the runs (the Kubernetes run launcher starts each run in a pod of this image).
#
#   docker build -t bankflow:$(git rev-parse --short HEAD) .
#
# No secret is built in: every setting comes from the environment at run time (Kubernetes Secrets).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# The same uv as the Makefile, from PyPI.
ARG UV_VERSION=0.13.8
ENV UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    DO_NOT_TRACK=1
RUN python -m pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"
WORKDIR /app
# Dependencies first, exactly as locked (a layer that changes only with uv.lock); no dev tools;
# dagster-k8s for the run launcher.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --extra k8s --no-install-project --python /usr/local/bin/python3
COPY . .
# The project itself, editable: its code finds dbt_project/, connectors/ and quality/ beside it.
RUN uv sync --frozen --no-dev --extra k8s --python /usr/local/bin/python3
# The dbt manifest is built here, never when the definitions load (as `make setup` does).
RUN cd dbt_project && ../.venv/bin/dbt parse --profiles-dir . --project-dir . --quiet \
    && rm -rf logs

FROM ${PYTHON_IMAGE}
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GX_ANALYTICS_ENABLED=false \
    DO_NOT_TRACK=1 \
    BANKFLOW_HOME=/var/lib/bankflow
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin bankflow \
    && mkdir -p /var/lib/bankflow && chown bankflow /var/lib/bankflow
WORKDIR /app
COPY --from=build /app /app
# dbt writes its target/ and logs/ in the project on every run.
RUN chown -R bankflow /app/dbt_project
USER bankflow
EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s \
    CMD ["dagster", "api", "grpc-health-check", "-p", "4000"]
# No ENTRYPOINT: the Helm chart gives its own `dagster api grpc ...` as the container's args.
# `api grpc` exits when the definitions fail to load (`code-server start` would keep answering
# health checks), so a broken image never looks healthy.
CMD ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", "4000", "-m", "pipelines.definitions", "-a", "defs"]
