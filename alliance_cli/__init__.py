"""alliance: score therapeutic alliance questionnaires."""

__version__ = "0.1.0"
