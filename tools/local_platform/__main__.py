"""``python -m tools.local_platform up|down|status [--dir DIR] [--timeout S]``: make platform-up."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.local_platform import control_plane, processes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.local_platform")
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument(
        "--dir",
        type=Path,
        default=control_plane.DEFAULT_DATA_DIR,
        help="data, certificates, logs and kubeconfig (local_outputs/platform)",
    )
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds the whole bring-up may take (180)")  # fmt: skip
    args = parser.parse_args(argv)
    layout = control_plane.Layout(args.dir.resolve())
    if args.action == "down":
        stopped = control_plane.down(layout)
        print(f"platform: stopped {', '.join(stopped) if stopped else 'nothing (none running)'}")
        return 0
    if args.action == "status":
        alive = processes.running(layout.directory) if layout.directory.is_dir() else []
        for entry in alive:
            print(f"{entry.name:<24} pid {entry.pid}  log {entry.log}")
        print(f"platform: {len(alive)} of {len(control_plane.BINARIES)} components running")
        return 0 if len(alive) == len(control_plane.BINARIES) else 1
    try:
        seconds = control_plane.up(layout, timeout=args.timeout)
    except (control_plane.PlatformError, processes.ComponentNotReadyError) as error:
        print(f"platform-up failed: {error}", file=sys.stderr)
        return 1
    if seconds:
        print(f"platform: up in {seconds:.1f}s; export KUBECONFIG={layout.kubeconfig}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
