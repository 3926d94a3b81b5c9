"""Public liveness endpoint for load balancers."""

from flask import Blueprint, jsonify

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    """200 while the process serves requests; it deliberately touches no database."""
    return jsonify(status="ok")
