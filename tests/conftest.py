import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# This session's own TMPDIR: every kernel it starts names its folder there on its command line, so
# the checks for leftover processes (tests/test_hostile.py) tell them from other runs' on the machine.
# Short (IPC socket paths) and traversable (kernels that drop to `nobody` reach their folders).
SESSION_TMP = tempfile.mkdtemp(prefix=f"rg{os.getpid()}-", dir="/tmp")
os.chmod(SESSION_TMP, 0o755)
os.environ["TMPDIR"] = SESSION_TMP
tempfile.tempdir = None

import pytest  # noqa: E402

from grader import expected  # noqa: E402


@pytest.fixture
def short_tmp():
    """A fresh folder directly in /tmp, open to other users: short enough for kernels' IPC socket paths
    (grader.leftovers), and reachable by `nobody`, as /autograder is on Gradescope."""
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="short-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def expected_outputs():
    """The committed expected outputs, loaded once."""
    return expected.load_all()


def pytest_unconfigure(config):
    shutil.rmtree(SESSION_TMP, ignore_errors=True)
