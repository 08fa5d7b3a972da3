"""HL7 FHIR R4 interface for hospital information systems (read and search).

A hospital system asks for what it knows: a UDI from a device label, a lot number from a
recall notice, the dispenses of a day. medtrace answers with standard resources built from
its custody records, every one constructed through the ``fhir.resources`` models so that it
is valid by construction:

- ``Device`` for each serialised unit (udiCarrier with deviceIdentifier, carrierHRF and
  carrierAIDC; lot, serial, expiry, status),
- ``Medication`` for each lot of a product (code = GTIN, batch lot number and expiry),
- ``MedicationDispense`` from dispense events, ``SupplyDelivery`` from receipts,
- ``Provenance`` for every event, pointing at its ledger leaf and carrying the station's
  signature, so a hospital can check the record against the public log,
- ``Organization`` and ``Location`` from participants' GLNs.

The models are ``fhir.resources.R4B``: the package's nearest release to R4 (4.0.1), and the
same as R4 for every resource above.
"""
