"""TensorFlow's C++ start-up lines are dropped from a kernel's own output; nothing else is."""

import os

import nbformat
import pytest

from grader.native_logs import Forwarder, is_noise

TF_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795797060.168304       1 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders.",
    "I0000 00:00:1795797072.781869    3142 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.",
    "W1127 16:30:36.123456   12345 some_file.cc:27] a warning",
]
KEPT = [
    "E0000 00:00:1795797060.168304       1 cuda_dnn.cc:8310] Unable to register cuDNN factory",  # errors stay
    "F1127 16:30:36.123456   12345 logging.cc:42] Check failed: x",
    "Fatal Python error: Segmentation fault",
    "I0000 is what my model printed",  # a student's line that merely starts like one
    "WARNING: All log messages are mine",
]


def test_only_tensorflow_info_and_warning_lines_are_noise():
    assert all(is_noise(line) for line in TF_LINES)
    assert not any(is_noise(line) for line in KEPT)


def test_the_forwarder_drops_noise_keeps_the_rest_and_caps_it(tmp_path):
    read_end, write_end = os.pipe()
    out = (tmp_path / "out.txt").open("w")
    fwd = Forwarder(read_end, out, limit=400)
    os.write(write_end, ("\n".join(TF_LINES + KEPT) + "\n" + "x" * 1000 + "\n").encode())
    os.close(write_end)
    fwd.join()
    out.close()
    text = (tmp_path / "out.txt").read_text()
    assert not any(line in text for line in TF_LINES)
    assert text.startswith("\n".join(KEPT[:3]))
    assert text.endswith("[kernel output truncated]\n") and len(text) < 450


@pytest.mark.slow
def test_a_kernel_importing_tensorflow_prints_only_what_the_student_wrote(capfd):
    from nbclient import NotebookClient

    from grader.kernel import Kernel
    from grader.sandbox import Limits, resolve

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os\nos.write(2, b'written by the student to fd 2\\n')\nimport tensorflow")])
    kernel = Kernel(resolve(Limits()), warm_up=False)
    try:
        client = NotebookClient(nb, km=kernel.km, timeout=120, allow_errors=False)
        with client.setup_kernel():
            client.execute_cell(nb.cells[0], 0)
    finally:
        kernel.close()
    err = capfd.readouterr().err
    assert "written by the student to fd 2" in err
    assert "oneDNN" not in err and "InitializeLog" not in err, err
