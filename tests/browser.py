"""Headless Chromium for the report's tests: the DOM a page gives, what it logs to the console,
and a screenshot (Debian's ``chromium``; ``.ci/run`` installs it where it is missing).

``python tests/browser.py docs/report.png`` writes the screenshot of the demo fleet's report
that the README shows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WIDTH = 1280
TIMEOUT = 180  # seconds for one browser run, on a loaded 2-core machine

# Put first in a copy of the page (never in the report itself, which has no script): records
# every error the page raises or any resource that fails to load, and where each chart's
# drawings (its <svg> elements) are.
PROBE = """<script>
(function () {
  var root = document.documentElement, errors = [];
  function note(text) { errors.push(String(text)); root.setAttribute("data-probe-errors", JSON.stringify(errors)); }
  window.addEventListener("error", function (e) { note(e.message || ("failed to load " + (e.target && (e.target.src || e.target.href)))); }, true);
  window.addEventListener("load", function () {
    var boxes = {};
    document.querySelectorAll("figure.chart").forEach(function (figure) {
      boxes[figure.id] = Array.prototype.map.call(figure.querySelectorAll("svg"), function (svg) {
        var r = svg.getBoundingClientRect();
        return {left: r.left + scrollX, top: r.top + scrollY, width: r.width, height: r.height};
      });
    });
    root.setAttribute("data-probe-boxes", JSON.stringify(boxes));
    root.setAttribute("data-probe-height", String(Math.ceil(document.documentElement.scrollHeight)));
    root.setAttribute("data-probe-errors", JSON.stringify(errors));
  });
})();
</script>"""


def find_browser() -> str | None:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(browser: str, page: Path, *options: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="fastmatch-chromium-") as profile:
        command = [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            "--force-device-scale-factor=1", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
            *options, page.resolve().as_uri(),
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=True)


def console_messages(stderr: str) -> list[str]:
    """What the page wrote to the console (errors, warnings, logs), as Chromium logs it."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def dump_dom(browser: str, page: Path, height: int = 2000) -> tuple[str, list[str]]:
    """The DOM once the page has loaded, and its console messages."""
    done = _run(browser, page, f"--window-size={WIDTH},{height}", "--dump-dom")
    return done.stdout, console_messages(done.stderr)


def probe(browser: str, page: Path, work: Path) -> dict:
    """Load a copy of ``page`` with :data:`PROBE` in it: its errors, chart boxes and height."""
    copy = work / "probed.html"
    copy.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    dom, console = dump_dom(browser, copy)

    def attribute(name: str) -> str:
        found = re.search(rf'{name}="([^"]*)"', dom)
        assert found, f"the probe left no {name}: did the page load?"
        return found.group(1).replace("&quot;", '"').replace("&amp;", "&")

    return {
        "errors": json.loads(attribute("data-probe-errors")),
        "boxes": json.loads(attribute("data-probe-boxes")),
        "height": int(attribute("data-probe-height")),
        "console": console,
    }


def screenshot(browser: str, page: Path, png: Path, height: int) -> list[str]:
    """A screenshot of the page at WIDTH x height; returns its console messages."""
    done = _run(browser, page, f"--window-size={WIDTH},{height}", f"--screenshot={png.resolve()}")
    return console_messages(done.stderr)


def _demo_screenshot(png: Path) -> None:
    """The demo fleet's report, whole, as the README shows it."""
    browser = find_browser()
    if browser is None:
        sys.exit("no chromium: apt-get install -y chromium")
    root = Path(__file__).resolve().parent.parent
    data = "src/fastmatch/data/"  # named from the repository's root, as the page shows them
    with tempfile.TemporaryDirectory() as work:
        page = Path(work) / "report.html"
        subprocess.run(
            [sys.executable, "-m", "fastmatch", "report", data + "demo_sources.jsonl", data + "demo_targets.jsonl", "-o", str(page)],
            check=True, cwd=root, env={**os.environ, "PYTHONPATH": str(root / "src")},
        )
        height = probe(browser, page, Path(work))["height"]
        screenshot(browser, page, png, height)


if __name__ == "__main__":
    _demo_screenshot(Path(sys.argv[1]))
