"""lean ingestion hot path

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

import pagerpal_core.db  # noqa: F401  (UTCDateTime columns)

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    # Ingestion caches each source per process for a moment; the token-taking statement
    # checks this version so a regenerated key or a deactivated source is refused at once.
    with op.batch_alter_table('alert_sources', schema=None) as batch_op:
        batch_op.add_column(sa.Column('config_version', sa.Integer(), server_default=sa.text('1'),
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('alert_sources', schema=None) as batch_op:
        batch_op.drop_column('config_version')
