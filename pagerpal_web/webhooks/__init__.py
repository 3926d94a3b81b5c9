"""Alert ingestion and provider callbacks under /api/v1, authenticated by source keys."""

from flask import Blueprint

bp = Blueprint("webhooks", __name__)
