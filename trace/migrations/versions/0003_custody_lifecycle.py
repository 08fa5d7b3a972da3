"""custody lifecycle: containers, aggregation, places, quarantine, unit history, EPCIS

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-22

Units get the container they are packed in (``parent_sscc``), the place they are kept
(``location_gln``) and the QA flag (``quarantined``); containers (SSCC) get a table of their
own; an event names a unit or a container (``gtin``/``serial`` nullable, ``sscc``); and
``event_units`` links each event to every unit it concerns, so a unit's history is one
indexed query. Events get their EPCIS bizLocation and CBV 2.0 event hash (``epcis_id``), for
the EPCIS query interface. Existing events and units are carried over (events captured
before this revision have no EPCIS id: they are still listed by the query, not found by id).
Events captured through EPCIS carry no station (``station_id`` nullable), and EPCIS capture
jobs get a table.

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('units') as batch_op:
        batch_op.add_column(sa.Column('location_gln', sa.String(length=13), nullable=True))
        batch_op.add_column(sa.Column('parent_sscc', sa.String(length=18), nullable=True))
        batch_op.add_column(
            sa.Column('quarantined', sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index('ix_units_parent_sscc', ['parent_sscc'], unique=False)
        batch_op.create_index('ix_units_location', ['location_gln', 'state'], unique=False)
        # A lot's units in serial order straight from the index (not the GTIN's whole range).
        batch_op.drop_index('ix_units_gtin_lot')
        batch_op.create_index('ix_units_gtin_lot', ['gtin', 'lot', 'serial'], unique=False)
    op.execute(
        "UPDATE units SET location_gln = holder_gln WHERE state IN ('commissioned', 'received')"
    )

    op.create_table(
        'containers',
        sa.Column('sscc', sa.String(length=18), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('holder_gln', sa.String(length=13), nullable=False),
        sa.Column('destination_gln', sa.String(length=13), nullable=True),
        sa.Column('location_gln', sa.String(length=13), nullable=True),
        sa.Column('parent_sscc', sa.String(length=18), nullable=True),
        sa.Column('quarantined', sa.Boolean(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('sscc'),
    )
    with op.batch_alter_table('containers') as batch_op:
        batch_op.create_index('ix_containers_holder_gln', ['holder_gln'], unique=False)
        batch_op.create_index('ix_containers_parent_sscc', ['parent_sscc'], unique=False)
        batch_op.create_index('ix_containers_location', ['location_gln', 'state'], unique=False)

    with op.batch_alter_table('events') as batch_op:
        batch_op.alter_column('gtin', existing_type=sa.String(length=14), nullable=True)
        batch_op.alter_column('serial', existing_type=sa.String(length=20), nullable=True)
        batch_op.alter_column('station_id', existing_type=sa.String(length=64), nullable=True)
        batch_op.add_column(sa.Column('sscc', sa.String(length=18), nullable=True))
        batch_op.add_column(sa.Column('biz_location', sa.String(length=13), nullable=True))
        batch_op.add_column(sa.Column('epcis_id', sa.String(length=100), nullable=True))
        batch_op.create_index('ix_events_sscc', ['sscc', 'leaf_index'], unique=False)
        batch_op.create_index('ix_events_epcis_id', ['epcis_id'], unique=False)
        batch_op.create_index('ix_events_time', ['event_time'], unique=False)

    op.create_table(
        'event_units',
        sa.Column('gtin', sa.String(length=14), nullable=False),
        sa.Column('serial', sa.String(length=20), nullable=False),
        sa.Column('leaf_index', sa.BigInteger(), nullable=False),
        sa.Column('event_id', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['event_id'], ['events.event_id']),
        sa.PrimaryKeyConstraint('gtin', 'serial', 'leaf_index'),
    )
    op.execute(
        "INSERT INTO event_units (gtin, serial, leaf_index, event_id) "
        "SELECT gtin, serial, leaf_index, event_id FROM events"
    )

    op.create_table(
        'epcis_capture_jobs',
        sa.Column('capture_id', sa.String(length=40), nullable=False),
        sa.Column('participant_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('success', sa.Boolean(), nullable=False),
        sa.Column('event_count', sa.Integer(), nullable=False),
        sa.Column('errors', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['participant_id'], ['participants.id']),
        sa.PrimaryKeyConstraint('capture_id'),
    )
    with op.batch_alter_table('epcis_capture_jobs') as batch_op:
        batch_op.create_index(
            'ix_epcis_capture_jobs_participant_id', ['participant_id'], unique=False
        )


def downgrade() -> None:
    op.drop_table('epcis_capture_jobs')
    op.drop_table('event_units')
    op.execute("DELETE FROM events WHERE sscc IS NOT NULL OR station_id IS NULL")
    with op.batch_alter_table('events') as batch_op:
        batch_op.drop_index('ix_events_time')
        batch_op.drop_index('ix_events_epcis_id')
        batch_op.drop_index('ix_events_sscc')
        batch_op.drop_column('epcis_id')
        batch_op.drop_column('biz_location')
        batch_op.drop_column('sscc')
        batch_op.alter_column('station_id', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('serial', existing_type=sa.String(length=20), nullable=False)
        batch_op.alter_column('gtin', existing_type=sa.String(length=14), nullable=False)
    op.drop_table('containers')
    with op.batch_alter_table('units') as batch_op:
        batch_op.drop_index('ix_units_gtin_lot')
        batch_op.create_index('ix_units_gtin_lot', ['gtin', 'lot'], unique=False)
        batch_op.drop_index('ix_units_location')
        batch_op.drop_index('ix_units_parent_sscc')
        batch_op.drop_column('quarantined')
        batch_op.drop_column('parent_sscc')
        batch_op.drop_column('location_gln')
