"""The data gate: stop a run before any training when the data contract failed.

Kept apart from the GX run (``contract``) so the step that enforces it imports nothing heavy.
"""

from __future__ import annotations


class DataContractError(RuntimeError):
    """The raw data broke the data contract; the message lists every failure."""


def enforce_contract(passed: bool, failures: str) -> None:
    """Raise DataContractError (stopping the run) when the contract did not hold."""
    if not passed:
        raise DataContractError(f"the data contract failed:\n{failures}")
