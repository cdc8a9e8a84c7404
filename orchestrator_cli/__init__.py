"""Command-line face of the orchestrator: invoke tasks and the console script.

Kept apart from ``orchestrator/`` so the library never imports invoke, prints or exits.
"""
