"""make image-test: build the container image, grade notebooks in containers, compare with local grading.

    .venv/bin/python scripts/image_test.py [--no-build] [--keep DIR]

Builds the image (scripts/image.sh build), then grades each notebook twice, interleaved: here with
`python -m grader grade` and in a fresh container with `scripts/image.sh run` (no network, the
notebook read-only, --cpus 1 --memory 5g --pids-limit 1024). Each pair of results.json must be equal, the execution
time and the isolation summary aside; every comparison is printed, and it exits 1 on any mismatch.

The notebooks: a correct one, one with a mistake (no final ReLU in identity_block), a file that is
not a notebook, and a hostile one whose functions try to reach the solution, the expected outputs
and the grader (tests/hostile.py's attempts, filled in with the paths where it is graded), so that
they keep their points only if every attempt is blocked. Then issue 22's misbehaviours
(tests/neighbours.py), each in a container of its own, with and without bubblewrap: a fork bomb
(run only once a bounded probe has hit a cap) and processes holding 9 GiB together; each must cost
only identity_block, where it is, and leave the host most of its PIDs. Last, the PrairieLearn entry
(prairielearn/run.sh): the notebook with a mistake in a job folder mounted at /grade, run as
PrairieLearn runs a job (the example question's entrypoint, no network, 2 GiB, 0.9 CPU); its
results.json must be the conversion (grader/prairielearn.py) of the one graded here.

Also measured per container: wall time of the whole `run`, CPU time and peak memory of the
container's process tree (sampled every 0.1 s, as gradescope/measure.py does on a host), and the
cgroup's own CPU total, peak memory and caps where the host exposes them.
Not part of `make test` (scripts/ is not collected by pytest): it downloads TensorFlow into the image.
"""

import argparse
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "gradescope")]

import neighbours  # noqa: E402
from hostile import ATTEMPTS, Attempt, isolation_sources  # noqa: E402
from measure import measure, sample  # noqa: E402
from notebooks import solution_sources, solved, write  # noqa: E402

IMAGE_SH = ROOT / "scripts" / "image.sh"

# The attempts at the grader's secrets and integrity, which must fail under every isolation level
# (bubblewrap, or hardened as nobody). tests/test_isolation.py covers the rest on the host (other
# processes seen, world-writable folders): inside a container those are the container's own, gone
# with it.
AIMED_AT_THE_GRADER = ("read-solution", "read-expected", "list-solution", "read-home", "read-root-only-file",
                       "write-grader", "write-venv", "write-results-folder", "see-network-interface")
MORE = (
    Attempt("find-solution-anywhere", "ResNet50",
            "found = []\n"
            "for d, dirs, files in os.walk('/'):\n"
            "    if d in ('/proc', '/sys', '/dev'):\n"
            "        dirs[:] = []\n"
            "        continue\n"
            "    for f in files:\n"
            "        if f in ('blocks.py', 'identity_block.json'):\n"
            "            try:\n"
            "                text = open(os.path.join(d, f), errors='replace').read()\n"
            "            except OSError:\n"
            "                continue\n"
            "            if 'def identity_block' in text or 'res2a_branch2a' in text or '\"layers\"' in text:\n"
            "                found.append(os.path.join(d, f))\n"
            "assert found"),
    Attempt("import-solution", "ResNet50", "import solution.blocks"),
    Attempt("import-expected", "ResNet50", "import grader.expected as e\ne.load_all()"),
    Attempt("signal-the-grader", "ResNet50",
            "hits = []\n"
            "for p in os.listdir('/proc'):\n"
            "    if p.isdigit():\n"
            "        try:\n"
            "            if b'-m\\x00grader\\x00grade' in open(f'/proc/{p}/cmdline', 'rb').read():\n"
            "                os.kill(int(p), 0)\n"
            "                hits.append(p)\n"
            "        except OSError:\n"
            "            pass\n"
            "assert hits"),
)


def hostile_notebook(path, places):
    attempts = [a for a in ATTEMPTS if a.id in AIMED_AT_THE_GRADER] + list(MORE)
    sources = isolation_sources(attempts)
    for function, src in sources.items():
        for key in sorted(places, key=len, reverse=True):  # EXPECTED_FILE before a shorter key inside it
            src = src.replace(key, places[key])
        sources[function] = src
    return write(solved(**sources), path)


def notebooks(folder, here_places):
    """{name: (notebook for here, notebook for the container)}."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "correct").mkdir()
    correct = write(solved(), folder / "correct" / "ResNets.ipynb")
    src = solution_sources()["identity_block"]
    assert src.count('return layers.Activation("relu")(X)') == 1
    (folder / "mistake").mkdir()
    mistake = write(solved(identity_block=src.replace('return layers.Activation("relu")(X)', "return X")),
                    folder / "mistake" / "ResNets.ipynb")
    (folder / "not-a-notebook").mkdir()
    broken = folder / "not-a-notebook" / "ResNets.ipynb"
    broken.write_text("this is not a notebook {")
    (folder / "hostile-here").mkdir()
    (folder / "hostile-container").mkdir()
    here = hostile_notebook(folder / "hostile-here" / "ResNets.ipynb", here_places)
    there = hostile_notebook(folder / "hostile-container" / "ResNets.ipynb", {
        "REPO": "/autograder/source",
        "EXPECTED_FILE": "/autograder/source/grader/expected/identity_block.json",
        "HOME_SECRET": "/root/.profile",
        "VENV_SITE": "/autograder/source/.venv/lib/python3.11/site-packages",
        "OUT_DIR": "/autograder/results",
        "TOKEN": here_places["TOKEN"],
    })
    # Issue 22's misbehaviours, in a container of their own (tests/neighbours.py): a fork bomb, run only
    # once a bounded probe has hit a cap, and processes holding 9 GiB together.
    rough = []
    for kind in ("bomb", "memory"):
        (folder / kind).mkdir()
        nb = write(neighbours.hostile_notebook(kind, here_places["TOKEN"]), folder / kind / "ResNets.ipynb")
        rough += [(kind, nb, nb, "nobody"), (f"{kind}-bubblewrap", nb, nb, "bubblewrap")]
    # (name, notebook here, notebook in the container, IMAGE_ISOLATION)
    return [("correct", correct, correct, "nobody"), ("mistake", mistake, mistake, "nobody"),
            ("not-a-notebook", broken, broken, "nobody"), ("hostile", here, there, "nobody"),
            ("hostile-bubblewrap", here, there, "bubblewrap"), *rough]


ROUGH = ("bomb", "memory", "bomb-bubblewrap", "memory-bubblewrap")  # compared by what they may cost, not equality


def comparable(results):
    """results.json less what may differ between two gradings of the same notebook."""
    r = json.loads(json.dumps(results))
    r.pop("execution_time", None)
    r.get("extra_data", {}).pop("isolation", None)
    if r.get("extra_data") == {}:
        r.pop("extra_data")
    return r


def cgroup_files(pid):
    """{name: path} of the container's cgroup accounting files (v1 or v2), where they exist."""
    files = {}
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return files
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(","):
            base = Path("/sys/fs/cgroup") / c if c else Path("/sys/fs/cgroup")
            want = {"cpuacct": {"cpu_ns": "cpuacct.usage"},
                    "memory": {"mem_peak": "memory.max_usage_in_bytes", "mem_limit": "memory.limit_in_bytes"},
                    "cpu": {"cpu_quota": "cpu.cfs_quota_us", "cpu_period": "cpu.cfs_period_us"},
                    "pids": {"pids_limit": "pids.max"},
                    "": {"cpu_stat": "cpu.stat", "mem_peak": "memory.peak", "mem_limit": "memory.max",
                         "cpu_max": "cpu.max", "pids_limit": "pids.max"}}.get(c, {})
            for name, fname in want.items():
                f = base / path.lstrip("/") / fname
                if f.exists():
                    files[name] = f
    return files


def read_cgroup(files):
    out = {}
    for name, f in files.items():
        try:
            text = f.read_text().strip()
        except OSError:
            continue
        if name == "cpu_stat":
            m = re.search(r"usage_usec (\d+)", text)
            if m:
                out["cpu_ns"] = int(m.group(1)) * 1000
        else:
            out[name] = text
    return out


def container_pid(engine, name, proc):
    while proc.poll() is None:
        r = subprocess.run(engine + ["inspect", "--format", "{{.State.Pid}}", name],
                           capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip().isdigit() and int(r.stdout) > 0:
            return int(r.stdout)
        time.sleep(0.1)
    return None


def run_in_container(engine, notebook, out, isolation, interval=0.1):
    """scripts/image.sh run, with the container's process tree and cgroup sampled while it runs."""
    name = f"resnet-grader-test-{uuid.uuid4().hex[:8]}"
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.parent / f"{out.name}.container.log"
    start = time.monotonic()
    with open(log, "wb") as logf:
        proc = subprocess.Popen([str(IMAGE_SH), "run", str(notebook), str(out)], stdout=logf, stderr=logf,
                                env={**os.environ, "IMAGE_CONTAINER_NAME": name, "IMAGE_ISOLATION": isolation})
        pid = container_pid(engine, name, proc)
        started = time.monotonic() - start  # the engine's share: a vfs container is a full copy of the image
        cpu, peak, group, files = {}, 0, {}, {}
        if pid:
            root = psutil.Process(pid)
            files = cgroup_files(pid)
            while proc.poll() is None:
                rss = sample(root, cpu)
                if rss is None:
                    break
                peak = max(peak, rss)
                group.update(read_cgroup(files))
                time.sleep(interval)
        proc.wait()
    return {"wall_s": time.monotonic() - start, "cpu_s": sum(cpu.values()), "peak_rss_mib": peak / 2**20,
            "exit": proc.returncode, "cgroup": group, "log": log, "start_s": started if pid else None}


def grade_here(notebook, out):
    env = {**os.environ, "TMPDIR": os.environ.get("IMAGE_TEST_TMPDIR", "/tmp")}  # short: the kernel's IPC socket path
    cmd = [sys.executable, "-m", "grader", "grade", str(notebook), "--out", str(out)]
    old = dict(os.environ)
    os.environ.update(env)
    try:
        os.chdir(ROOT)
        return measure(cmd)
    finally:
        os.environ.clear()
        os.environ.update(old)


def load(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        return {"missing": f"{path}: {e}"}


def run_prairielearn(engine, image, notebook, job):
    """A PrairieLearn job in a fresh container, as PrairieLearn's grader host starts one: the job folder
    at /grade (student/ and data/data.json), the entrypoint the example question names, no network,
    its default caps (2 GiB, 0.9 CPU, 1024 processes). Returns (exit status, wall seconds, output)."""
    info = json.loads((ROOT / "prairielearn" / "example_question" / "info.json").read_text())
    (job / "student").mkdir(parents=True)
    (job / "data").mkdir()
    shutil.copy(notebook, job / "student" / "ResNets.ipynb")
    (job / "data" / "data.json").write_text(json.dumps({"params": {}, "correct_answers": {}}))
    subprocess.run(["chmod", "-R", "a+rX", str(job)], check=True)
    start = time.monotonic()
    proc = subprocess.run(engine + ["run", "--rm", "--network", "none", "--memory", "2g", "--cpus", "0.9",
                                    "--pids-limit", "1024", "-v", f"{job}:/grade",
                                    "--entrypoint", info["externalGradingOptions"]["entrypoint"], image],
                          capture_output=True, text=True, errors="replace")
    return proc.returncode, time.monotonic() - start, proc.stdout + proc.stderr


def describe(cg):
    parts = []
    if "cpu_ns" in cg:
        parts.append(f"cgroup cpu {int(cg['cpu_ns']) / 1e9:.1f} s")
    if "mem_peak" in cg:
        parts.append(f"cgroup peak memory {int(cg['mem_peak']) / 2**20:.0f} MiB (with page cache)")
    if "mem_limit" in cg:
        v = cg["mem_limit"]
        parts.append(f"memory cap {int(v) / 2**30:.2f} GiB" if v.isdigit() and int(v) < 2**62 else f"memory cap {v}")
    if "cpu_quota" in cg and "cpu_period" in cg:
        q, p = int(cg["cpu_quota"]), int(cg["cpu_period"])
        parts.append(f"cpu cap {q / p:g} cpus" if q > 0 else "no cpu cap")
    if "cpu_max" in cg:
        parts.append(f"cpu.max {cg['cpu_max']}")
    if "pids_limit" in cg:
        parts.append(f"process cap {cg['pids_limit']}")
    return "; ".join(parts) or "no cgroup accounting found"


def prairielearn_case(engine, image, nbs, work, here_out, graded_here):
    """The notebook with a mistake as a PrairieLearn job in a container; True when its results.json is
    the conversion of the one graded here, and the question's files were made unreadable to others."""
    from grader.prairielearn import convert

    here_nb = next(here for name, here, _, _ in nbs if name == "mistake")
    if here_nb not in graded_here:
        a_out = here_out / here_nb.parent.name
        graded_here[here_nb] = (grade_here(here_nb, a_out), load(a_out / "results.json"), a_out)
    ra = graded_here[here_nb][1]
    job = work / "prairielearn" / "grade"
    status, wall, said = run_prairielearn(engine, image, here_nb, job)
    rb, ours = load(job / "results" / "results.json"), load(job / "results" / "grader" / "results.json")
    want = convert(ra)
    same = rb == want
    hidden = not (job / "data").stat().st_mode & 0o007
    print(f"\nprairielearn: {'SAME' if same else 'DIFFERENT'} results.json in the container and converted from here's; "
          f"score {rb.get('score')} (gradable {rb.get('gradable')}) in the container, {ra.get('score')} here; "
          f"{len(rb.get('tests', []))} tests; exit {status}; wall {wall:.1f} s")
    ours_same = comparable(ours) == comparable(ra)
    print(f"  our results.json in the container: {'the same as here' if ours_same else 'DIFFERENT'}"
          f" (isolation {ours.get('extra_data', {}).get('isolation', {}).get('summary', '?')}); "
          f"/grade/data {'unreadable' if hidden else 'STILL READABLE'} to others")
    if not same:
        diff = difflib.unified_diff(json.dumps(want, indent=1, sort_keys=True).splitlines(),
                                    json.dumps(rb, indent=1, sort_keys=True).splitlines(), "converted here",
                                    "container", lineterm="", n=1)
        print("\n".join("  " + line for line in list(diff)[:60]))
        print("  container output (tail):\n" + "\n".join("    " + line for line in said.splitlines()[-20:]))
    return same and status == 0 and hidden and ours_same


def main(argv=None):
    p = argparse.ArgumentParser(prog="scripts/image_test.py", description=__doc__.splitlines()[0])
    p.add_argument("--no-build", action="store_true", help="use the image already built")
    p.add_argument("--keep", type=Path, help="keep the notebooks and results in this folder")
    p.add_argument("--only", nargs="*",
                   help="grade only these notebooks (correct, mistake, not-a-notebook, hostile, ..., prairielearn)")
    args = p.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # each comparison as it is made, also into a log

    if not args.no_build:
        start = time.monotonic()
        if subprocess.run([str(IMAGE_SH), "build"]).returncode != 0:
            print("image-test: the image did not build")
            return 1
        print(f"image-test: build took {time.monotonic() - start:.0f} s")
    engine_line = subprocess.run([str(IMAGE_SH), "engine"], capture_output=True, text=True, check=True).stdout.split()
    if engine_line[0] == "podman":
        os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "scripts" / "podman" / "containers.conf"))
    image = os.environ.get("IMAGE", "resnet-grader")
    size = subprocess.run(engine_line + ["image", "inspect", "--format", "{{.Size}}", image],
                          capture_output=True, text=True).stdout.strip()
    print(f"image-test: image {image} ({engine_line[0]}), {int(size) / 1e6:.0f} MB" if size.isdigit()
          else f"image-test: no image {image}")

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="resnet-grader-image-test."))
    if args.keep and work.exists():
        shutil.rmtree(work)
    token = uuid.uuid4().hex[:8]
    home_secret = Path.home() / f".resnet-grader-secret-{token}"
    home_secret.write_text("secret")
    here_out = work / "here"
    places = {"REPO": str(ROOT), "EXPECTED_FILE": str(ROOT / "grader" / "expected" / "identity_block.json"),
              "HOME_SECRET": str(home_secret), "OUT_DIR": str(here_out / "hostile-here"), "TOKEN": token,
              "VENV_SITE": next(str(s) for s in (ROOT / ".venv" / "lib").glob("python*/site-packages"))}
    failures = 0
    try:
        nbs = notebooks(work / "notebooks", places)
        graded_here = {}
        for name, here_nb, there_nb, isolation in nbs:
            if args.only and name not in args.only:
                continue
            b_out = work / "container" / name
            if here_nb not in graded_here:  # the same notebook is graded here once
                a_out = here_out / here_nb.parent.name
                graded_here[here_nb] = (grade_here(here_nb, a_out), load(a_out / "results.json"), a_out)
            a, ra, a_out = graded_here[here_nb]
            with neighbours.Health(token) as health:
                b = run_in_container(engine_line, there_nb, b_out, isolation)
            rb = load(b_out / "results.json")
            same = comparable(ra) == comparable(rb)
            if name in ROUGH:  # only identity_block misbehaves: the rest keep their points, the machine its PIDs
                kept = all(t["score"] == t["max_score"] for t in rb.get("tests", [])
                           if t.get("extra_data", {}).get("function") != "identity_block")
                same = kept and bool(rb.get("tests")) and health.min_free_pids > neighbours.PID_MAX // 2
                print(f"\n{name}: the other functions {'kept' if kept else 'LOST'} their points in the container; "
                      f"{health.describe()}; kernel caps in the container: "
                      f"{json.dumps(rb.get('extra_data', {}).get('isolation', {}).get('caps'))}")
            planted = [str(f) for f in (a_out, b_out) for f in f.rglob(f"*{token}*")]
            iso_a = ra.get("extra_data", {}).get("isolation", {}).get("level", "?")
            iso_b = rb.get("extra_data", {}).get("isolation", {})
            ok = same and not planted and "missing" not in rb
            if isolation == "bubblewrap" and iso_b.get("level") != "bubblewrap":
                print(f"  asked for bubblewrap in the container, got {iso_b.get('level')}")
                ok = False
            if name.startswith("hostile"):
                breached = [t["name"] for t in rb.get("tests", []) if "isolation breached" in t.get("output", "")]
                full = rb.get("score") == sum(t["max_score"] for t in rb.get("tests", []))
                ok = ok and not breached and full
            if name not in ROUGH:
                print(f"\n{name}: {'SAME' if same else 'DIFFERENT'} results here and in the container; "
                      f"score {ra.get('score')} here, {rb.get('score')} in the container")
            print(f"  here:      wall {a['wall_s']:.1f} s, cpu {a['cpu_s']:.1f} s, peak rss {a['peak_rss_mib']:.0f} MiB, "
                  f"isolation {iso_a}")
            print(f"  container: wall {b['wall_s']:.1f} s, cpu {b['cpu_s']:.1f} s, peak rss {b['peak_rss_mib']:.0f} MiB "
                  f"(exit {b['exit']}; its first process after {b['start_s'] or 0:.1f} s); {describe(b['cgroup'])}")
            print(f"  container isolation (IMAGE_ISOLATION={isolation}): {iso_b.get('summary') or iso_b.get('level', '?')}")
            if name.startswith("hostile"):
                print(f"  attempts: {', '.join(a.id for a in ATTEMPTS if a.id in AIMED_AT_THE_GRADER)}, "
                      f"{', '.join(a.id for a in MORE)}: "
                      + ("all blocked in both" if ok else f"breached in the container: {breached}"))
            if planted:
                print(f"  planted files found: {planted}")
            if not same and name not in ROUGH:
                diff = difflib.unified_diff(json.dumps(comparable(ra), indent=1, sort_keys=True).splitlines(),
                                            json.dumps(comparable(rb), indent=1, sort_keys=True).splitlines(),
                                            "here", "container", lineterm="", n=1)
                print("\n".join("  " + line for line in list(diff)[:80]))
                print(f"  container log: {b['log']}")
            failures += not ok
        if not args.only or "prairielearn" in args.only:
            failures += not prairielearn_case(engine_line, image, nbs, work, here_out, graded_here)
    finally:
        home_secret.unlink(missing_ok=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nimage-test: {'FAILED' if failures else 'passed'} ({failures} mismatch{'es' if failures != 1 else ''}; "
          f"machine load average {os.getloadavg()[0]:.1f})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
