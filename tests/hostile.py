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


# ----------------------------------------------------------------------------- isolation
# Each case tries one thing the kernel must not be able to do, and counts as breached only if it
# worked; a function raises after its cases when any was breached, naming them. So a function
# keeps its points only when every attempt in it was blocked. Placeholders, filled by the test:
# REPO, EXPECTED_FILE, HOME_SECRET, TOKEN (in every planted file's name), SUBMISSION_DIR, OUT_DIR,
# VENV_SITE, HOST_MARK (a host process's command line), HOST_PID (the test's own process).


@dataclass(frozen=True)
class Attempt:
    id: str
    function: str
    code: str  # succeeds (no exception) only if the isolation was breached


ATTEMPTS = (
    Attempt("read-solution", "identity_block", "open('REPO/solution/blocks.py').read()"),
    Attempt("read-expected", "identity_block", "open('EXPECTED_FILE').read()"),
    Attempt("list-solution", "identity_block", "assert os.listdir('REPO/solution')"),
    Attempt("read-home", "identity_block", "open('HOME_SECRET').read()"),
    Attempt("read-root-only-file", "identity_block", "assert open('/etc/shadow').read()"),
    Attempt("write-grader", "convolutional_block", "open('REPO/grader/planted-TOKEN.py', 'w').write('x')"),
    Attempt("write-elsewhere", "convolutional_block",
            "try:\n    open('/var/tmp/planted-TOKEN', 'w').write('x')\n"
            "except OSError:\n    open('SUBMISSION_DIR/planted-TOKEN', 'w').write('x')"),
    Attempt("write-venv", "convolutional_block", "open('VENV_SITE/planted-TOKEN.pth', 'w').write('import os')"),
    Attempt("write-results-folder", "ResNet50", "open('OUT_DIR/planted-TOKEN', 'w').write('x')"),
    Attempt("see-network-interface", "ResNet50",
            "assert [n for _, n in socket.if_nameindex() if n != 'lo'] or "
            "[n for n in os.listdir('/sys/class/net') if n != 'lo']"),
    Attempt("see-host-process", "ResNet50",
            "assert any('HOST_MARK' in open(f'/proc/{p}/cmdline').read() for p in os.listdir('/proc') if p.isdigit())"),
    Attempt("signal-host-process", "ResNet50", "os.kill(HOST_PID, 0)"),
    # What a kernel forked from a zygote (grader.zygote) must not reach: the zygote's socket and the
    # other kernels' folders beside its own, or the rights to unmount what hides them.
    Attempt("see-beside-own-sockets", "ResNet50",
            "from ipykernel.connect import get_connection_file\n"
            "_own = os.path.dirname(get_connection_file())\n"
            "assert set(os.listdir(os.path.dirname(_own))) - {os.path.basename(_own), 'work'}"),
    Attempt("unmount-a-veil", "ResNet50",
            "import ctypes\nfrom ipykernel.connect import get_connection_file\n"
            "assert ctypes.CDLL(None).umount2(os.path.dirname(os.path.dirname(get_connection_file())).encode(), 2) == 0"),
)


def isolation_sources(attempts=ATTEMPTS):
    """{function: source} with each function's attempts run first, then the correct code."""
    by = {}
    for a in attempts:
        by.setdefault(a.function, []).append(a)
    sources = {}
    for function, group in by.items():
        body = "_breached = []\n"
        for a in group:
            code = "".join("    " + line + "\n" for line in a.code.splitlines())
            body += f"try:\n{code}except Exception:\n    pass\nelse:\n    _breached.append({a.id!r})\n"
        body += "if _breached:\n    raise RuntimeError('isolation breached: ' + ', '.join(_breached))\n"
        sources[function] = Hostile(f"isolation-{function}", function, body, zero=False).source()
    return sources
