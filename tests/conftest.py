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


@pytest.fixture(scope="session")
def expected_outputs():
    """The committed expected outputs, loaded once."""
    return expected.load_all()


def pytest_unconfigure(config):
    shutil.rmtree(SESSION_TMP, ignore_errors=True)
