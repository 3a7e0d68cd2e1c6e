"""The hash store: SQLAlchemy models, the engine factory and Alembic migrations.

Only hashes and metadata are stored, never media. Open one with :func:`open_store`.
"""

from ncii.store.engine import Store, open_store

__all__ = ["Store", "open_store"]
