"""Options several command groups share."""

from __future__ import annotations

from typing import Annotated

import typer

TokenOption = Annotated[
    str, typer.Option(envvar="MEDTRACE_TOKEN", help="The participant's API token.")
]
UrlOption = Annotated[str | None, typer.Option(help="Service URL (default MEDTRACE_PUBLIC_URL).")]
