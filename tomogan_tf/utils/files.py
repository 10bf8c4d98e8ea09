"""Writing files so that readers never see a half-written one."""

from __future__ import annotations

import json
import os


def write_json_atomic(data: dict, path: str) -> None:
    """Write ``data`` as JSON under a temporary name in the same folder, then rename."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
