"""The one error type for bad user input, so every tool reports it the same way."""

from __future__ import annotations

import os


class InputError(Exception):
    """A problem with a file or value the user gave us.

    Command-line tools print it as one line and exit with code 2; nothing else
    (no traceback) is shown, because the fix is on the user's side.

    Example:
    >>> str(InputError("data.h5", "dataset 'train_gt' not found"))
    "data.h5: dataset 'train_gt' not found"
    """

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(problem if self.path is None else f"{self.path}: {problem}")


class WorkerLost(RuntimeError):
    """A worker of a multi-worker training stopped, so the job cannot go on.

    Not the user's input: the tools print it as one line and exit with code 1; the
    job resumes from the run's last checkpoint when every worker is started again.
    """
