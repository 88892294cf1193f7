# One image for web, worker and beat; docker-compose.yml picks the Procfile line to run.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# git: the GIT connector runs the git program (docs/README-connectors.md).
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY . .
# Static files are collected at build time (hashed names, compressed copies; whitenoise
# serves them from web). The settings generate secrets where none are given: at build
# time into a throw-away directory, never into the image.
# flow-requirements.txt: the extra packages a site's flows import (README.md).
RUN pip install . -r flow-requirements.txt \
    && AUTOMATION_VAR_DIR=/tmp/build-var python manage.py collectstatic --noinput -v 0 \
    && rm -rf /tmp/build-var \
    && useradd --create-home --uid 1000 app \
    && useradd --system --no-create-home --shell /usr/sbin/nologin flow \
    && mkdir -p /app/var \
    && chown app /app/var \
    && chmod 700 /app/var

# Web and beat run as a normal user; /app/var holds the secrets generated when none are
# given. The worker runs as root only to start each flow's host as `flow`, which can read
# neither /app/var nor anything of the engine's (docs/README-security.md).
ENV AUTOMATION_FLOW_USER=flow
USER app
EXPOSE 8000
CMD ["python", "manage.py", "check", "--deploy"]
