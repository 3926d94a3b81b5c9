"""notification rules, failover and delivery health

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

import pagerpal_core.db

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

OLD_STATUSES = ("status IN ('pending', 'sending', 'sent', 'suppressed', 'delivered', 'undeliverable',"
                " 'failed', 'exhausted', 'cancelled')")
NEW_STATUSES = ("status IN ('pending', 'sending', 'sent', 'suppressed', 'delivered', 'undeliverable',"
                " 'failed', 'exhausted', 'cancelled', 'bundled')")

FAILOVER_DUE = "failed_over_at IS NULL AND status IN ('undeliverable', 'exhausted', 'failed')"
UNCONFIRMED = "failed_over_at IS NULL AND status = 'sent' AND channel IN ('sms', 'whatsapp')"


def upgrade():
    op.create_table('notification_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('contact_method_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('delay_minutes', sa.Integer(), nullable=False),
    sa.Column('created_at', pagerpal_core.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('delay_minutes >= 0 AND delay_minutes <= 1440', name=op.f('ck_notification_rules_delay')),
    sa.ForeignKeyConstraint(['contact_method_id'], ['contact_methods.id'],
                            name=op.f('fk_notification_rules_contact_method_id_contact_methods'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notification_rules_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_rules')),
    sa.UniqueConstraint('user_id', 'contact_method_id', name='uq_notification_rules_user_method')
    )
    with op.batch_alter_table('notification_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_rules_user_id'), ['user_id'], unique=False)

    op.create_table('provider_pauses',
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('paused_until', pagerpal_core.db.UTCDateTime(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('updated_at', pagerpal_core.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('provider', name=op.f('pk_provider_pauses'))
    )

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contact_method_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('round_key', sa.String(length=160), nullable=True))
        batch_op.add_column(sa.Column('kind', sa.String(length=16), server_default='page', nullable=False))
        batch_op.add_column(sa.Column('first_attempt_at', pagerpal_core.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('failed_over_at', pagerpal_core.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('bundle_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                                      nullable=True))
        batch_op.create_foreign_key(op.f('fk_notifications_contact_method_id_contact_methods'),
                                    'contact_methods', ['contact_method_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(op.f('fk_notifications_bundle_id_notifications'),
                                    'notifications', ['bundle_id'], ['id'], ondelete='SET NULL')
        batch_op.create_index(batch_op.f('ix_notifications_contact_method_id'), ['contact_method_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_round_key'), ['round_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_bundle_id'), ['bundle_id'], unique=False)
        batch_op.create_index('ix_notifications_destination_recent', ['destination', 'first_attempt_at'],
                              unique=False)
        batch_op.create_index('ix_notifications_failover_due', ['id'], unique=False,
                              sqlite_where=sa.text(FAILOVER_DUE), postgresql_where=sa.text(FAILOVER_DUE))
        batch_op.create_index('ix_notifications_unconfirmed', ['sent_at'], unique=False,
                              sqlite_where=sa.text(UNCONFIRMED), postgresql_where=sa.text(UNCONFIRMED))
        batch_op.drop_constraint(op.f('ck_notifications_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_notifications_status'), NEW_STATUSES)
        batch_op.create_check_constraint(op.f('ck_notifications_kind'), "kind IN ('page', 'summary', 'test')")


def downgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_notifications_kind'), type_='check')
        batch_op.drop_constraint(op.f('ck_notifications_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_notifications_status'), OLD_STATUSES)
        batch_op.drop_index('ix_notifications_unconfirmed', sqlite_where=sa.text(UNCONFIRMED),
                            postgresql_where=sa.text(UNCONFIRMED))
        batch_op.drop_index('ix_notifications_failover_due', sqlite_where=sa.text(FAILOVER_DUE),
                            postgresql_where=sa.text(FAILOVER_DUE))
        batch_op.drop_index('ix_notifications_destination_recent')
        batch_op.drop_index(batch_op.f('ix_notifications_bundle_id'))
        batch_op.drop_index(batch_op.f('ix_notifications_round_key'))
        batch_op.drop_index(batch_op.f('ix_notifications_contact_method_id'))
        batch_op.drop_constraint(op.f('fk_notifications_bundle_id_notifications'), type_='foreignkey')
        batch_op.drop_constraint(op.f('fk_notifications_contact_method_id_contact_methods'), type_='foreignkey')
        batch_op.drop_column('bundle_id')
        batch_op.drop_column('failed_over_at')
        batch_op.drop_column('first_attempt_at')
        batch_op.drop_column('kind')
        batch_op.drop_column('round_key')
        batch_op.drop_column('contact_method_id')

    op.drop_table('provider_pauses')
    with op.batch_alter_table('notification_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notification_rules_user_id'))
    op.drop_table('notification_rules')
