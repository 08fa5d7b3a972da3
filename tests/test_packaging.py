"""A non-editable install works from any directory, despite the standard library's `trace`."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_the_wheel_installs_and_its_console_script_runs_elsewhere(tmp_path: Path) -> None:
    dist, venv, elsewhere = tmp_path / "dist", tmp_path / "venv", tmp_path / "elsewhere"
    elsewhere.mkdir()
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, ROOT, cwd=tmp_path)
    wheel = next(dist.glob("medtrace-*.whl"))
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp_path)
    # Dependencies come from the test environment; medtrace itself only from the wheel.
    (Path(site.strip()) / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel, cwd=tmp_path)

    located = run(
        python,
        "-c",
        "import medtrace, medtrace.ledger, trace; from importlib.resources import files;"
        "assert (files('medtrace.web') / 'templates' / 'verify.html').is_file();"
        "assert (files('medtrace.web') / 'static' / 'verify.js').is_file();"
        "from medtrace.web import i18n; assert i18n.environment(i18n.LANGUAGES[1])"
        ".get_template('error.html').render(language=i18n.LANGUAGES[1], switch={},"
        " static_url=str).count('无法识别此码') == 2;"
        "assert (files('medtrace.migrations') / 'script.py.mako').is_file();"
        "from medtrace.epcis import xml_binding as x; x.schema(x.EPCIS_1_2); x.schema(x.QUERY_2_0);"
        "print(medtrace.__file__); print(trace.__file__)",
        cwd=elsewhere,
    ).splitlines()
    assert located[0].startswith(str(venv)), "medtrace must come from the installed wheel"
    assert "site-packages" not in located[1], "`trace` must stay the standard library's"

    demo = run(
        venv / "bin" / "medtrace",
        "demo",
        "--port",
        "0",
        "--units",
        "4",
        "--exit",
        "--data-dir",
        tmp_path / "demo",
        cwd=elsewhere,
    )
    assert "/01/" in demo and "(dispensed)" in demo
