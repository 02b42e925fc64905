"""Batch scoring: the row-accounting engine, its output sinks and the generated fast path."""
