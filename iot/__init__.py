"""MQTT temperature sensors and the bridge into the capture path (not built yet)."""
