"""Grading on a Dask cluster: the batch's second executor (`grade ... --scheduler ADDRESS`).

The client sends each notebook's bytes as a task (no shared filesystem) and yields the
results to grader.batch, which alone writes them. Every worker is set up once by a worker
plugin (GraderPlugin): it checks that the worker's grader is the client's (the grader
fingerprint: code and expected outputs), resolves the isolation its own host allows, loads
the expected outputs and keeps warm kernels, with the local pool's code (grader.worker). All
of that runs in one thread the plugin owns for the worker's life: a kernel's parent-death
signal fires when the thread that started it ends, and Dask's task threads are not ours to
keep. A task only hands its notebook to that thread; student code runs in the sandboxed
kernel, never in the worker. A worker with another grader, or none that can isolate a
kernel, is refused (one line, naming it) and gets no task: tasks are restricted to the
workers accepted so far, and any whose accepted workers are all gone is sent again.
"""

import asyncio
import concurrent.futures as cf
import hashlib
import logging
import time
import uuid
from collections import deque

from distributed import Client, WorkerPlugin, get_worker, wait

from grader import expected as expected_outputs
from grader.errors import GraderError, SubmissionError
from grader.grade import failed_result
from grader.record import grader_fingerprint
from grader.submission import read_submission

# Seconds without a single accepted worker before the batch gives up, saying why.
NO_WORKER_GRACE = 120.0
POLL = 2.0  # seconds between looks at the cluster's workers while grading


class ClusterError(GraderError):
    """The cluster cannot grade: the scheduler is unreachable or lost, or no worker can grade."""


class GraderPlugin(WorkerPlugin):
    """Sets a worker up to grade: the same grader as the client's, its own isolation, warm kernels."""

    idempotent = True  # the same client command again (a resume) keeps the warm kernels

    def __init__(self, limits, fingerprint, name, version=None):
        self.limits, self.fingerprint, self.name, self.version = limits, fingerprint, name, version

    async def setup(self, worker):
        self.state = {"status": "preparing"}
        self.grading = None
        self.thread = cf.ThreadPoolExecutor(1, thread_name_prefix="grader-kernels")
        self.state = await asyncio.get_running_loop().run_in_executor(self.thread, self._prepare)

    def _prepare(self):
        from grader import leftovers, sandbox
        from grader.worker import GradingWorker

        try:
            mine = grader_fingerprint()
            if mine != self.fingerprint:
                return {"status": "refused", "reason": f"its grader differs from the client's (grader fingerprint "
                                                       f"{mine[:12]}, the client's {self.fingerprint[:12]})"}
            leftovers.remove_stale()  # what a killed worker on this host left
            limits = sandbox.resolve(self.limits)
            if limits is None:
                return {"status": "refused",
                        "reason": f"no kernel can be started with isolation {self.limits.isolation} on its host"}
            self.grading = GradingWorker(limits, version=self.version)
            return {"status": "ready", "isolation": self.grading.isolation}
        except Exception as exc:  # expected outputs that cannot be loaded, a broken install
            return {"status": "refused", "reason": f"it cannot grade: {type(exc).__name__}: {exc}"}

    async def teardown(self, worker):
        if self.grading is not None:
            await asyncio.get_running_loop().run_in_executor(self.thread, self.grading.close)
        self.thread.shutdown(wait=False)



def _plugin(dask_worker, name):
    return dask_worker.plugins.get(name)


def worker_state(name, dask_worker=None):
    """Run on a worker (Client.run): how its grader plugin set it up."""
    return dict(getattr(_plugin(dask_worker, name), "state", {"status": "missing"}))


def grade_task(name, submission, data):
    """A Dask task: grade the notebook's bytes in the worker's kernel thread, or say why this worker cannot."""
    worker = get_worker()
    plugin = _plugin(worker, name)
    state = getattr(plugin, "state", {"status": "missing"})
    if state["status"] != "ready":
        return {"refused": state.get("reason", "the grader is not set up on it"), "worker": worker.address}
    result = plugin.thread.submit(plugin.grading.grade_bytes, submission, data).result()
    return {"result": result, "isolation": state["isolation"], "worker": worker.address}


class DaskPool:
    """Grades a batch on the Dask cluster whose scheduler is at `address`; `say` prints one line."""

    def __init__(self, address, limits, say=print, expected_dir=expected_outputs.DEFAULT_DIR, version=None):
        self.address = address
        self.version = version  # a notebook version forced on every submission; None: each detected
        self.limits = limits  # isolation as asked: each worker resolves it for its own host
        self.say = say
        self.fingerprint = grader_fingerprint(expected_dir)
        settings = hashlib.sha256(f"{self.fingerprint}{limits}{version}".encode()).hexdigest()[:12]
        self.plugin_name = f"resnet-grader-{settings}"
        self.accepted, self.refused = {}, {}  # worker address -> isolation info / reason

    def _connect(self):
        # One clear line of our own, not Dask's log (its loggers each have a level of their own).
        for name in ["distributed", "tornado", *logging.root.manager.loggerDict]:
            if name.split(".")[0] in ("distributed", "tornado"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
        try:
            return Client(self.address)  # the default client: distributed.wait uses it
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {self.address}: {exc}") from None

    def _lost(self, client):
        return ClusterError(f"lost the connection to the Dask scheduler at {self.address}")

    def _look_at_workers(self, client):
        """Accept or refuse each worker not seen before, saying so once per worker."""
        try:
            alive = set(client.scheduler_info(n_workers=-1)["workers"])
        except Exception:
            raise self._lost(client) from None
        for gone in set(self.accepted) - alive:
            del self.accepted[gone]
        new = sorted(alive - set(self.accepted) - set(self.refused))
        if not new:
            return
        try:
            states = client.run(worker_state, self.plugin_name, workers=new, on_error="return")
        except Exception:
            return  # a worker that left meanwhile: look again next time
        for address, state in states.items():
            if isinstance(state, BaseException):  # it cannot even load this module: no grader there
                self._refuse(address, f"it cannot load the grader: {type(state).__name__}: {state}")
                continue
            if state.get("status") in ("preparing", "missing"):
                continue  # not set up yet (it joined just now)
            if state["status"] == "ready":
                self.accepted[address] = state["isolation"]
                self.say(f"worker {address}: isolation: {state['isolation']['summary']}")
                if state["isolation"].get("warning"):
                    self.say(f"worker {address}: {state['isolation']['warning']}")
            else:
                self._refuse(address, state["reason"])

    def _refuse(self, address, reason):
        if address not in self.refused:
            self.refused[address] = reason
            self.accepted.pop(address, None)
            self.say(f"refused worker {address}: {reason}; it gets no submissions")

    def grade(self, jobs):
        """Yield (job, result, the grading worker's isolation info) as the cluster grades each job."""
        if not jobs:
            return
        client = self._connect()
        inflight = {}  # future -> (job, the workers it may run on)
        try:
            try:
                client.register_plugin(GraderPlugin(self.limits, self.fingerprint, self.plugin_name, self.version),
                                       name=self.plugin_name)  # returns once the workers there are set up
            except (OSError, TimeoutError) as exc:
                raise ClusterError(f"the Dask scheduler at {self.address} did not answer: {exc}") from None
            except Exception:  # a worker that could not set it up (no grader there): refused when looked at
                pass
            yield from self._grade(client, deque(jobs), inflight)
        finally:
            self._close(client, inflight)

    def _submit(self, client, job, inflight):
        try:
            data = read_submission(job.path)
        except SubmissionError as exc:
            return job, failed_result(job.path.name, str(exc)), None
        workers = sorted(self.accepted)
        future = client.submit(grade_task, self.plugin_name, job.path.name, data, key=f"grade-{uuid.uuid4().hex}",
                               workers=workers, allow_other_workers=False, pure=False)
        inflight[future] = (job, set(workers))
        return None

    def _grade(self, client, pending, inflight):
        no_worker_since = time.monotonic()
        while pending or inflight:
            if client.status not in ("running", "newly-created"):
                raise self._lost(client)
            self._look_at_workers(client)
            if self.accepted:
                no_worker_since = None
            elif no_worker_since is None:
                no_worker_since = time.monotonic()
            elif time.monotonic() - no_worker_since > NO_WORKER_GRACE:
                refused = "; ".join(f"{a}: {r}" for a, r in self.refused.items()) or "there are none"
                raise ClusterError(f"no worker of the Dask cluster at {self.address} can grade ({refused})")
            for future, (job, workers) in list(inflight.items()):
                if self.accepted and not workers & set(self.accepted):  # every worker it could go to is gone
                    future.cancel()
                    del inflight[future]
                    pending.appendleft(job)
            while self.accepted and pending and len(inflight) < 2 * len(self.accepted):
                unreadable = self._submit(client, pending.popleft(), inflight)
                if unreadable:
                    yield unreadable
            if not inflight:
                time.sleep(POLL if pending else 0)
                continue
            try:
                done = wait(list(inflight), timeout=POLL, return_when="FIRST_COMPLETED").done
            except TimeoutError:
                continue
            except Exception:
                raise self._lost(client) from None
            for future in done:
                job, _ = inflight.pop(future)
                graded = self._outcome(client, future, job, pending)
                if graded:
                    yield graded

    def _outcome(self, client, future, job, pending):
        """(job, result, isolation) for a finished task, or None when it must go to another worker."""
        if future.status == "finished":
            out = future.result()
            if "refused" in out:
                self._refuse(out["worker"], out["refused"])
                pending.appendleft(job)
                return None
            return job, out["result"], out["isolation"]
        if future.status == "cancelled" or client.status not in ("running", "newly-created"):
            raise self._lost(client)
        exc = future.exception()  # KilledWorker: the workers it was sent to died each time
        return job, failed_result(job.path.name, f"the grading workers failed: {type(exc).__name__}: {exc}"), None

    def _close(self, client, inflight):
        """Cancel what is left, close the workers' warm kernels, let go of the cluster."""
        try:
            if inflight:
                client.cancel(list(inflight))
            if client.status == "running":
                client.unregister_worker_plugin(self.plugin_name)
        except Exception:
            pass
        try:
            client.close(timeout=10)
        except Exception:
            pass
