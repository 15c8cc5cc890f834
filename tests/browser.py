"""Open an HTML file in headless Chromium and report what a reader would see.

The page is loaded from a copy with a small probe script prepended; after load, the probe
writes JSON (image natural sizes, table count, errors) into the DOM, which Chromium dumps.
Console errors are also read from Chromium's log.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  window.__errors.push(String(e.message || (e.target && (e.target.src || e.target.href)) || e));
}, true);
var __origError = console.error;
console.error = function () { window.__errors.push(Array.from(arguments).join(' '));
  __origError.apply(console, arguments); };
window.addEventListener('load', function () {
  var imgs = Array.from(document.images).map(function (i) {
    return {alt: i.alt, complete: i.complete, naturalWidth: i.naturalWidth};
  });
  var out = {images: imgs, tables: document.querySelectorAll('table').length,
             title: document.title, errors: window.__errors};
  var pre = document.createElement('pre');
  pre.id = '__probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium() -> str | None:
    """Path of a Chromium binary, if installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def inspect_page(html_path: Path, timeout: float = 60.0) -> dict[str, Any]:
    """Load ``html_path`` in headless Chromium; return the probe's findings.

    Keys: ``images`` (alt, complete, naturalWidth), ``tables``, ``title``, ``errors``
    (JS and resource errors seen by the page), ``console_errors`` (from Chromium's log).
    """
    binary = chromium()
    if binary is None:
        raise FileNotFoundError("chromium is not installed")
    text = html_path.read_text(encoding="utf-8")
    probed = re.sub(r"<head>", "<head>" + PROBE, text, count=1)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / html_path.name
        page.write_text(probed, encoding="utf-8")
        proc = subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                f"--user-data-dir={tmp}/profile",
                "--enable-logging=stderr",
                "--v=0",
                "--virtual-time-budget=10000",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    match = re.search(r'<pre id="__probe">(.*?)</pre>', proc.stdout, re.S)
    if match is None:
        raise RuntimeError(
            f"chromium produced no probe output (rc={proc.returncode}):\n{proc.stderr[-2000:]}"
        )
    import html as _html

    found: dict[str, Any] = json.loads(_html.unescape(match.group(1)))
    found["console_errors"] = [
        line
        for line in proc.stderr.splitlines()
        if "CONSOLE" in line and ("ERROR" in line or "Uncaught" in line)
    ]
    return found


def screenshot(
    html_path: Path, png_path: Path, width: int = 1280, height: int = 2400, timeout: float = 60.0
) -> Path:
    """Render ``html_path`` in headless Chromium to a PNG of ``width`` x ``height`` pixels
    (the top of the page), for a person to look at."""
    binary = chromium()
    if binary is None:
        raise FileNotFoundError("chromium is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                f"--user-data-dir={tmp}/profile",
                f"--window-size={width},{height}",
                f"--screenshot={png_path}",
                Path(html_path).resolve().as_uri(),
            ],
            capture_output=True,
            timeout=timeout,
            check=True,
        )
    return Path(png_path)
