"""MQTT temperature sensors and the bridge into the capture path.

``payloads`` defines the signed reading (RFC 8785 + Ed25519) and its topic, ``simulator`` the
simulated loggers, ``bridge`` the exactly-once relay from the broker into
``POST /api/v1/readings``, ``embedded`` the demo's in-process broker, ``errors`` this part's
errors and ``cli`` the ``medtrace sensor`` and ``medtrace bridge`` commands.
"""
