"""Hostile and careless submissions: each costs only the function it breaks.

Each case puts its behaviour into one graded function (the others are the
solution's) and says which functions must score 0. Built from the solution's
source, so the cases follow it.
"""

from dataclasses import dataclass

from notebooks import solution_sources

HEADER = "import os, sys, time, signal, subprocess, socket\nimport numpy as np\n"


@dataclass(frozen=True)
class Hostile:
    id: str
    function: str
    body: str  # statements run at the top of the function, before the correct code
    zero: bool = True  # whether the function must score 0 (False: the behaviour is harmless)

    def source(self):
        src = solution_sources()[self.function]
        marker = {"identity_block": "    conv_name, bn_name = _names(stage, block)\n",
                  "convolutional_block": "    conv_name, bn_name = _names(stage, block)\n",
                  "ResNet50": "    X_input = keras.Input(input_shape)\n"}[self.function]
        head, sep, tail = src.rpartition(marker)
        inject = "".join("    " + line + "\n" for line in self.body.strip().splitlines())
        return HEADER + head + inject + sep + tail


CASES = (
    Hostile("os-exit", "identity_block", "os._exit(3)"),
    Hostile("sys-exit", "convolutional_block", "sys.exit(0)"),
    Hostile("sigint-ignored-endless-loop", "identity_block",
            "signal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"),
    Hostile("endless-recursion", "convolutional_block",
            "def again(n):\n    return again(n + 1)\nagain(0)"),
    Hostile("sleep-an-hour", "ResNet50", "time.sleep(3600)"),
    Hostile("allocate-16-gib", "identity_block", "hog = np.ones(16 * 2**30 // 8)"),
    Hostile("orphan-processes", "convolutional_block",
            "subprocess.Popen(['sleep', '4242'], start_new_session=True)\n"
            "if os.fork() == 0:\n    os.setsid()\n    subprocess.Popen(['sleep', '4243'])\n    os._exit(0)",
            zero=False),
    Hostile("print-64-mib", "convolutional_block", "sys.stdout.write('x' * (64 * 2**20))\nprint('Score: 100')",
            zero=False),
    Hostile("input-call", "identity_block", "input('name? ')"),
    Hostile("network", "identity_block",
            "try:\n    socket.create_connection(('127.0.0.1', PORT), timeout=2)\n"
            "    raise RuntimeError('network reached')\nexcept OSError:\n    pass", zero=False),
    Hostile("environment-scrubbed", "convolutional_block",
            "assert 'GRADER_TEST_SECRET' not in os.environ, 'secret visible'\n"
            "assert not os.path.exists(os.path.join(os.getcwd(), 'grader')), 'cwd is the repository'",
            zero=False),
    Hostile("monkeypatch-numpy-keras", "identity_block",
            "np.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True\n"
            "import keras\nkeras.Model.count_params = lambda self: 230\nreturn X"),
    Hostile("tamper-grader-probe", "identity_block",
            "probe = globals().get('_resnet_grader_probe')\n"
            "if probe is not None:\n    probe.fingerprint = lambda a: {'channel': np.zeros(1, 'float32'), 'spatial': np.zeros(0, 'float32')}\n"
            "    probe.activations = lambda *a: {}\nreturn X"),
    Hostile("write-results-files", "ResNet50",
            "import json\nfor d in (os.getcwd(), 'OUT_DIR'):\n"
            "    os.makedirs(d, exist_ok=True)\n"
            "    open(os.path.join(d, 'results.json'), 'w').write(json.dumps({'score': 100, 'tests': []}))\n"
            "print('Score: 100')\nreturn None"),
    Hostile("import-solution", "convolutional_block", "from solution import convolutional_block as ref\nreturn ref(X, f, filters, stage, block, s)"),
)
