"""The package as a library and its tools as commands: what importing and starting them does.

A notebook imports several tools' modules together and must keep its own environment
and stderr; each tool starts the same way as ``python -m tomogan_tf.<tool>`` and as
its console script (``tomogan-<tool>``), and reports bad input in one line with exit
code 2 either way.
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import sysconfig

import pytest
from conftest import ROOT, run_module

TOOLS = ("train", "denoise", "evaluate", "export", "reconstruct")
REQUIRED_FLAG = {"train": "--h5", "denoise": "--input", "evaluate": "--h5", "export": "--out"}


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``python -c code`` in a fresh interpreter with the repository importable."""
    full_env = {**os.environ, "PYTHONPATH": ROOT, **env}
    full_env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def console_scripts() -> dict[str, str]:
    """``name -> module:function`` from setup.cfg's ``console_scripts``."""
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    lines = config["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=")) for line in lines)


def test_all_tool_modules_import_together_without_tensorflow():
    result = python(
        "import sys\n"
        "import tomogan_tf.denoise, tomogan_tf.evaluate, tomogan_tf.train, tomogan_tf.export\n"
        "from absl import flags\n"
        "assert 'tensorflow' not in sys.modules, 'a tool module imported TensorFlow'\n"
        "assert 'input' not in flags.FLAGS, 'a tool module defined its flags on import'\n"
    )
    assert result.returncode == 0, result.stderr


def test_importing_the_package_leaves_environment_and_stderr_alone():
    result = python(
        "import os, sys\n"
        "env, fd2 = dict(os.environ), os.fstat(2)\n"
        "import tomogan_tf\n"
        "after = os.fstat(2)\n"
        "assert dict(os.environ) == env, set(os.environ.items()) ^ set(env.items())\n"
        "assert (after.st_dev, after.st_ino) == (fd2.st_dev, fd2.st_ino), 'fd 2 was redirected'\n"
        "assert 'tensorflow' not in sys.modules\n"
        "os.write(2, b'still here')\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "still here"


def test_public_names_load_on_first_use():
    result = python(
        "import sys, tomogan_tf\n"
        "from tomogan_tf import Denoiser, build_generator\n"
        "from tomogan_tf.inference import Denoiser as D, evaluate\n"
        "from tomogan_tf.evaluate import evaluate as old_evaluate\n"
        "assert Denoiser is D and old_evaluate is evaluate and callable(build_generator)\n"
        "assert 'Denoiser' in dir(tomogan_tf)\n"
    )
    assert result.returncode == 0, result.stderr


def test_another_keras_backend_is_refused_in_one_clear_message():
    result = python("import tomogan_tf", KERAS_BACKEND="jax")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: tomogan_tf needs the TensorFlow backend of Keras")
    assert "'jax'" in last and "KERAS_BACKEND=tensorflow" in last


def test_every_tool_has_a_console_script():
    scripts = console_scripts()
    assert scripts == {f"tomogan-{tool}": f"tomogan_tf.{tool}:run" for tool in TOOLS}
    # The scripts pip generated at the last install (a stale tomogan_tf.egg-info in
    # the source tree can hide the installed metadata, so look at the files).
    folder = sysconfig.get_path("scripts")
    if not os.path.exists(os.path.join(folder, "tomogan-denoise")):
        pytest.skip("the console scripts are not installed (pip install -e .)")
    for name, target in scripts.items():
        module, function = target.split(":")
        with open(os.path.join(folder, name)) as f:
            assert f"from {module} import {function}" in f.read()


def run_entry_point(tool: str, *args: str) -> subprocess.CompletedProcess:
    """Call a console script's function as the generated script does."""
    module, function = console_scripts()[f"tomogan-{tool}"].split(":")
    return python(
        "import sys\n"
        f"sys.argv = ['tomogan-{tool}', *{list(args)!r}]\n"
        f"from {module} import {function}\n"
        f"sys.exit({function}())\n"
    )


@pytest.mark.slow
@pytest.mark.parametrize("tool", TOOLS)
def test_console_script_reports_bad_input_like_python_m(tool):
    result = run_entry_point(tool, "stray")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"tomogan_tf.{tool}: error: unexpected arguments: stray"
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "tool, flag, problem",
    [
        ("denoise", "--precision=fast", "flag --precision=fast: value should be one of <auto|"),
        ("train", "--maxiter=ten", "flag --maxiter=ten: invalid literal for int()"),
    ],
)
def test_a_bad_flag_value_is_bad_input_with_one_line(tool, flag, problem):
    # absl alone prints "FATAL Flags parsing error" and a hint, and exits 1.
    result = run_module(f"tomogan_tf.{tool}", flag)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"tomogan_tf.{tool}: error: {problem}"), lines


# train's flags are generated from the settings (the other tools' are written out and
# registered the same way, by cli.run).
@pytest.mark.slow
@pytest.mark.parametrize("tool", ["train"])
def test_console_script_help_lists_the_tools_flags(tool):
    script, module = run_entry_point(tool, "--help"), run_module(f"tomogan_tf.{tool}", "--help")
    assert script.returncode == module.returncode, script.stderr  # absl's --help exits 1
    assert f"python -m tomogan_tf.{tool}" in script.stdout  # the tool's own docstring
    flag_lines = [line for line in module.stdout.splitlines() if line.startswith("  --")]
    assert REQUIRED_FLAG[tool] in module.stdout and flag_lines
    assert [line for line in script.stdout.splitlines() if line.startswith("  --")] == flag_lines


# Run a tool with TensorFlow and Keras unimportable: whatever it reports must have been
# found without them (a user learns of a bad path in about a second, not after
# TensorFlow's start-up).
WITHOUT_TENSORFLOW = """\
import sys
class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras"):
            raise ImportError(f"{{name}} was imported before the inputs were checked")
sys.meta_path.insert(0, NoTensorFlow())
sys.argv = ["tomogan_tf.{tool}", *{args!r}]
from tomogan_tf.{tool} import run
run()
"""


@pytest.mark.parametrize(
    "tool, args, problem",
    [
        (
            "train",
            ["--h5", "{tmp}/missing.h5", "--logdir", "{tmp}/run"],
            "{tmp}/missing.h5: file not found",
        ),
        (
            "train",
            ["--h5", "{pairs}", "--logdir", "{tmp}/run", "--psz", "64"],
            "32x32, smaller than the patch size 64",
        ),
        (
            "train",
            ["--h5", "{pairs}", "--logdir", "{tmp}/run", "--model", "adl", "--psz", "20"],
            "--psz must be a positive multiple of 8, got 20",
        ),
        ("train", ["--maxiter=ten"], "flag --maxiter=ten: invalid literal for int()"),
        (
            "denoise",
            ["--input", "{tmp}/in.npy", "--output", "{tmp}/o.npy", "--model", "{tmp}/m"],
            "{tmp}/m: model not found",
        ),
        (
            "denoise",
            ["--input", "{tmp}/missing.npy", "--output", "{tmp}/o.npy"],
            "{tmp}/missing.npy: file not found",
        ),
        (
            "denoise",
            ["--input", "{pairs}", "--input_key", "nope", "--output", "{tmp}/o.npy"],
            "dataset 'nope' not found",
        ),
        ("evaluate", ["--h5", "{pairs}", "--model", "{tmp}/m"], "{tmp}/m: model not found"),
        (
            "export",
            ["--out", "{tmp}/serving", "--model", "{tmp}/m.keras"],
            "{tmp}/m.keras: model not found",
        ),
    ],
)
def test_bad_input_is_reported_before_tensorflow_loads(tmp_path, tool, args, problem):
    from helpers import write_pair_file

    pairs = write_pair_file(str(tmp_path / "pairs.h5"), size=(32, 32))
    args = [a.format(tmp=tmp_path, pairs=pairs) for a in args]
    result = python(WITHOUT_TENSORFLOW.format(tool=tool, args=args))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"tomogan_tf.{tool}: error: "), lines
    assert problem.format(tmp=tmp_path) in lines[0]
    assert sorted(os.listdir(tmp_path)) == ["pairs.h5"]  # nothing written


def test_help_lists_the_flags_without_tensorflow():
    result = python(WITHOUT_TENSORFLOW.format(tool="train", args=["--help"]))
    assert result.returncode == 1, result.stderr  # absl exits 1 after printing help
    assert "--gan_loss" in result.stdout and "--h5" in result.stdout
