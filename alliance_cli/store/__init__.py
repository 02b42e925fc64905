"""The local session history: the SQLite store and the views built on it."""
