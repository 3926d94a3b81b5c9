"""POST /api/v1/notifications/infobip/inbound: replies to pages ("4821 ACK") forwarded by Infobip.

Order of checks, and what each failure writes (nothing, every time):
1. INFOBIP_INBOUND_TOKEN unset → 404: the endpoint is switched off, never open;
2. the token, from the `X-Infobip-Inbound-Token` header or `?token=` (some forwarding setups
   only take a URL), compared in constant time → 401 when missing or wrong;
3. the body: JSON (400), then Infobip's inbound shape — MO_JSON_2 SMS or WhatsApp
   `results[]` — checked whole before anything is applied (400 naming the bad field);
4. the replies are applied (services/replies.py) and committed in one transaction; the
   answer says what happened. Unknown senders and replayed message ids change nothing.
"""

from __future__ import annotations

import logging

from flask import jsonify, request

from pagerpal_core.logs import log_fields
from pagerpal_core.security import constant_time_equals
from pagerpal_core.services.replies import handle_replies, parse_inbound
from pagerpal_core.timeutil import utcnow
from pagerpal_web.bodies import request_json
from pagerpal_web.config import settings as current_settings
from pagerpal_web.errors import error_response
from pagerpal_web.extensions import db
from pagerpal_web.webhooks import bp

log = logging.getLogger("pagerpal.inbound")
TOKEN_HEADER = "X-Infobip-Inbound-Token"


@bp.post("/notifications/infobip/inbound")
def infobip_inbound():
    """Apply forwarded inbound SMS/WhatsApp replies; answers counts of what happened."""
    settings = current_settings()
    expected = settings.infobip_inbound_token
    if not expected:
        return error_response(404, "not_found", "inbound replies are switched off (INFOBIP_INBOUND_TOKEN is unset)")
    given = request.headers.get(TOKEN_HEADER) or request.args.get("token") or ""
    if not constant_time_equals(given, expected):
        log.warning("inbound reply refused: missing or wrong inbound token")
        return error_response(401, "unauthorized", f"missing or wrong {TOKEN_HEADER} (or ?token=)")
    replies = parse_inbound(request_json(finite_only=True, object_only=True))
    summary = handle_replies(db.session, replies, now=utcnow(), base_url=settings.base_url)
    db.session.commit()
    log.info("inbound replies applied", extra=log_fields(**summary.as_dict()))
    return jsonify(summary.as_dict())
