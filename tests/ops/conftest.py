"""The extremes suite's counts, printed in the terminal summary of any run that includes it."""

from __future__ import annotations

import pytest

_LINES = pytest.StashKey[list[str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_LINES] = []


@pytest.fixture
def extremes_report(request: pytest.FixtureRequest) -> list[str]:
    """Lines a test adds to the run's ``extremes`` summary section (its counts)."""
    return request.config.stash[_LINES]


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    lines = config.stash.get(_LINES, [])
    if lines:
        terminalreporter.section("extremes")
        for line in lines:
            terminalreporter.write_line(line)
