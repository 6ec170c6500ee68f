"""Shared pytest configuration: real-I/O tests run on the global reactor via pytest-twisted."""
