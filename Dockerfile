# One image for web, worker and beat; docker-compose.yml picks the Procfile line to run.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY . .
RUN pip install . \
    && useradd --create-home --uid 1000 app \
    && mkdir -p /app/var \
    && chown app /app/var

# Runs as a normal user; /app/var holds the secrets generated when none are given.
USER app
EXPOSE 8000
CMD ["python", "manage.py", "check", "--deploy"]
