# One image for the three services and the one-shot jobs (docker-compose.yml picks the command).
# It installs the way `make install` does (a venv, pip upgraded, an editable install), without
# the dev extra: the image runs services, not tests.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/app/.venv/bin:$PATH

RUN groupadd --system --gid 10001 cdtt \
    && useradd --system --uid 10001 --gid cdtt --home-dir /app --shell /usr/sbin/nologin cdtt

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY shared ./shared
COPY services ./services
COPY cdtt ./cdtt
RUN python -m venv .venv \
    && .venv/bin/python -m pip install --quiet --upgrade pip \
    && .venv/bin/python -m pip install --quiet -e .

# The code stays root-owned and read-only to the user that runs it.
USER cdtt
EXPOSE 8001 8002 8003
CMD ["cdtt", "--help"]
