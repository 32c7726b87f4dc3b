"""Running a page's ``bash`` blocks: each command through the real console script.

A block is split into commands (continued lines joined, ``&&`` chains split). Each
command is one of:

* ``neonpay ...`` (or ``.venv/bin/neonpay ...``): run as a subprocess of the installed
  console script. ``neonpay serve`` and ``neonpay emulator`` run until stopped: they are
  started, checked to answer on their port, and stopped with SIGTERM.
* ``pip install ...``: not run (no network in tests); it must install from the checkout
  (``-e ".[extras]"``) or a wheel built from it (NEONPAY 3 is not on the package index
  yet, so ``neonpay[...]`` would install 2.x); every extra it names must
  exist in the installed package's metadata.
* ``python3 -m venv .venv``: not run (the tests already run inside such an environment).
* ``bash .ci/run``: not run (it is the CI that runs these tests); the script must exist
  and run pytest.
* ``python examples/NAME.py ...``: run with this interpreter from the repository root.

Anything else fails the test, so a new kind of command is a decision, not an accident.
"""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

__all__ = ["CommandRun", "ShellError", "run_bash"]

REPO = Path(__file__).resolve().parents[2]
COMMAND_TIMEOUT = 90.0
SERVER_START_TIMEOUT = 20.0
_LONG_RUNNING = {("serve",), ("emulator",)}


class ShellError(AssertionError):
    """A command of a bash block failed or is not allowed."""


@dataclass(frozen=True)
class CommandRun:
    """One command of a block and what it did (``skipped`` says why it was not run)."""

    argv: tuple[str, ...]
    code: int = 0
    stdout: str = ""
    stderr: str = ""
    skipped: str = ""


def commands(source: str) -> list[list[str]]:
    """The commands of a bash block, each as an argv list."""
    joined = re.sub(r"\\\n\s*", " ", source)
    found: list[list[str]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        for part in line.split("&&"):
            argv = shlex.split(part, comments=True)
            if argv:
                found.append(argv)
    return found


def neonpay_script() -> Path:
    """The ``neonpay`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("neonpay")
    if not script.exists():
        raise ShellError(f"the console script {script} is not installed: pip install -e .")
    return script


def run_bash(source: str, *, cwd: Path, env: dict[str, str]) -> list[CommandRun]:
    """Run every command of a block; raises :class:`ShellError` at the first failure."""
    runs: list[CommandRun] = []
    for argv in commands(source):
        run = _run_one(argv, cwd=cwd, env=env)
        runs.append(run)
        if run.code != 0:
            raise ShellError(
                f"`{shlex.join(argv)}` exited {run.code}\n"
                f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
            )
    return runs


def _run_one(argv: list[str], *, cwd: Path, env: dict[str, str]) -> CommandRun:
    program = Path(argv[0]).name
    if program == "neonpay":
        args = argv[1:]
        if _subcommand(args) in _LONG_RUNNING:
            return _run_server(args, cwd=cwd, env=env)
        return _subprocess([str(neonpay_script()), *args], cwd=cwd, env=env, shown=argv)
    if program in ("pip", "pip3") or argv[1:3] == ["-m", "pip"]:
        return _check_pip_install(argv)
    if program.startswith("python") and argv[1:3] == ["-m", "venv"]:
        return CommandRun(tuple(argv), skipped="the tests already run in a virtual environment")
    if argv == ["bash", ".ci/run"]:
        return _check_ci_script(argv)
    if program.startswith("python") and len(argv) > 1 and argv[1].startswith("examples/"):
        return _subprocess([sys.executable, *argv[1:]], cwd=REPO, env=env, shown=argv)
    raise ShellError(f"the docs runner does not know how to run `{shlex.join(argv)}`")


def _subcommand(args: list[str]) -> tuple[str, ...]:
    """The first word of ``args`` that is not an option (or an option's value)."""
    skip_value = False
    for arg in args:
        if skip_value:
            skip_value = False
            continue
        if arg.startswith("--"):
            skip_value = "=" not in arg and arg in ("--storage",)
            continue
        return (arg,)
    return ()


def _subprocess(full: list[str], *, cwd: Path, env: dict[str, str], shown: list[str]) -> CommandRun:
    done = subprocess.run(  # noqa: S603 - our own console script and interpreter
        full,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return CommandRun(tuple(shown), done.returncode, done.stdout, done.stderr)


def _run_server(args: list[str], *, cwd: Path, env: dict[str, str]) -> CommandRun:
    """Start a long-running command, check it answers on its port, stop it with SIGTERM."""
    port = _option(args, "--port")
    if port is None:
        raise ShellError(f"`neonpay {shlex.join(args)}` needs --port for the runner to check it")
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [str(neonpay_script()), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        answered = _wait_for_http(int(port), process)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=COMMAND_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=COMMAND_TIMEOUT)
    code = process.returncode
    if not answered:
        code = code or 1
        stderr += f"\n(the runner: nothing answered on 127.0.0.1:{port})"
    return CommandRun(("neonpay", *args), code, stdout, stderr)


def _wait_for_http(port: int, process: subprocess.Popen[str]) -> bool:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1.0):
                return True
        except urllib.error.HTTPError:
            return True  # something speaks HTTP there (a 404 for / is fine)
        except OSError:
            time.sleep(0.1)
    return False


def _option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _check_pip_install(argv: list[str]) -> CommandRun:
    """Check that every extra a ``pip install`` names exists; install nothing."""
    if "install" not in argv:
        raise ShellError(f"only `pip install` is understood: `{shlex.join(argv)}`")
    provided = set(metadata.metadata("neonpay").get_all("Provides-Extra") or [])
    wanted: list[str] = []
    for arg in argv[argv.index("install") + 1 :]:
        match = re.fullmatch(
            r"(?P<what>neonpay|\.|dist/neonpay-[^\[/]*\.whl)\[(?P<extras>[a-z0-9_,-]+)\]", arg
        )
        if (match and match["what"] == "neonpay") or arg == "neonpay":
            # NEONPAY 3 is not on the package index: this would install the published 2.x
            raise ShellError(
                f"`{shlex.join(argv)}` installs the published neonpay 2.x from the package "
                'index; until a release exists, install from the checkout: pip install -e ".[...]"'
            )
        if match:
            wanted += match["extras"].split(",")
        elif not arg.startswith("-") and arg != ".":
            raise ShellError(f"`{shlex.join(argv)}` installs {arg!r}, which is not neonpay")
    missing = sorted(set(wanted) - provided)
    if missing:
        raise ShellError(f"neonpay has no extra(s) {missing}; it provides {sorted(provided)}")
    return CommandRun(tuple(argv), skipped=f"not installed (no network); extras {wanted} exist")


def _check_ci_script(argv: list[str]) -> CommandRun:
    script = REPO / ".ci" / "run"
    if not script.is_file() or "pytest" not in script.read_text(encoding="utf-8"):
        raise ShellError(".ci/run is missing or does not run pytest")
    return CommandRun(tuple(argv), skipped="CI itself runs these tests; .ci/run exists")
