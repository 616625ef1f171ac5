"""The clinic record: patients, treatment courses, personalised hierarchies, the session
index, questionnaire results and notes, in one database (SQLite by default, PostgreSQL for
several treatment rooms). See ``store.py`` for the API and ``index.py`` for reindexing."""

from .store import (
    DATABASE_URL_ENV,
    ClinicStore,
    IndexedSession,
    StoreError,
    database_exists,
    database_url,
    open_store,
    upgrade,
)

__all__ = ["DATABASE_URL_ENV", "ClinicStore", "IndexedSession", "StoreError",
           "database_exists", "database_url", "open_store", "upgrade"]
