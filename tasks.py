"""Invoke entry point for a checkout of this project: `invoke --list`.

The tasks live in the installed package (orchestrator_cli.tasks) so that the
`orchestrator` console script runs exactly the same ones outside the checkout.
"""

from orchestrator_cli.tasks import namespace

ns = namespace
