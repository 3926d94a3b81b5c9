"""heartbeat monitors, maintenance windows and self-test

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

import pagerpal_core.db  # (UTCDateTime columns)

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    # --- heartbeat monitors ---------------------------------------------------------------------
    op.create_table('heartbeat_monitors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('interval_seconds', sa.Integer(), nullable=False),
    sa.Column('grace_seconds', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('token_suffix', sa.String(length=8), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('last_ping_at', pagerpal_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('expected_by', pagerpal_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('down_since', pagerpal_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ping_count', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('rate_tokens', sa.Float(), nullable=True),
    sa.Column('rate_updated_at', pagerpal_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', pagerpal_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', pagerpal_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("state IN ('new', 'up', 'down')", name=op.f('ck_heartbeat_monitors_state')),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
                            name=op.f('fk_heartbeat_monitors_incident_id_incidents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['policy_id'], ['escalation_policies.id'],
                            name=op.f('fk_heartbeat_monitors_policy_id_escalation_policies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_heartbeat_monitors')),
    sa.UniqueConstraint('name', name=op.f('uq_heartbeat_monitors_name')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_heartbeat_monitors_token_hash'))
    )
    with op.batch_alter_table('heartbeat_monitors', schema=None) as batch_op:
        batch_op.create_index('ix_heartbeat_monitors_overdue', ['expected_by'], unique=False,
                              sqlite_where=sa.text("state = 'up'"), postgresql_where=sa.text("state = 'up'"))
        batch_op.create_index(batch_op.f('ix_heartbeat_monitors_policy_id'), ['policy_id'], unique=False)


def downgrade():
    with op.batch_alter_table('heartbeat_monitors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_heartbeat_monitors_policy_id'))
        batch_op.drop_index('ix_heartbeat_monitors_overdue', sqlite_where=sa.text("state = 'up'"),
                            postgresql_where=sa.text("state = 'up'"))
    op.drop_table('heartbeat_monitors')
