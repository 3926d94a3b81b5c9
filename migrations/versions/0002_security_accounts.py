"""account security (sessions, sign-in throttle, event recorded_by)

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

import pagerpal_core.db

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    # --- sign-in throttle: counters per (address, account) and per account ------------------
    # The old rows were keyed per address ("login:<ip>", "api:<ip>"); they are short-lived
    # counters and mean nothing under the new keys, so they go.
    op.execute("DELETE FROM auth_throttle")
    with op.batch_alter_table('auth_throttle', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_failure_at', pagerpal_core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_success_at', pagerpal_core.db.UTCDateTime(timezone=True), nullable=True))

    # --- server-side browser sessions ------------------------------------------------------------
    op.create_table('user_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', pagerpal_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', pagerpal_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_user_sessions'))
    )
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_sessions_last_seen_at'), ['last_seen_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_user_sessions_user_id'), ['user_id'], unique=False)

    # --- who really made each timeline entry (beside the user it was recorded for) ------------
    with op.batch_alter_table('incident_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recorded_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_incident_events_recorded_by_id_users'), 'users',
                                    ['recorded_by_id'], ['id'])


def downgrade():
    with op.batch_alter_table('incident_events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_incident_events_recorded_by_id_users'), type_='foreignkey')
        batch_op.drop_column('recorded_by_id')

    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_sessions_user_id'))
        batch_op.drop_index(batch_op.f('ix_user_sessions_last_seen_at'))
    op.drop_table('user_sessions')

    op.execute("DELETE FROM auth_throttle")
    with op.batch_alter_table('auth_throttle', schema=None) as batch_op:
        batch_op.drop_column('last_success_at')
        batch_op.drop_column('last_failure_at')
