"""Test helpers: fixture git repositories, the fake Docker client, CLI runners."""
