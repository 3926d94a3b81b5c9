#!/bin/sh
# docker-compose's entrypoint for the PagerPal image: DATABASE_URL from .env wins; unset, it
# defaults to the bundled PostgreSQL service with POSTGRES_PASSWORD (URL-encoded). Done here
# because compose files cannot nest one variable's default inside another's portably.
set -eu
if [ -z "${DATABASE_URL:-}" ]; then
  password=$(python -c 'import os, urllib.parse; print(urllib.parse.quote(os.environ.get("POSTGRES_PASSWORD") or "placeholder-db-password", safe=""))')
  DATABASE_URL="postgresql://pagerpal:${password}@db:5432/pagerpal"
  export DATABASE_URL
fi
exec "$@"
