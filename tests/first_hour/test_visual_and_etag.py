"""Visual fixes: row classes apart from badge classes, AA text contrast, pickers start at "choose…";
the dashboard's conditional refresh (ETag from the latest change, 304 when nothing changed)."""

from __future__ import annotations

import colorsys
import re

import pytest

from pagerpal_core.models import Incident
from pagerpal_core.services.incidents import acknowledge_incident
from pagerpal_core.settings import PROJECT_ROOT
from pagerpal_core.timeutil import utcnow
from pagerpal_web.extensions import db
from pagerpal_web.ui.schedules import user_colour
from tests.web.test_ui_pages import build_world, signed_in

# The web surface: its outcome does not depend on the database (SQL runs on both elsewhere).
pytestmark = pytest.mark.backends("sqlite")

WHITE = (255, 255, 255)


def _luminance(rgb) -> float:
    def channel(x):
        x /= 255
        return x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _hex(value: str):
    value = value.lstrip("#")
    return tuple(int(value[i:i + 2], 16) for i in (0, 2, 4))


def _hsl(text: str):
    h, s, lightness = (float(x) for x in re.findall(r"[\d.]+", text))
    return tuple(round(v * 255) for v in colorsys.hls_to_rgb(h / 360, lightness / 100, s / 100))


def test_white_text_meets_wcag_aa_on_badges_and_schedule_colours():
    css = (PROJECT_ROOT / "pagerpal_web" / "static" / "app.css").read_text()
    variables = dict(re.findall(r"--(crit|high|warn|info):\s*(#[0-9a-fA-F]{6})", css))
    assert set(variables) == {"crit", "high", "warn", "info"}
    for name, value in variables.items():  # the .sev-* badges carry white text on these
        assert contrast(_hex(value), WHITE) >= 4.5, name
    for user_id in range(1, 400):  # timeline bars carry the person's name in white
        assert contrast(_hsl(user_colour(user_id)), WHITE) >= 4.5, user_colour(user_id)


def test_incident_rows_do_not_reuse_badge_classes(app):
    world = build_world(app)
    html = signed_in(app, world.admin_email).get("/dashboard").get_data(as_text=True)
    assert '<tr class="row-status-triggered' in html
    assert not re.search(r'<tr class="status-', html)
    css = (PROJECT_ROOT / "pagerpal_web" / "static" / "app.css").read_text()
    assert not re.search(r"^\.status-(triggered|acknowledged|resolved)", css, flags=re.M)


def test_pickers_start_at_choose(app):
    world = build_world(app)
    client = signed_in(app, world.admin_email)
    for path, select_id in ((f"/schedules/{world.schedule_id}", "entry-user_id"),
                            (f"/schedules/{world.schedule_id}", "override-user_id"),
                            (f"/teams/{world.team_id}", "member-user_id")):
        html = client.get(path).get_data(as_text=True)
        select = re.search(rf'<select[^>]*id="{select_id}"[^>]*>(.*?)</select>', html, flags=re.S)
        assert select, (path, select_id)
        first = re.search(r"<option[^>]*>([^<]*)</option>", select.group(1)).group(1)
        assert first == "choose…", (path, select_id, first)


def test_dashboard_answers_304_until_something_changes(app):
    world = build_world(app)
    client = signed_in(app, world.viewer_email)
    first = client.get("/dashboard")
    assert first.status_code == 200 and first.headers["ETag"]
    assert "no-cache" in first.headers["Cache-Control"]
    etag = first.headers["ETag"]
    again = client.get("/dashboard", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    assert again.headers["ETag"] == etag

    with app.app_context():  # a change anywhere on the page: a new version
        acknowledge_incident(db.session, db.session.get(Incident, world.incident_id), actor="test", now=utcnow())
        db.session.commit()
    changed = client.get("/dashboard", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert b"open-incidents" in changed.get_data()
