"""The portal: the GS1 Digital Link resolver and verify page, served by the same app as the
API and reading through the same services."""
