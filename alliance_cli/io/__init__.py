"""Everything that touches bytes: instrument files, CSV in and out, atomic writes."""
