"""Headless Chromium, driven over the DevTools protocol: load a page, collect console
messages, exceptions and network requests, evaluate JavaScript, take a screenshot.

Debian's ``chromium`` package (``.ci/run`` installs it when missing). Without it the browser
tests skip, unless ``ALLIANCE_REQUIRE_BROWSER=1`` (set in CI), where they fail instead.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def chromium() -> str:
    """The Chromium binary, or skip (fail in CI) when there is none."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("ALLIANCE_REQUIRE_BROWSER") == "1":
        pytest.fail("no chromium on PATH, and ALLIANCE_REQUIRE_BROWSER=1")
    pytest.skip("no chromium on PATH (apt-get install chromium)")
    raise AssertionError  # unreachable


class Page:
    """One loaded page and what happened while it loaded."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0
        self.console: list[str] = []  # console messages and log entries of level error
        self.errors: list[str] = []  # uncaught exceptions
        self.requests: list[str] = []  # every URL the page asked for

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command and wait for its result (recording events meanwhile)."""
        self.next_id += 1
        ident = self.next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self._event(message)

    def wait_for(self, event: str, timeout: float = 20) -> None:
        """Record events until one named event arrives."""
        deadline = time.monotonic() + timeout
        self.ws.settimeout(timeout)
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            self._event(message)
            if message.get("method") == event:
                return
        raise TimeoutError(event)

    def _event(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled":
            self.console.append(f"{params.get('type')}: {params.get('args')}")
        elif method == "Runtime.exceptionThrown":
            self.errors.append(str(params.get("exceptionDetails")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            self.console.append(str(params["entry"].get("text")))
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])

    def js(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def screenshot(self, path: Path, width: int = 1100) -> None:
        """A PNG of the whole page."""
        height = int(self.js("document.documentElement.scrollHeight"))
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)  # fmt: skip
        shot = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))


def open_page(html_file: Path) -> tuple[Page, subprocess.Popen[bytes], str]:
    """Start Chromium, load the file, and return the page when it has loaded."""
    websocket = pytest.importorskip("websocket")  # websocket-client, a test extra

    profile = tempfile.mkdtemp(prefix="alliance-chromium-")
    proc = subprocess.Popen(
        [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--no-default-browser-check", "--disable-extensions", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    port = None
    deadline = time.monotonic() + 30
    while port is None and time.monotonic() < deadline:
        line = proc.stderr.readline().decode(errors="replace")
        found = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
        if found:
            port = int(found.group(1))
        elif not line and proc.poll() is not None:
            break
    if port is None:
        proc.kill()
        raise RuntimeError("chromium did not start its DevTools endpoint")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
        targets = json.load(answer)
    page_ws = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
    page = Page(websocket.create_connection(page_ws, timeout=20, suppress_origin=True))
    for domain in ("Runtime", "Log", "Network", "Page"):
        page.send(f"{domain}.enable")
    url = html_file.resolve().as_uri()
    page.send("Page.navigate", url=url)
    page.wait_for("Page.loadEventFired")
    time.sleep(0.3)  # late console messages
    page.js("1")  # drain events up to now
    return page, proc, profile


def close(proc: subprocess.Popen[bytes], profile: str) -> None:
    """Stop Chromium and remove its profile."""
    proc.kill()
    proc.wait(timeout=10)
    shutil.rmtree(profile, ignore_errors=True)


AXE_VERSION = "4.14.1"
AXE_FILE = Path(__file__).resolve().parents[1] / ".cache/axe/node_modules/axe-core/axe.min.js"


def axe_source() -> str:
    """axe-core's script (``make test`` installs it with npm; CI must have it)."""
    if AXE_FILE.is_file():
        return AXE_FILE.read_text(encoding="utf-8")
    if os.environ.get("ALLIANCE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"no {AXE_FILE} (npm install --prefix .cache/axe axe-core@{AXE_VERSION})")
    pytest.skip(f"axe-core not installed ({AXE_FILE}; make test installs it with npm)")
    raise AssertionError  # unreachable


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on the loaded page (rule id, impact, the nodes' targets)."""
    page.send("Runtime.evaluate", expression=axe_source())
    result = page.send(
        "Runtime.evaluate",
        expression="axe.run(document).then(r => r.violations.map(v => ({id: v.id, "
        "impact: v.impact, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})))",
        awaitPromise=True,
        returnByValue=True,
    )
    return list(result["result"].get("value") or [])


def set_width(page: Page, width: int, height: int = 900) -> None:
    """Lay the page out at this viewport width (a phone is 390)."""
    page.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
              deviceScaleFactor=1, mobile=width < 600)  # fmt: skip


def pdf_pages(page: Page) -> int:
    """How many A4 pages the page prints to."""
    printed = page.send("Page.printToPDF", paperWidth=8.27, paperHeight=11.69,
                        preferCSSPageSize=True)  # fmt: skip
    data = base64.b64decode(printed["data"])
    return len(re.findall(rb"/Type\s*/Page[^s]", data))


@contextlib.contextmanager
def opened(html_file: Path) -> Iterator[Page]:
    """A page in Chromium for the length of a ``with`` block; Chromium stopped after it."""
    page, proc, profile = open_page(html_file)
    try:
        yield page
    finally:
        close(proc, profile)
