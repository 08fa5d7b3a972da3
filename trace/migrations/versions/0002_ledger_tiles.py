"""ledger: stored tree (tlog tiles), integrated size, witness cosignatures

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

The tree of the leaves already covered by a checkpoint is built here, so that the stored
tree's size always equals the latest checkpoint's size.

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

from medtrace import ledger


# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('ledger_tiles',
    sa.Column('level', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('idx', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hashes', sa.LargeBinary(), nullable=False),
    sa.Column('inner_nodes', sa.LargeBinary(), nullable=True),
    sa.PrimaryKeyConstraint('level', 'idx')
    )
    ledger_tree = op.create_table('ledger_tree',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.bulk_insert(ledger_tree, ledger.initial_tree_rows())
    op.create_table('ledger_cosignatures',
    sa.Column('size', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('witness', sa.Text(), nullable=False),
    sa.Column('line', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('size', 'witness')
    )
    conn = op.get_bind()
    if conn.dialect.name == 'sqlite':
        # INTEGER PRIMARY KEY is SQLite's rowid: leaves are stored in one B-tree, not two.
        with op.batch_alter_table('ledger_leaves', recreate='always') as batch_op:
            batch_op.alter_column('idx', existing_type=sa.BigInteger(), type_=sa.Integer(),
                                  existing_nullable=False, autoincrement=False)
    latest = conn.execute(sa.text('SELECT max(size) FROM ledger_checkpoints')).scalar()
    if latest:
        ledger.integrate(conn, limit=int(latest))


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('ledger_cosignatures')
    op.drop_table('ledger_tree')
    op.drop_table('ledger_tiles')
