import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

from grader import expected  # noqa: E402


@pytest.fixture(scope="session")
def expected_outputs():
    """The committed expected outputs, loaded once."""
    return expected.load_all()
