"""Alembic's entry: mmsearch hands it an open connection (feedback/database.py), so no URL lives in a config file."""

from alembic import context

from mmsearch.feedback.records import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
