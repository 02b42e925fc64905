"""Regenerate docs/report-demo.png: the demo client's report, as headless Chromium shows it.

.venv/bin/python -m tests.screenshot        (or: make screenshot)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from tests import browser

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    """Save the demo export to a scratch history, write C-118's report, screenshot it."""
    alliance = [sys.executable, "-m", "alliance_cli"]
    with tempfile.TemporaryDirectory() as scratch:
        db, page_file = Path(scratch) / "h.sqlite", Path(scratch) / "C-118.html"
        subprocess.run([*alliance, "batch", str(ROOT / "examples" / "clinic_wai_sr.csv"), "-i",
                        "wai-sr", "--save", "--db", str(db), "-o", str(Path(scratch) / "o.csv"),
                        "-q"], check=False)  # fmt: skip
        subprocess.run([*alliance, "report", "C-118", "--db", str(db), "-o", str(page_file),
                        "-q"], check=True)  # fmt: skip
        page, proc, profile = browser.open_page(page_file)
        try:
            page.screenshot(ROOT / "docs" / "report-demo.png", width=1000)
        finally:
            browser.close(proc, profile)
    print(ROOT / "docs" / "report-demo.png")


if __name__ == "__main__":
    main()
