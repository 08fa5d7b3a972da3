"""Scan-station client: builds custody events, signs them with the station's key and sends
them to the capture API. A client of the API only, never of the database."""
