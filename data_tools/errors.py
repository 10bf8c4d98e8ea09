"""The one error type of data_tools, so every CLI can report bad settings the same way.

The library raises `CTDatasetError` for settings it cannot honour (sizes, doses, paths);
the CLIs (`data_tools.cli.run_main`) turn it into one ``<prog>: error: ...`` line on
stderr and exit status 2. It is a ValueError, so library callers may catch either.
"""

from __future__ import annotations

__all__ = ["CTDatasetError", "OutputExistsError"]


class CTDatasetError(ValueError):
    """Invalid settings for the dataset generator (the CLI reports these and exits 2)."""


class OutputExistsError(CTDatasetError):
    """The output file exists and overwriting was not requested."""
