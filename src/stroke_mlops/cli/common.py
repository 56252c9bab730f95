"""What every command shares: exit codes, the one-line errors, argument types."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class UsageError(Exception):
    """A problem with the user's input, reported as one line with exit code 2."""


def known_errors() -> tuple[type[BaseException], ...]:
    from stroke_mlops.data.dataset import RawDataError
    from stroke_mlops.data.suite_file import SuiteError
    from stroke_mlops.deploy.kserve_objects import DeployConfigError
    from stroke_mlops.monitoring.comparison_rule import ComparisonError
    from stroke_mlops.monitoring.feedback import FeedbackError
    from stroke_mlops.monitoring.monitor import MonitorError
    from stroke_mlops.monitoring.reference import ReferenceError
    from stroke_mlops.monitoring.replay import ReplayError
    from stroke_mlops.monitoring.retraining import RetrainingError
    from stroke_mlops.project import ProjectNotFoundError
    from stroke_mlops.registry.model_dir import ModelDirError
    from stroke_mlops.registry.signing import SignatureError
    from stroke_mlops.registry.uris import StorageError

    return (
        UsageError,
        RawDataError,
        SuiteError,
        ModelDirError,
        SignatureError,
        ProjectNotFoundError,
        StorageError,
        DeployConfigError,
        MonitorError,
        ReferenceError,
        FeedbackError,
        ComparisonError,
        RetrainingError,
        ReplayError,
        FileNotFoundError,
    )


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Make ``parser`` report a bad or missing argument as one line (exit 2), without the
    usage block argparse prints by default."""

    def error(message: str) -> None:
        parser.exit(EXIT_BAD_INPUT, f"error: {message} (see {parser.prog} --help)\n")

    setattr(parser, "error", error)  # noqa: B010 (an instance override, not a subclass)
    return parser


def iso_timestamp(text: str) -> datetime:
    """An ISO-8601 time for --since/--until, in UTC (UTC when no offset is given); a time that
    is not one, or cannot be shown in UTC with a day to spare, is refused (exit 2)."""
    shown = text[:40]
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        (moment - timedelta(days=2), moment + timedelta(days=2))  # the reader's partition slack
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"{shown!r} is not an ISO-8601 time (e.g. 2026-01-31T00:00:00Z)"
        ) from error
    except OverflowError as error:
        raise argparse.ArgumentTypeError(
            f"{shown!r} is too close to the calendar's ends (years 1 and 9999)"
        ) from error
    return moment
