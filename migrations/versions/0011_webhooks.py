"""chat webhook channel: webhook contact methods, team webhooks as escalation targets

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

OLD_CHANNELS = "channel IN ('sms', 'whatsapp', 'email')"
NEW_CHANNELS = "channel IN ('sms', 'whatsapp', 'email', 'webhook')"
OLD_TARGET = ("(target_type = 'user' AND user_id IS NOT NULL AND schedule_id IS NULL AND team_id IS NULL)"
              " OR (target_type = 'schedule' AND schedule_id IS NOT NULL AND user_id IS NULL AND team_id IS NULL)"
              " OR (target_type = 'team' AND team_id IS NOT NULL AND user_id IS NULL AND schedule_id IS NULL)")
NEW_TARGET = ("(target_type = 'user' AND user_id IS NOT NULL AND schedule_id IS NULL AND team_id IS NULL)"
              " OR (target_type = 'schedule' AND schedule_id IS NOT NULL AND user_id IS NULL AND team_id IS NULL)"
              " OR (target_type IN ('team', 'team_webhook') AND team_id IS NOT NULL AND user_id IS NULL"
              " AND schedule_id IS NULL)")
FORMAT = "webhook_format IS NULL OR webhook_format IN ('slack', 'json')"


def upgrade():
    with op.batch_alter_table('contact_methods', schema=None) as batch_op:
        batch_op.add_column(sa.Column('webhook_format', sa.String(length=16), nullable=True))
        batch_op.alter_column('destination', existing_type=sa.String(length=254), type_=sa.String(length=2000),
                              existing_nullable=False)
        batch_op.drop_constraint(op.f('ck_contact_methods_channel'), type_='check')
        batch_op.create_check_constraint(op.f('ck_contact_methods_channel'), NEW_CHANNELS)
        batch_op.create_check_constraint(op.f('ck_contact_methods_webhook_format'), FORMAT)
    with op.batch_alter_table('teams', schema=None) as batch_op:
        batch_op.add_column(sa.Column('webhook_url', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('webhook_format', sa.String(length=16), nullable=True))
    with op.batch_alter_table('escalation_targets', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_escalation_targets_one_target'), type_='check')
        batch_op.create_check_constraint(op.f('ck_escalation_targets_one_target'), NEW_TARGET)
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.alter_column('destination', existing_type=sa.String(length=254), type_=sa.String(length=2000),
                              existing_nullable=False)
        batch_op.drop_constraint(op.f('ck_notifications_channel'), type_='check')
        batch_op.create_check_constraint(op.f('ck_notifications_channel'), NEW_CHANNELS)


def downgrade():
    op.execute("DELETE FROM notifications WHERE channel = 'webhook'")
    op.execute("DELETE FROM escalation_targets WHERE target_type = 'team_webhook'")
    op.execute("DELETE FROM contact_methods WHERE channel = 'webhook'")
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_notifications_channel'), type_='check')
        batch_op.create_check_constraint(op.f('ck_notifications_channel'), OLD_CHANNELS)
        batch_op.alter_column('destination', existing_type=sa.String(length=2000), type_=sa.String(length=254),
                              existing_nullable=False)
    with op.batch_alter_table('escalation_targets', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_escalation_targets_one_target'), type_='check')
        batch_op.create_check_constraint(op.f('ck_escalation_targets_one_target'), OLD_TARGET)
    with op.batch_alter_table('teams', schema=None) as batch_op:
        batch_op.drop_column('webhook_format')
        batch_op.drop_column('webhook_url')
    with op.batch_alter_table('contact_methods', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_contact_methods_webhook_format'), type_='check')
        batch_op.drop_constraint(op.f('ck_contact_methods_channel'), type_='check')
        batch_op.create_check_constraint(op.f('ck_contact_methods_channel'), OLD_CHANNELS)
        batch_op.alter_column('destination', existing_type=sa.String(length=2000), type_=sa.String(length=254),
                              existing_nullable=False)
        batch_op.drop_column('webhook_format')
