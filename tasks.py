"""Invoke entry point for a checkout of this project: `invoke --list`.

The tasks live in the installed package (orchestrator_cli.tasks) so that the
`orchestrator` console script runs exactly the same ones outside the checkout.
"""

import sys

from orchestrator_cli.program import adapt_invoke
from orchestrator_cli.tasks import namespace

ns = namespace

# Loaded by the `invoke` executable: give it our parsing rules (space-separated names,
# did-you-mean, exit code 2 for a malformed command line). See program.adapt_invoke.
if "invoke.main" in sys.modules:
    adapt_invoke(sys.modules["invoke.main"].program)
