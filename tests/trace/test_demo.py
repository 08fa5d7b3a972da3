"""The quick start's demo: every URL it prints verifies with the independent checker."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from independent_checker import check_url

MEDTRACE = Path(sys.executable).parent / "medtrace"


@pytest.mark.slow
def test_the_demo_prints_verify_urls_that_check_out_and_serves_until_ctrl_c(
    tmp_path: Path,
) -> None:
    demo = subprocess.Popen(
        [MEDTRACE, "demo", "--port", "0", "--units", "6", "--data-dir", tmp_path],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert demo.stdout is not None
    lines: list[str] = []
    try:
        for line in demo.stdout:
            lines.append(line)
            if "press Ctrl-C" in line:
                break
        urls = re.findall(r"http://127\.0\.0\.1:\d+/01/\S+", "".join(lines))
        assert len(urls) == 3, "".join(lines)

        for url in urls:
            checks = check_url(url)
            assert checks and all(c.status == "ok" for c in checks), checks
            assert httpx.get(url).status_code == 200
        dispensed = httpx.get(urls[0], headers={"Accept": "application/json"}).json()
        assert dispensed["unit"]["state"] == "dispensed"
        assert dispensed["temperature"]["series"], "the dispensed pack has a temperature history"
    finally:
        demo.send_signal(signal.SIGINT)
        output, _ = demo.communicate(timeout=30)
    assert demo.returncode == 0, "".join(lines) + output
