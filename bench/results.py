"""Sections of ``bench/RESULTS.md``: each between its own markers, replaced whole when re-run.

A benchmark that writes its figures into RESULTS.md calls `write_section`, which
replaces the text between ``<!-- key:start -->`` and ``<!-- key:end -->`` (or appends
the section) and renames a temporary file over the old one, so an interrupted run
never leaves half a file. `provenance` is the line every generated section starts with:
when, on what machine and at which commit its figures were measured.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
CODE = ("tomogan_tf", "bench/*.py", "bench/*.sh", "data_tools", "setup.cfg")


def markers(key: str) -> tuple[str, str]:
    return f"<!-- {key}:start -->", f"<!-- {key}:end -->"


def write_section(path: str | os.PathLike, key: str, body: str) -> None:
    """Put ``body`` between ``key``'s markers in ``path``, replacing what was there."""
    start, end = markers(key)
    section = f"{start}\n{body.strip()}\n{end}"
    path = Path(path)
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def machine() -> str:
    """The CPU model, cores, memory and native 16-bit support, as one phrase."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    native = [name for flag, name in (("avx512_bf16", "AVX-512 BF16"), ("amx_bf16", "AMX"))
              if flag in flags]  # fmt: skip
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory = float("nan")
    bf16 = "native bfloat16 (" + ", ".join(native) + ")" if native else "no native bfloat16"
    return f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB, {bf16}"


def commit() -> str:
    """The checkout's commit, marked ``+changes`` where its code differs from it.

    Code is the package, the benchmarks, data_tools and setup.cfg; editing the docs
    while a benchmark runs changes no figure."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", *CODE)
    return head + ("+changes" if dirty else "")


def provenance() -> str:
    import importlib.metadata as meta

    def version(name: str) -> str:
        try:
            return meta.version(name)
        except meta.PackageNotFoundError:
            return "absent"

    today = datetime.date.today().isoformat()
    return (
        f"Measured {today} at commit {commit()} on {machine()}; TensorFlow "
        f"{version('tensorflow')}, Keras {version('keras')}."
    )
