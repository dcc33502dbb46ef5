"""The database: engine and sessions, the models, migrations, backup, moving to PostgreSQL."""
