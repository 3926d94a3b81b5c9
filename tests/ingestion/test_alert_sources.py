"""Alert source service: keys shown once and stored hashed, lifecycle, severity mapping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from pagerpal_core.errors import Conflict, Invalid, NotFound
from pagerpal_core.models import AlertSource, SnsSubscription
from pagerpal_core.security import sha256_hex
from pagerpal_core.services import alert_sources as svc
from pagerpal_core.services.ingestion import send_test_alert

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def test_key_shape_and_storage(session):
    issued = svc.create_alert_source(session, name="grafana-prod", kind="grafana", now=NOW)
    session.commit()
    key = issued.key
    assert key.startswith("ppk_") and len(key) >= 4 + 43  # 32 random bytes, URL-safe
    assert set(key[4:]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    row = session.execute(select(AlertSource.__table__)).mappings().one()
    assert row["key_hash"] == sha256_hex(key) and row["key_suffix"] == key[-4:]
    assert key not in {str(v) for v in row.values()}  # the key itself is stored nowhere
    assert issued.source.masked_key == svc.mask_key(key[-4:]) == f"ppk_…{key[-4:]}"


def test_keys_are_unique_per_source(session):
    a = svc.create_alert_source(session, name="a", now=NOW).key
    b = svc.create_alert_source(session, name="b", now=NOW).key
    assert a != b


def test_authenticate_by_key(session):
    issued = svc.create_alert_source(session, name="src", now=NOW)
    session.commit()
    assert svc.authenticate_source(session, issued.key).id == issued.source.id
    for bad in (None, "", issued.key + "x", issued.key[:-1], "ppk_" + "A" * 43, issued.key.upper(), 42):
        assert svc.authenticate_source(session, bad) is None


def test_regenerate_invalidates_the_old_key(session):
    issued = svc.create_alert_source(session, name="src", now=NOW)
    session.commit()
    fresh = svc.regenerate_alert_source_key(session, issued.source, now=NOW)
    session.commit()
    assert fresh.key != issued.key
    assert svc.authenticate_source(session, issued.key) is None
    assert svc.authenticate_source(session, fresh.key).id == issued.source.id
    assert issued.source.key_rotated_at == NOW


def test_inactive_source_still_authenticates_so_the_web_can_say_403(session):
    issued = svc.create_alert_source(session, name="src", now=NOW)
    svc.deactivate_alert_source(session, issued.source, now=NOW)
    session.commit()
    assert svc.authenticate_source(session, issued.key).active is False
    svc.activate_alert_source(session, issued.source, now=NOW)
    assert issued.source.active is True


def test_names_are_unique_case_insensitively_found(session):
    svc.create_alert_source(session, name="Grafana", now=NOW)
    with pytest.raises(Conflict):
        svc.create_alert_source(session, name="Grafana", now=NOW)
    assert svc.find_alert_source_by_name(session, "grafana").name == "Grafana"
    with pytest.raises(NotFound):
        svc.find_alert_source_by_name(session, "nope")


def test_rename(session):
    a = svc.create_alert_source(session, name="a", now=NOW).source
    svc.create_alert_source(session, name="b", now=NOW)
    svc.rename_alert_source(session, a, "a2", now=NOW)
    assert a.name == "a2"
    with pytest.raises(Conflict):
        svc.rename_alert_source(session, a, "b", now=NOW)
    assert a.name == "a2"
    with pytest.raises(Invalid):
        svc.rename_alert_source(session, a, "  ", now=NOW)


@pytest.mark.parametrize("kwargs, field", [
    ({"name": ""}, "name"),
    ({"name": "x" * 121}, "name"),
    ({"name": "x", "kind": "nagios"}, "kind"),
    ({"name": "x", "policy_id": 999}, "policy_id"),
    ({"name": "x", "team_id": 999}, "team_id"),
    ({"name": "x", "severity_map": {"p1": "urgent"}}, "severity_map"),
    ({"name": "x", "severity_map": ["p1"]}, "severity_map"),
])
def test_create_validation(session, kwargs, field):
    with pytest.raises(Invalid) as caught:
        svc.create_alert_source(session, now=NOW, **kwargs)
    assert field in caught.value.fields


def test_update(session):
    src = svc.create_alert_source(session, name="a", now=NOW).source
    svc.update_alert_source(session, src, now=NOW, kind="alertmanager", severity_map={"Sev1": "critical"})
    assert (src.kind, src.severity_map) == ("alertmanager", {"sev1": "critical"})
    with pytest.raises(Invalid) as caught:
        svc.update_alert_source(session, src, now=NOW, key_hash="x")
    assert "key_hash" in caught.value.fields


def test_delete_only_when_unused(session):
    unused = svc.create_alert_source(session, name="unused", now=NOW).source
    used = svc.create_alert_source(session, name="used", now=NOW).source
    session.commit()
    send_test_alert(session, used, now=NOW, base_url="http://127.0.0.1:8000")
    session.commit()
    svc.delete_alert_source(session, unused)
    with pytest.raises(Conflict):
        svc.delete_alert_source(session, used)
    session.commit()
    assert [s.name for s in svc.list_alert_sources(session)] == ["used"]


def test_delete_removes_sns_subscriptions(session):
    src = svc.create_alert_source(session, name="aws", kind="cloudwatch", now=NOW).source
    session.add(SnsSubscription(alert_source_id=src.id, topic_arn="arn:aws:sns:eu-west-1:123456789012:t",
                                status="pending"))
    session.commit()
    svc.delete_alert_source(session, src)
    session.commit()
    assert session.scalars(select(SnsSubscription)).all() == []


@pytest.mark.parametrize("mapping, raw, expected", [
    ({}, "critical", "critical"),
    ({}, "ERROR", "high"),
    ({}, "warn", "warning"),
    ({}, "informational", "info"),
    ({}, None, "high"),
    ({}, "banana", "high"),
    ({"banana": "info"}, "Banana", "info"),
    ({"critical": "warning"}, "critical", "warning"),  # the source's map wins over built-ins
    ({"*": "warning"}, None, "warning"),
    ({"*": "warning"}, "banana", "warning"),
])
def test_map_severity(mapping, raw, expected):
    source = AlertSource(name="x", severity_map=svc.normalise_severity_map(mapping))
    assert svc.map_severity(source, raw) == expected
