"""Counts said in words, as every message and report says them."""

from __future__ import annotations


def counted(n: int, noun: str, nouns: str | None = None) -> str:
    """A count and its noun, grouped and agreeing: "1 row", "2 rows", "1,000 rows"."""
    return f"{n:,} {noun if n == 1 else (nouns or noun + 's')}"
