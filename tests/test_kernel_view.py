"""A kernel forked from a zygote sees and keeps what a kernel started on its own under bubblewrap
does (issue 22): the same mounts (plus the zygote's folder veiled, read-only), the same few
writable folders, each its own and fresh, its own session and process group, the same rlimits
with the process cap among them, and no capabilities.

The probe runs inside each kernel and reports plain data; the comparisons are made here.
"""

import json
import os

import nbformat
import pytest
from nbclient import NotebookClient

from grader import sandbox, zygote
from grader.kernel import Kernel
from grader.pool import WarmKernels
from grader.sandbox import Limits, resolve

pytestmark = pytest.mark.slow

# What a kernel sees of itself: its visible mount table (the top mount at each place), the mounts
# holding a folder it can create a file in, its session and group, rlimits and capabilities. It then
# plants a file in every folder it can write, for the next kernel to find.
PROBE = r'''
import json, os, re, resource
from ipykernel.connect import get_connection_file
def _unescape(f):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), f)
table = {}
for line in open("/proc/self/mountinfo"):
    left, right = line.split(" - ")
    f = left.split()
    table[_unescape(f[4])] = [right.split()[0], "ro" if "ro" in f[5].split(",") else "rw"]
writable, found = [], []
for point, (kind, mode) in table.items():
    if mode != "rw" or kind in ("proc", "devpts") or not os.path.isdir(point):
        continue
    for folder, subfolders, files in os.walk(point):
        if os.path.ismount(folder) and folder != point:
            subfolders[:] = []
            continue
        try:
            open(os.path.join(folder, ".probe-write"), "w").close()
            os.unlink(os.path.join(folder, ".probe-write"))
            writable.append(point)  # the mount it lies on: each writable place is a mount
        except OSError:
            pass
        found += [os.path.join(folder, n) for n in files if n.startswith("planted-")]
for point in set(writable):
    for folder, subfolders, files in os.walk(point):
        try:
            open(os.path.join(folder, f"planted-{os.getpid()}"), "w").write("left for the next kernel")
        except OSError:
            pass
status = {l.split(":")[0]: l.split()[1] for l in open("/proc/self/status") if l.startswith(("Cap", "NoNewPrivs"))}
print(json.dumps({
    "mounts": table, "writable": sorted(set(writable)), "found": found,
    "sockets": os.path.dirname(get_connection_file()), "cwd": os.getcwd(),
    "session": os.getsid(0), "group": os.getpgid(0), "pid": os.getpid(),
    "rlimits": {n: resource.getrlimit(getattr(resource, n)) for n in dir(resource) if n.startswith("RLIMIT_")},
    "status": status, "uid": os.getuid()}))
'''


def look(kernel):
    """What the probe reports from inside `kernel`."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROBE)])
    NotebookClient(nb, km=kernel.km, timeout=60, startup_timeout=60).execute()
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs if o.output_type == "stream")
    return json.loads(text)


def normal(seen, base=None):
    """The report with this kernel's own paths named by their role, so two kernels compare."""
    places = {seen["sockets"]: "{sockets}", seen["cwd"]: "{work}", **({base: "{zygote folder}"} if base else {})}

    def name(path):
        return places.get(path, path)
    return {
        "mounts": {name(p): tuple(v) for p, v in seen["mounts"].items()},
        "writable": sorted(name(p) for p in seen["writable"]),
        "rlimits": {k: tuple(v) for k, v in seen["rlimits"].items()},
        "capabilities": {k: v for k, v in seen["status"].items() if k.startswith("Cap")},
        "no_new_privs": seen["status"].get("NoNewPrivs"),
        # a session and a group led by one of its own processes (0: the leader is outside its PID namespace)
        "own_session": seen["session"] != 0 and seen["group"] == seen["session"],
        "uid": seen["uid"],
    }


@pytest.fixture(scope="module")
def limits():
    resolved = resolve(Limits(isolation="bubblewrap", function_timeout=60, submission_timeout=300))
    if resolved is None:
        pytest.skip("bubblewrap is not usable here (`make bwrap`, and unprivileged user namespaces)")
    if not zygote.enabled(resolved):
        pytest.skip("kernels start on their own here (root's own bubblewrap): no zygote to compare")
    return resolved


@pytest.fixture(scope="module")
def views(limits):
    """Two kernels on their own, then two forked from one zygote, each looking after the one before."""
    seen = {}
    for kind in ("alone-1", "alone-2"):
        kernel = Kernel(limits, warm_up=False)
        try:
            seen[kind] = look(kernel)
        finally:
            kernel.close()
    with WarmKernels(limits, ahead=0) as pool:
        for kind in ("forked-1", "forked-2"):
            kernel = pool.take()
            try:
                assert kernel.zygote is not None
                seen[kind] = look(kernel)
            finally:
                kernel.close()
        base = str(pool.zygote.tmp)
    return seen, base


def test_a_forked_kernel_sees_what_a_kernel_on_its_own_sees(views):
    seen, base = views
    alone, forked = normal(seen["alone-1"]), normal(seen["forked-1"], base)
    # the one difference: the zygote's folder, veiled by an empty read-only tmpfs
    assert forked["mounts"].pop("{zygote folder}") == ("tmpfs", "ro")
    assert forked == alone


def test_every_writable_place_is_its_own_fresh_sized_tmpfs_or_its_socket_folder(views, limits):
    seen, base = views
    for kind in ("alone-1", "forked-1"):
        view = normal(seen[kind], base)
        assert view["writable"] == sorted(["/dev/shm", "/tmp", "{sockets}", "{work}"]), kind
        for place in ("/dev/shm", "/tmp", "{work}"):
            assert view["mounts"][place] == ("tmpfs", "rw"), (kind, place)
        for place in ("/dev", "/", *[p for p in sandbox.SECRETS if os.path.isdir(p)]):
            assert view["mounts"].get(place, ("", "ro"))[1] == "ro", (kind, place)


def test_nothing_one_kernel_left_reaches_the_next(views):
    seen, _ = views
    assert seen["alone-2"]["found"] == []
    assert seen["forked-2"]["found"] == []
    assert seen["forked-1"]["writable"] and seen["alone-1"]["writable"]  # the planting had somewhere to go


def test_each_kernel_has_its_own_session_its_process_cap_and_no_capabilities(views, limits):
    seen, base = views
    for kind in ("alone-1", "forked-1"):
        view = normal(seen[kind], base)
        assert view["own_session"], (kind, seen[kind]["session"], seen[kind]["group"])
        assert view["rlimits"]["RLIMIT_NPROC"] == (sandbox.process_cap(limits),) * 2, kind
        assert set(view["capabilities"].values()) == {"0000000000000000"}, kind
        assert view["no_new_privs"] == "1", kind
