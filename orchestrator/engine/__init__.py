"""The container engine: the seam, its errors, and the docker-py engine.

``protocol``: what the orchestrator asks of an engine (``ContainerEngine``) and the
types it gets back; everything outside this package is typed against it.
``errors``: what an engine raises. ``stream``: reading the engine's streamed answers.
``dockerpy``: the docker-py implementation (``Engine``), with ``builds`` (images),
``runs`` (builder containers) and ``connection`` (what they share).

Nothing is imported here, so that naming the seam does not load the implementation.
"""
