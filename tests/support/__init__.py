"""Test support: a live server process and a ready-made supply chain."""
