"""signed action links and reply codes

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

import pagerpal_core.db

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('inbound_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('provider_message_id', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('sender', sa.String(length=32), nullable=False),
    sa.Column('text', sa.String(length=500), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.String(length=40), nullable=False),
    sa.Column('received_at', pagerpal_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', pagerpal_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("channel IN ('sms', 'whatsapp')", name=op.f('ck_inbound_messages_channel')),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_inbound_messages_incident_id_incidents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_inbound_messages_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_messages')),
    sa.UniqueConstraint('provider_message_id', name=op.f('uq_inbound_messages_provider_message_id'))
    )
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_messages_user_id'), ['user_id'], unique=False)

    op.create_table('reply_codes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=6), nullable=False),
    sa.Column('created_at', pagerpal_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('released_at', pagerpal_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_reply_codes_incident_id_incidents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_reply_codes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reply_codes'))
    )
    with op.batch_alter_table('reply_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reply_codes_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index('uq_reply_codes_user_code', ['user_id', 'code'], unique=True, sqlite_where=sa.text('released_at IS NULL'), postgresql_where=sa.text('released_at IS NULL'))
        batch_op.create_index('uq_reply_codes_user_incident', ['user_id', 'incident_id'], unique=True, sqlite_where=sa.text('released_at IS NULL'), postgresql_where=sa.text('released_at IS NULL'))

    op.create_table('action_links',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('notification_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('expires_at', pagerpal_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', pagerpal_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('used_action', sa.String(length=16), nullable=True),
    sa.Column('created_at', pagerpal_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("used_action IS NULL OR used_action IN ('ack', 'resolve', 'escalate')", name=op.f('ck_action_links_used_action')),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_action_links_incident_id_incidents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], name=op.f('fk_action_links_notification_id_notifications'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_action_links_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_action_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_action_links_token_hash'))
    )
    with op.batch_alter_table('action_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_action_links_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_action_links_notification_id'), ['notification_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_action_links_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('action_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_action_links_user_id'))
        batch_op.drop_index(batch_op.f('ix_action_links_notification_id'))
        batch_op.drop_index(batch_op.f('ix_action_links_incident_id'))

    op.drop_table('action_links')
    with op.batch_alter_table('reply_codes', schema=None) as batch_op:
        batch_op.drop_index('uq_reply_codes_user_incident', sqlite_where=sa.text('released_at IS NULL'), postgresql_where=sa.text('released_at IS NULL'))
        batch_op.drop_index('uq_reply_codes_user_code', sqlite_where=sa.text('released_at IS NULL'), postgresql_where=sa.text('released_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_reply_codes_incident_id'))

    op.drop_table('reply_codes')
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_messages_user_id'))

    op.drop_table('inbound_messages')
