"""Store fixtures parametrized over both engines: each test runs on SQLite and PostgreSQL.

They live in ``storesupport`` so that test folders outside this one can use them too.
"""

from storesupport import engine, place, store

__all__ = ["engine", "place", "store"]
