"""Shared fixtures for the Python suites: the `brink` binary under test and helpers to call it.

The binary is $BRINK_BIN, or build/brink; every test that needs it is skipped (with the path
in the message) when it does not exist yet.
"""
from __future__ import annotations

import json
import os
import subprocess
from typing import Optional, Sequence

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_BIN = os.path.join(ROOT, "build", "brink")
MODELS_DIR = os.path.join(ROOT, "models")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: large model (resnet50, convnext_tiny, efficientnet_b0, regnet); "
                   "deselect with -m 'not slow'")


def _short(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more chars]"


class Brink:
    """Runs the brink binary and checks what it prints."""

    def __init__(self, path: str):
        self.path = path

    def __call__(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        cmd = [self.path, *map(str, args)]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pytest.fail(f"timed out after {timeout} s: {' '.join(cmd)}")

    @staticmethod
    def describe(proc: subprocess.CompletedProcess) -> str:
        return (f"command: {' '.join(proc.args)}\nexit code: {proc.returncode}\n"
                f"stderr:\n{_short(proc.stderr)}\nstdout:\n{_short(proc.stdout)}")

    def json(self, *args: str, timeout: float = 300) -> dict:
        """Runs a command that must succeed and print exactly one JSON object on stdout."""
        proc = self(*args, timeout=timeout)
        assert proc.returncode == 0, self.describe(proc)
        try:
            value = json.loads(proc.stdout)
        except ValueError as e:
            pytest.fail(f"stdout is not one JSON object ({e})\n{self.describe(proc)}")
        assert isinstance(value, dict), self.describe(proc)
        return value

    def expect_error(self, *args: str, mentions: Sequence[str] = (), timeout: float = 60,
                     exit_code: Optional[int] = None) -> str:
        """Runs a command that must be refused cleanly: a positive exit code (a negative one is a
        signal, i.e. a crash), exactly one line on stderr, starting with "error: " and naming
        each of `mentions`. Returns that line."""
        proc = self(*args, timeout=timeout)
        check_clean_failure(proc)
        if exit_code is not None:
            assert proc.returncode == exit_code, self.describe(proc)
        line = proc.stderr.rstrip("\n")
        for m in mentions:
            assert m in line, f"the error does not name {m!r}\n{self.describe(proc)}"
        return line


def check_clean_failure(proc: subprocess.CompletedProcess) -> None:
    d = Brink.describe(proc)
    assert proc.returncode != 0, f"expected a failure\n{d}"
    assert proc.returncode > 0, f"killed by signal {-proc.returncode} (crash)\n{d}"
    assert proc.returncode < 126, f"exit code {proc.returncode} looks like a crash or a shell error\n{d}"
    lines = proc.stderr.rstrip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("error: "), \
        f"stderr must be exactly one line starting with 'error: '\n{d}"
    assert len(lines[0]) > len("error: "), f"empty error message\n{d}"


def check_not_crashed(proc: subprocess.CompletedProcess) -> None:
    """Either success or a clean failure; never a crash."""
    if proc.returncode == 0:
        return
    check_clean_failure(proc)


def brink_path() -> str:
    return os.environ.get("BRINK_BIN") or DEFAULT_BIN


@pytest.fixture(scope="session")
def brink() -> Brink:
    path = brink_path()
    if not os.path.isfile(path):
        pytest.skip(f"brink binary not found at {path} (build it with scripts/build.sh, or set BRINK_BIN)")
    if not os.access(path, os.X_OK):
        pytest.skip(f"brink binary at {path} is not executable")
    return Brink(path)


@pytest.fixture(scope="session")
def models_dir() -> str:
    return MODELS_DIR
