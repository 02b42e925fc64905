"""alliance: score therapeutic alliance questionnaires."""

__version__ = "0.2.0"
