"""snooze and acknowledgement timeout

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

import pagerpal_core.db

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('escalation_policies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ack_timeout_minutes', sa.Integer(), nullable=True))
        batch_op.create_check_constraint(op.f('ck_escalation_policies_ack_timeout_minutes'),
                                         'ack_timeout_minutes IS NULL OR ack_timeout_minutes >= 1')

    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('assignment_pinned', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.add_column(sa.Column('retrigger_at', pagerpal_core.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('snoozed_until', pagerpal_core.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('snoozed_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(op.f('fk_incidents_snoozed_by_id_users'), 'users', ['snoozed_by_id'], ['id'])
        batch_op.create_index('ix_incidents_retrigger_due', ['retrigger_at'], unique=False,
                              sqlite_where=sa.text("status = 'acknowledged'"),
                              postgresql_where=sa.text("status = 'acknowledged'"))


def downgrade():
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index('ix_incidents_retrigger_due', sqlite_where=sa.text("status = 'acknowledged'"),
                            postgresql_where=sa.text("status = 'acknowledged'"))
        batch_op.drop_constraint(op.f('fk_incidents_snoozed_by_id_users'), type_='foreignkey')
        batch_op.drop_column('snoozed_by_id')
        batch_op.drop_column('snoozed_until')
        batch_op.drop_column('retrigger_at')
        batch_op.drop_column('assignment_pinned')

    with op.batch_alter_table('escalation_policies', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_escalation_policies_ack_timeout_minutes'), type_='check')
        batch_op.drop_column('ack_timeout_minutes')
