"""SNS signature verification per source, SNS signing certificates, calendar feed tokens

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

import pagerpal_core.db  # noqa: F401  (UTCDateTime columns)

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    # Sources that exist before this revision keep trusting the key alone (server default
    # key-only), so an upgrade never starts refusing a working SNS subscription; sources
    # created afterwards verify signatures (the model's default).
    with op.batch_alter_table('alert_sources', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sns_verification', sa.String(length=8), server_default=sa.text("'key-only'"),
                                      nullable=False))
        batch_op.create_check_constraint(op.f('ck_alert_sources_sns_verification'), "sns_verification IN ('verify', 'key-only')")

    op.create_table(
        'sns_signing_certs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('url', sa.String(length=1024), nullable=False),
        sa.Column('status', sa.String(length=8), nullable=False),
        sa.Column('pem', sa.Text(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.String(length=1000), nullable=True),
        sa.Column('requested_at', pagerpal_core.db.UTCDateTime(), nullable=False),
        sa.Column('fetched_at', pagerpal_core.db.UTCDateTime(), nullable=True),
        sa.Column('next_attempt_at', pagerpal_core.db.UTCDateTime(), nullable=True),
        sa.CheckConstraint("status IN ('wanted', 'ready', 'failed')", name=op.f('ck_sns_signing_certs_status')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sns_signing_certs')),
        sa.UniqueConstraint('url', name=op.f('uq_sns_signing_certs_url')),
    )
    with op.batch_alter_table('sns_signing_certs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sns_signing_certs_status'), ['status'], unique=False)

    op.create_table(
        'calendar_feed_tokens',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('token_suffix', sa.String(length=8), nullable=False),
        sa.Column('created_at', pagerpal_core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_calendar_feed_tokens_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_calendar_feed_tokens')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_calendar_feed_tokens_token_hash')),
        sa.UniqueConstraint('user_id', name=op.f('uq_calendar_feed_tokens_user_id')),
    )


def downgrade():
    op.drop_table('calendar_feed_tokens')
    with op.batch_alter_table('sns_signing_certs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sns_signing_certs_status'))
    op.drop_table('sns_signing_certs')
    with op.batch_alter_table('alert_sources', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_alert_sources_sns_verification'), type_='check')
        batch_op.drop_column('sns_verification')
