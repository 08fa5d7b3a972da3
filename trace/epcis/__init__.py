"""GS1 EPCIS 2.0 and CBV 2.0: every medtrace event as an EPCIS event, and back.

- ``vocabulary``: each medtrace event type as an EPCIS event type, action, CBV business step
  and disposition;
- ``epc``: EPC URIs (``urn:epc:id:sgtin:…``, ``…:sscc:…``, ``…:sgln:…``) and GS1 Digital Link
  URIs, in and out;
- ``hashing``: the CBV 2.0 event hash (``ni:///sha-256;…?ver=CBV2.0``), medtrace's EPCIS
  event ids;
- ``document``: an event as EPCIS 2.0 JSON-LD, and the EPCISDocument / EPCISQueryDocument
  around a list of them;
- ``members``: which members a captured event may carry, and what every reader sees of it;
- ``capture`` and ``query``: the REST binding's capture (documents, single events; each
  event kept as sent) and SimpleEventQuery (events answered as they were captured);
- ``xml_capture`` / ``xml_query``: EPCIS XML (1.2 and 2.0) in as the JSON-LD document capture
  takes, and the JSON-LD query answer out as EPCIS 2.0 XML; ``xml_binding`` holds what both
  share (the vendored XSDs, the safe parser, the element ↔ member tables).
"""
