"""iot: sensors, readings, rejects, bindings

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-22

Written by hand (autogenerate would pick up other parts' tables). Readings are keyed by
(sensor_id, seq), which makes MQTT capture exactly-once.

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('sensors',
    sa.Column('sensor_id', sa.String(length=64), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('public_key', sa.LargeBinary(length=32), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], ),
    sa.PrimaryKeyConstraint('sensor_id')
    )
    op.create_index('ix_sensors_participant_id', 'sensors', ['participant_id'], unique=False)
    op.create_table('sensor_readings',
    sa.Column('sensor_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('temperature_c', sa.Float(), nullable=False),
    sa.Column('humidity_pct', sa.Float(), nullable=True),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('leaf_index', sa.BigInteger(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['sensor_id'], ['sensors.sensor_id'], ),
    sa.PrimaryKeyConstraint('sensor_id', 'seq'),
    sa.UniqueConstraint('leaf_index')
    )
    op.create_index('ix_sensor_readings_time', 'sensor_readings', ['sensor_id', 'taken_at'], unique=False)
    op.create_table('sensor_rejects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('sensor_id', sa.String(length=64), nullable=True),
    sa.Column('seq', sa.BigInteger(), nullable=True),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('topic', sa.Text(), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('digest')
    )
    op.create_index('ix_sensor_rejects_sensor_id', 'sensor_rejects', ['sensor_id'], unique=False)
    op.create_table('sensor_bindings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sensor_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('target', sa.String(length=18), nullable=False),
    sa.Column('valid_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('valid_to', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['sensor_id'], ['sensors.sensor_id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_sensor_bindings_sensor_id', 'sensor_bindings', ['sensor_id'], unique=False)
    op.create_index('ix_sensor_bindings_target', 'sensor_bindings', ['kind', 'target'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_sensor_bindings_target', table_name='sensor_bindings')
    op.drop_index('ix_sensor_bindings_sensor_id', table_name='sensor_bindings')
    op.drop_table('sensor_bindings')
    op.drop_index('ix_sensor_rejects_sensor_id', table_name='sensor_rejects')
    op.drop_table('sensor_rejects')
    op.drop_index('ix_sensor_readings_time', table_name='sensor_readings')
    op.drop_table('sensor_readings')
    op.drop_index('ix_sensors_participant_id', table_name='sensors')
    op.drop_table('sensors')
