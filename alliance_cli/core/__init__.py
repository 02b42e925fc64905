"""The pure core: instrument models, the scorer, the Score contract, change rules, errors.

Nothing here imports typer, rich, yaml or sqlite3, reads files or prints.
"""
