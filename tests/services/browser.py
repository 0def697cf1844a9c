"""Debian's Chromium, headless, for tests that look at what the ledger makes.

The flags are the ones this closed network needs: without the
background-networking ones Chromium keeps trying to reach Google's hosts.
As root it needs --no-sandbox.  A missing browser fails the test with one
line (`make test` installs Debian's chromium and poppler-utils).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["CHROMIUM_FLAGS", "chromium", "print_to_pdf", "BrowserMissing"]

PRINT_TIMEOUT_S = 60  # one page printed to PDF, browser start included

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
)


class BrowserMissing(RuntimeError):
    """Chromium is not installed (apt-get install chromium)."""


def chromium() -> str:
    """The browser binary: $LEDGER_TEST_CHROMIUM, else Debian's chromium."""
    found = os.environ.get("LEDGER_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise BrowserMissing("no chromium on PATH: apt-get install chromium (make test does), "
                             "or set LEDGER_TEST_CHROMIUM")
    return found


def print_to_pdf(page: Path, pdf: Path) -> Path:
    """Print ``page`` (a local HTML file) as Chromium prints it, to ``pdf``."""
    with tempfile.TemporaryDirectory(prefix="ledger-chromium-") as profile:
        result = subprocess.run(
            [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--no-pdf-header-footer",
             f"--print-to-pdf={pdf}", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=PRINT_TIMEOUT_S,
        )
    if result.returncode != 0 or not pdf.exists():
        raise RuntimeError(f"chromium could not print {page} (exit {result.returncode}): {result.stderr[-2000:]}")
    return pdf
