"""maintenance windows and the incidents they hold back

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

import pagerpal_core.db  # noqa: F401  (UTCDateTime columns)

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'maintenance_windows',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.Column('starts_at', pagerpal_core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('ends_at', pagerpal_core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('ended_at', pagerpal_core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', pagerpal_core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_maintenance_windows_span')),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'],
                                name=op.f('fk_maintenance_windows_created_by_id_users'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_maintenance_windows')),
    )
    with op.batch_alter_table('maintenance_windows', schema=None) as batch_op:
        batch_op.create_index('ix_maintenance_windows_ends_at', ['ends_at'], unique=False)

    op.create_table(
        'maintenance_window_sources',
        sa.Column('window_id', sa.Integer(), nullable=False),
        sa.Column('alert_source_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['alert_source_id'], ['alert_sources.id'],
                                name=op.f('fk_maintenance_window_sources_alert_source_id_alert_sources'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['window_id'], ['maintenance_windows.id'],
                                name=op.f('fk_maintenance_window_sources_window_id_maintenance_windows'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('window_id', 'alert_source_id', name=op.f('pk_maintenance_window_sources')),
    )
    with op.batch_alter_table('maintenance_window_sources', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_maintenance_window_sources_alert_source_id'), ['alert_source_id'],
                              unique=False)

    op.create_table(
        'maintenance_window_policies',
        sa.Column('window_id', sa.Integer(), nullable=False),
        sa.Column('policy_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['policy_id'], ['escalation_policies.id'],
                                name=op.f('fk_maintenance_window_policies_policy_id_escalation_policies'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['window_id'], ['maintenance_windows.id'],
                                name=op.f('fk_maintenance_window_policies_window_id_maintenance_windows'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('window_id', 'policy_id', name=op.f('pk_maintenance_window_policies')),
    )
    with op.batch_alter_table('maintenance_window_policies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_maintenance_window_policies_policy_id'), ['policy_id'], unique=False)

    op.create_table(
        'maintenance_holds',
        sa.Column('incident_id', sa.Integer(), nullable=False),
        sa.Column('window_id', sa.Integer(), nullable=True),
        sa.Column('held_at', pagerpal_core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
                                name=op.f('fk_maintenance_holds_incident_id_incidents'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['window_id'], ['maintenance_windows.id'],
                                name=op.f('fk_maintenance_holds_window_id_maintenance_windows'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('incident_id', name=op.f('pk_maintenance_holds')),
    )
    with op.batch_alter_table('maintenance_holds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_maintenance_holds_window_id'), ['window_id'], unique=False)


def downgrade():
    with op.batch_alter_table('maintenance_holds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_maintenance_holds_window_id'))
    op.drop_table('maintenance_holds')
    with op.batch_alter_table('maintenance_window_policies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_maintenance_window_policies_policy_id'))
    op.drop_table('maintenance_window_policies')
    with op.batch_alter_table('maintenance_window_sources', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_maintenance_window_sources_alert_source_id'))
    op.drop_table('maintenance_window_sources')
    with op.batch_alter_table('maintenance_windows', schema=None) as batch_op:
        batch_op.drop_index('ix_maintenance_windows_ends_at')
    op.drop_table('maintenance_windows')
