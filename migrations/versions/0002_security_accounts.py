"""account security (sessions, sign-in throttle, event recorded_by)

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import pagerpal_core.db  # noqa: F401  (UTCDateTime columns)

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
