"""searches, events and judgments

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "searches",
        sa.Column("query_id", sa.String(32), primary_key=True),
        sa.Column("at", sa.Float, nullable=False, index=True),
        sa.Column("query", sa.Text),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("match", sa.String(8), nullable=False),
        sa.Column("results", sa.Text, nullable=False),
        sa.Column("teams", sa.Text),
        sa.Column("took_ms", sa.Float, nullable=False),
        sa.Column("client_id", sa.String(200)),
        sa.Column("source", sa.String(16), nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("query_id", sa.String(32), nullable=False, index=True),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(200)),
        sa.Column("at", sa.Float, nullable=False, index=True),
    )
    op.create_table(
        "judgments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("query", sa.Text, nullable=False),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.Column("grade", sa.Integer, nullable=False),
        sa.Column("rater", sa.String(64), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.UniqueConstraint("query", "item_id", "rater", name="one_grade_per_rater"),
    )
    op.create_index("judgments_by_query", "judgments", ["query"])


def downgrade() -> None:
    op.drop_table("judgments")
    op.drop_table("events")
    op.drop_table("searches")
