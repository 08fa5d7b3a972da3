"""The HTTP header names medtrace's clients and server agree on."""

#: Sent by a station's outbox on a batch it held while offline: the capture API then accepts
#: signed times older than its replay window (the batch is still checked for replays).
CATCH_UP_HEADER = "Medtrace-Offline-Catch-Up"

#: On every webhook delivery: ``t=<unix seconds>,v1=<hex HMAC-SHA256>`` of ``t.body`` with
#: the subscription's secret, for the receiver to check.
SIGNATURE_HEADER = "Medtrace-Signature"

#: The EPCIS 2.0 REST binding's header for a subscription delivery's signature: the same value
#: as ``SIGNATURE_HEADER``, keyed with the subscription's ``signatureToken``.
EPCIS_SIGNATURE_HEADER = "GS1-Signature"
