"""The invoke tasks, gathered into the one collection `invoke` and `orchestrator` run.

Tasks are thin: read flags (orchestrator_cli.flags), call one library function, print
(orchestrator_cli.printing), and let orchestrator_cli.exits turn every error into one
line and its exit code (2 bad input, 1 failed, 130 interrupted). A new task goes in the
module of its kind (building, releasing, upkeep) and in the collection below.
"""

from __future__ import annotations

from orchestrator_cli.building import build, demo, fetch
from orchestrator_cli.parsing import OrchestratorCollection
from orchestrator_cli.releasing import publish, status, verify
from orchestrator_cli.upkeep import clean, manifest

namespace = OrchestratorCollection(manifest, build, fetch, demo, publish, verify, status, clean)
