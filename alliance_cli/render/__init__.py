"""Drawing for people: rich tables and panels for the terminal."""
