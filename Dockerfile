# PagerPal: one image for the web (gunicorn), the worker and one-off commands (migrations,
# backups, the readiness check). Runtime dependencies only: no test extras.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PAGERPAL_INSTANCE_PATH=/data \
    FLASK_APP=pagerpal_web \
    HOST=0.0.0.0 \
    PORT=8000

# pg_dump/pg_restore for `flask pagerpal backup` against PostgreSQL; nothing else from apt.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 pagerpal \
    && useradd --system --uid 10001 --gid pagerpal --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin pagerpal \
    && mkdir -p /app /data \
    && chown pagerpal:pagerpal /data

WORKDIR /app
COPY setup.cfg pyproject.toml README.md ./
COPY pagerpal_core ./pagerpal_core
COPY pagerpal_web ./pagerpal_web
COPY pagerpal_worker ./pagerpal_worker
COPY templates ./templates
COPY migrations ./migrations
COPY deploy/gunicorn.conf.py ./deploy/gunicorn.conf.py
COPY deploy/compose-entrypoint.sh ./deploy/compose-entrypoint.sh
# Installed in place (read-only, owned by root) so templates, migrations and static files are
# found beside the packages exactly as in a checkout.
RUN pip install -e . && python -c "import pagerpal_web, pagerpal_worker"

USER pagerpal
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=4)"]
CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py", "pagerpal_web:create_app()"]
