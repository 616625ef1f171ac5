"""Alembic environment for the clinic database (run from :func:`vrexposure.clinic.store.upgrade`).

The caller hands over an open connection in ``config.attributes["connection"]``, so the URL
(which may hold a password) never goes through Alembic's ini interpolation.
"""

from alembic import context

from vrexposure.clinic.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
