"""The session history: one store interface, SQLite and PostgreSQL, and the views on it."""
