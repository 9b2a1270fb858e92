"""The store: listeners, pieces and listening events in a real database (SQLite by
default, PostgreSQL by URL), with Alembic migrations. Shared by the recommender and the
studio."""
