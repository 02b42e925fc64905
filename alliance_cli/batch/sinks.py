"""Where scored rows go: CSV lines, NDJSON lines, or one JSON array, streamed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import IO, Any


class Sink:
    """Where scored rows go."""

    def begin(self, header: list[str]) -> None:
        """Called once before the first row."""

    def csv_row(self, cells: list[str]) -> None:
        """Write one CSV row (CSV sinks only)."""

    def result(self, data: dict[str, Any]) -> None:
        """Write one Score as JSON data (JSON sinks only)."""

    def end(self) -> None:
        """Called once after the last row."""

    def keyed(self, values: Sequence[str | float | None], client: str, session: str) -> None:
        """Keep one row's answers in item order (answer sinks only): each a cell text the
        Scorer's answer tables know, or a keyed value, or None when missing; with the row's
        client id and session number as text ("" where the layout has none)."""

    wants_json = False
    wants_keyed = False


class CsvSink(Sink):
    """CSV output: pass-through columns then score columns."""

    def __init__(self, handle: IO[str], header: bool = True) -> None:
        from alliance_cli.io.csvout import CsvWriter

        self.handle = handle
        self.header = header  # False: rows only (a --jobs worker's part of the output)
        self.writer = CsvWriter(handle)
        self.csv_row = self.writer.writerow  # type: ignore[method-assign]
        self.line = self.writer.line

    def begin(self, header: list[str]) -> None:
        """Write the header (unless rows only)."""
        if self.header:
            self.writer.writerow(header)


class JsonSink(Sink):
    """NDJSON (one Score per line) or a JSON array, streamed."""

    wants_json = True

    def __init__(self, handle: IO[str], array: bool) -> None:
        self.handle = handle
        self.array = array
        self.count = 0

    def begin(self, header: list[str]) -> None:
        """Open the array."""
        if self.array:
            self.handle.write("[")

    def result(self, data: dict[str, Any]) -> None:
        """Write one Score."""
        text = json.dumps(data, ensure_ascii=False)
        if self.array:
            self.handle.write(("\n  " if self.count == 0 else ",\n  ") + text)
        else:
            self.handle.write(text + "\n")
        self.count += 1

    def end(self) -> None:
        """Close the array."""
        if self.array:
            self.handle.write("\n]\n" if self.count else "]\n")


class FhirSink(Sink):
    """FHIR Observations, one per scale, one resource per line (FHIR bulk-data NDJSON),
    each validated with fhir.resources; ``derivedFrom`` the QuestionnaireResponse when the
    row came from one."""

    wants_json = True

    def __init__(self, handle: IO[str], bundle: str | None = None) -> None:
        from alliance_cli.io import fhir

        fhir.models()  # says how to install the extra before anything is written
        self.handle = handle
        # --bundle transaction: every Observation kept, written at the end as one Bundle
        self.kept: list[dict[str, Any]] | None = [] if bundle == "transaction" else None

    def result(self, data: dict[str, Any]) -> None:
        """Write one Score's Observations."""
        from alliance_cli.io import fhir

        columns = (data.get("source") or {}).get("columns", {})
        subject = (columns.get("subject") or None, columns.get("subject_system") or None)
        observations = fhir.observations(data, columns.get("response") or None, *subject)
        if self.kept is not None:
            self.kept += observations
            return
        for obs in observations:
            self.handle.write(fhir.dumps(obs) + "\n")

    def end(self) -> None:
        """With --bundle transaction: write the one Bundle of every Observation."""
        from alliance_cli.io import fhir

        if self.kept is not None:
            self.handle.write(fhir.dumps(fhir.bundle(self.kept, "transaction"), indent=2) + "\n")
