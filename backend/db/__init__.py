"""Service database: SQLAlchemy models, engine factory and Alembic migration runner."""
