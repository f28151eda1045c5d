# One image for the three services and the one-shot jobs (docker-compose.yml picks the command).
# cdtt goes in as a wheel (not editable, no source tree beside it) over requirements/runtime.lock:
# no dev tools and no embedded servers' binaries (the `embedded` extra), since compose gives it
# Valkey and PostgreSQL.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY shared ./shared
COPY services ./services
COPY cdtt ./cdtt
RUN python -m pip wheel --quiet --no-deps --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim

# CDTT_ENV=production: the services refuse CDTT_AUTH=off (README "Security").
ENV CDTT_ENV=production \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/app/.venv/bin:$PATH

RUN groupadd --system --gid 10001 cdtt \
    && useradd --system --uid 10001 --gid cdtt --home-dir /app --shell /usr/sbin/nologin cdtt

WORKDIR /app
COPY requirements/runtime.lock ./requirements/runtime.lock
RUN python -m venv .venv \
    && .venv/bin/python -m pip install --quiet --requirement requirements/runtime.lock
COPY --from=build /wheels /wheels
RUN .venv/bin/python -m pip install --quiet --no-deps /wheels/*.whl && rm -rf /wheels \
    && .venv/bin/python -m pip install --quiet --no-deps 'vietnamadminunits==1.0.4'

# The code stays root-owned and read-only to the user that runs it.
USER cdtt
EXPOSE 8001 8002 8003
CMD ["cdtt", "--help"]
