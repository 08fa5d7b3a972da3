"""The quick start's demo: every URL it prints verifies with the independent checker."""

from __future__ import annotations

import os
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
        assert len(urls) == 4, "".join(lines)

        for url in urls:
            checks = check_url(url)
            assert checks and all(c.status == "ok" for c in checks), checks
            assert httpx.get(url).status_code == 200
        dispensed, shelved, suspect, recalled = (
            httpx.get(url, headers={"Accept": "application/json"}).json() for url in urls
        )
        assert dispensed["unit"]["state"] == "dispensed"
        assert dispensed["temperature"]["series"], "the dispensed pack has a temperature history"
        assert [v["verdict"] for v in (shelved, suspect, recalled)] == [
            "genuine",
            "suspect",
            "recalled",
        ]
        _the_printed_log_ins_and_tokens_work("".join(lines), urls[0].split("/01/")[0])
    finally:
        demo.send_signal(signal.SIGINT)
        output, _ = demo.communicate(timeout=30)
    assert demo.returncode == 0, "".join(lines) + output


def _the_printed_log_ins_and_tokens_work(printed: str, base_url: str) -> None:
    """Each portal log-in the demo printed opens its participant's portal, and each token
    it printed is accepted by the API."""
    logins = re.findall(r"^\s+(\w+)\s+(\S+@\S+)\s+password (\S+)$", printed, re.MULTILINE)
    assert {role for role, _, _ in logins} == {"regulator", "pharmacy"}, printed
    for role, email, password in logins:
        with httpx.Client(base_url=base_url) as client:
            form = client.get("/portal/login").text
            csrf = re.search(r'name="csrf" value="([^"]+)"', form)
            assert csrf, form[:500]
            client.post(
                "/portal/login", data={"csrf": csrf[1], "email": email, "password": password}
            )
            page = client.get("/portal")
            assert page.status_code == 200 and "logout" in page.text.lower(), (role, page.text)
    tokens = re.findall(r"^\s+.+?\s+(mt_\S+)$", printed, re.MULTILINE)
    assert len(tokens) == 4, printed
    for token in tokens:
        me = httpx.get(f"{base_url}/api/v1/alerts", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
    assert "MEDTRACE_DATA_DIR=" in printed


@pytest.mark.slow
def test_the_demo_removes_its_temporary_folder_unless_kept(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    for flags, kept in (((), False), (("--keep",), True)):
        done = subprocess.run(
            [MEDTRACE, "demo", "--port", "0", "--units", "4", "--exit", *flags],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "open in a browser" not in done.stdout  # the server has stopped
        assert any(tmp_path.glob("medtrace-demo-*")) is kept, done.stdout
