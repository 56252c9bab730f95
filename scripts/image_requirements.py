"""Write the image's requirements: the lock without kserve-storage's unused storage backends.

    python scripts/image_requirements.py requirements/runtime.lock > wheelhouse/image.lock

The image needs kserve-storage only for ``stroke-mlops serve --model-uri s3://...`` and local
folders. kserve_storage 0.20 imports its Azure, Hugging Face and git (dulwich) clients inside
the functions that use them (``kserve_storage/kserve_storage.py``: top level imports only
certifi, requests and yaml), so those distributions, and whatever only they pull in, are left
out. Google Cloud Storage stays: kfp needs it. The Dockerfile installs the result with
``--no-deps`` and accepts only these omissions from ``pip check``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# kserve-storage's direct requirements that serve only the backends the image does not use.
UNUSED_STORAGE_BACKENDS = frozenset(
    {
        "azure-core",
        "azure-identity",
        "azure-storage-blob",
        "azure-storage-file-share",
        "dulwich",
        "hf-xet",
        "huggingface-hub",
    }
)
_LINE = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)==(?P<version>\S+)\s*(?:#\s*via\s+(?P<via>.*))?$")


def parse_lock(text: str) -> dict[str, tuple[str, set[str]]]:
    """name -> (pinned line, names of the distributions that require it)."""
    pins: dict[str, tuple[str, set[str]]] = {}
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        via = {
            part.strip().split(" ")[0]
            for part in (match.group("via") or "").split(",")
            if part.strip()
        }
        name, version = match.group("name"), match.group("version")
        pins[name.lower()] = (f"{name}=={version}", via)
    return pins


def omitted(pins: dict[str, tuple[str, set[str]]]) -> set[str]:
    """The backends, plus every pin required only by omitted pins (to a fixed point)."""
    dropped = {name for name in UNUSED_STORAGE_BACKENDS if name in pins}
    changed = True
    while changed:
        changed = False
        for name, (_, via) in pins.items():
            if name not in dropped and via and via <= dropped:
                dropped.add(name)
                changed = True
    return dropped


def main(argv: list[str]) -> int:
    pins = parse_lock(Path(argv[1]).read_text())
    dropped = omitted(pins)
    print(f"# {argv[1]} without kserve-storage's unused backends: {', '.join(sorted(dropped))}")
    kept = len(pins) - len(dropped)
    print(f"# written by scripts/image_requirements.py; kept {kept} of {len(pins)} pins")
    for name in sorted(pins):
        if name not in dropped:
            print(pins[name][0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
