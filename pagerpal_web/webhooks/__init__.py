"""Alert ingestion and provider callbacks under /api/v1, authenticated by source keys."""

from flask import Blueprint

bp = Blueprint("webhooks", __name__)
# Where create_app mounts this blueprint; the public webhook URLs are built from it.
API_PREFIX = "/api/v1"

# Endpoint modules register on import (one line each).
from pagerpal_web.webhooks import (
    alerts,  # noqa: E402,F401
    heartbeat_pings,  # noqa: E402,F401
    inbound,  # noqa: E402,F401
    receipts,  # noqa: E402,F401
)
