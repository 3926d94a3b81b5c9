"""POST /api/v1/notifications/infobip/receipts: Infobip delivery reports.

When INFOBIP_RECEIPT_TOKEN is set, the `X-Infobip-Receipt-Token` header must equal it
(compared in constant time) or the call gets 401 and changes nothing. Unset, the endpoint is
open: production refuses to start that way when Infobip is configured, and elsewhere the
first receipt logs a warning.
"""

from __future__ import annotations

import logging

from flask import current_app, jsonify, request

from pagerpal_core.logs import log_fields
from pagerpal_core.security import constant_time_equals
from pagerpal_core.services.receipts import apply_delivery_reports
from pagerpal_core.timeutil import utcnow
from pagerpal_web.bodies import request_json
from pagerpal_web.config import settings as current_settings
from pagerpal_web.errors import error_response
from pagerpal_web.extensions import db
from pagerpal_web.webhooks import bp

log = logging.getLogger("pagerpal.receipts")
TOKEN_HEADER = "X-Infobip-Receipt-Token"


def _warn_open_once() -> None:
    # Once per app (per process in production): a line per receipt would drown the log.
    if not current_app.extensions.get("pagerpal.receipts_open_warned"):
        current_app.extensions["pagerpal.receipts_open_warned"] = True
        log.warning(f"INFOBIP_RECEIPT_TOKEN is not set: anyone can post delivery receipts; set it and have "
                    f"Infobip send it as {TOKEN_HEADER} (production refuses to start without it)")


@bp.post("/notifications/infobip/receipts")
def infobip_receipts():
    """Apply a delivery-report body; answers counts of what changed."""
    settings = current_settings()
    expected = settings.infobip_receipt_token
    if not expected:
        _warn_open_once()
    if expected and not constant_time_equals(request.headers.get(TOKEN_HEADER, ""), expected):
        log.warning("delivery report refused: missing or wrong receipt token")
        return error_response(401, "unauthorized", f"missing or wrong {TOKEN_HEADER}")
    # A report is read, not stored: a NaN in it is refused like any API body.
    summary = apply_delivery_reports(db.session, request_json(finite_only=True, object_only=True), now=utcnow())
    db.session.commit()
    log.info("delivery reports applied", extra=log_fields(**summary.as_dict()))
    return jsonify(summary.as_dict())
