"""The wire formats both sides of medtrace speak and neither owns.

Stations, sensors and bridges (clients) and the server import these modules; they import
nothing of either side: GS1 identifiers, the station's signed envelope, the sensor's signed
reading and its MQTT topics and client, Ed25519 keys and their files, the HTTP header names,
the verdict vocabulary, and the HTTP client every participant's tool starts from.
"""
