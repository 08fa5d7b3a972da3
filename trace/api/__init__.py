"""The HTTP API (FastAPI): assembly in ``main``, dependencies in ``deps``, error mapping in
``errors``, one router per resource in ``routes``.

Importing this package installs the path-segment convertor (``paths``) before any router
module declares a route, so every ``{name}`` parameter receives the value its client encoded.
"""

from medtrace.api.paths import install_segment_convertor

install_segment_convertor()
