"""/api/v1/alert-sources: monitoring integrations and their keys.

The full key appears only in the responses to create and `regenerate-key`; everywhere
else it is masked (`ppk_…abcd`). Each source carries ready-to-copy webhook details for
its kind, built from PAGERPAL_BASE_URL.
"""

from functools import partial
from urllib.parse import urlsplit, urlunsplit

from flask import jsonify

from pagerpal_core.models import AlertSource
from pagerpal_core.services import alert_sources as svc
from pagerpal_core.timeutil import utcnow
from pagerpal_web.api import bp
from pagerpal_web.api.common import body_fields, check_types, created, no_content, paginate, settings, ts
from pagerpal_web.extensions import db
from pagerpal_web.webhooks.alerts import WEBHOOK_PATHS

SOURCE_FIELDS = {"name", "kind", "policy_id", "team_id", "severity_map", "active", "sns_verification"}
KEY_PLACEHOLDER = "<source key>"


def webhook_details(source: AlertSource, key: str | None = None) -> dict:
    """How to point a sender of `source.kind` at PagerPal: URL, header, and a URL with the key in it.

    `url_with_key` carries the key as a Basic-auth password, for senders that cannot set
    headers (SNS subscriptions, some Grafana setups). Without the full key it holds a
    placeholder, since the stored key cannot be shown again.
    """
    url = settings().base_url.rstrip("/") + WEBHOOK_PATHS.get(source.kind, WEBHOOK_PATHS["generic"])
    parts = urlsplit(url)
    userinfo = f"pagerpal:{key or KEY_PLACEHOLDER}@"
    with_key = urlunsplit((parts.scheme, userinfo + parts.netloc, parts.path, "", ""))
    shown = key or KEY_PLACEHOLDER
    return {
        "url": url, "header": "X-API-Key", "url_with_key": with_key,
        "curl": (f"curl -sS -X POST '{url}' -H 'X-API-Key: {shown}' -H 'Content-Type: application/json' "
                 "-d '{\"title\": \"Test alert from PagerPal\", \"severity\": \"info\"}'"
                 if source.kind == "generic" else None),
    }


def serialize_source(source: AlertSource, key: str | None = None) -> dict:
    """An alert source as JSON, key masked; `key` (full, shown once) only right after it is issued."""
    body = {
        "id": source.id, "name": source.name, "kind": source.kind, "active": source.active,
        "policy_id": source.policy_id, "team_id": source.team_id, "severity_map": source.severity_map or {},
        "sns_verification": source.sns_verification,
        "masked_key": svc.mask_key(source.key_suffix), "webhook": webhook_details(source, key),
        "last_alert_at": ts(source.last_alert_at), "key_rotated_at": ts(source.key_rotated_at),
        "created_at": ts(source.created_at), "updated_at": ts(source.updated_at),
    }
    if key is not None:
        body["key"] = key
    return body


@bp.get("/alert-sources")
def list_alert_sources():
    """Alert sources by id, paginated; keys masked."""
    return jsonify(paginate(partial(svc.list_alert_sources, db.session), "api.list_alert_sources",
                            serialize_source))


@bp.post("/alert-sources")
def create_alert_source_view():
    """Create a source; the response holds its full key, shown this once."""
    data = body_fields(SOURCE_FIELDS, needed=("name",))
    check_types(data, kind="string", active="boolean", sns_verification="string")
    issued = svc.create_alert_source(db.session, **data, now=utcnow())
    db.session.commit()
    return created(serialize_source(issued.source, issued.key), "api.read_alert_source",
                   source_id=issued.source.id)


@bp.get("/alert-sources/<int:source_id>")
def read_alert_source(source_id: int):
    """One source; key masked."""
    return jsonify(serialize_source(svc.get_alert_source(db.session, source_id)))


@bp.patch("/alert-sources/<int:source_id>")
def update_alert_source_view(source_id: int):
    """Change name, kind, routing (policy, team), severity map, active or SNS signature checking."""
    data = body_fields(SOURCE_FIELDS)
    source = svc.update_alert_source(db.session, svc.get_alert_source(db.session, source_id), **data,
                                     now=utcnow())
    db.session.commit()
    return jsonify(serialize_source(source))


@bp.post("/alert-sources/<int:source_id>/regenerate-key")
def regenerate_alert_source_key_view(source_id: int):
    """Issue a new key (shown this once); the old one stops working now."""
    issued = svc.regenerate_alert_source_key(db.session, svc.get_alert_source(db.session, source_id),
                                             now=utcnow())
    db.session.commit()
    return jsonify(serialize_source(issued.source, issued.key))


@bp.delete("/alert-sources/<int:source_id>")
def delete_alert_source_view(source_id: int):
    """Delete a source that never opened an incident (409 otherwise: deactivate it instead)."""
    svc.delete_alert_source(db.session, svc.get_alert_source(db.session, source_id))
    db.session.commit()
    return no_content()
