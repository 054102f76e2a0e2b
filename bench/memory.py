"""Peak memory per batch worker, sampled from outside: a worker together with its kernels."""

import threading
import time

import psutil


class PeakPerWorker:
    """Samples each worker (a process `depth` levels below this one: 1 for a pool this process runs,
    2 for the pool of a grader it started) with all its descendants, and keeps the peak of the sum of
    their RSS (which counts shared TensorFlow library pages once per process) and of their PSS
    (shared pages divided among the processes sharing them: what they really take together)."""

    def __init__(self, depth=1):
        self.depth = depth
        self.peak_rss = self.peak_pss = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def workers(self):
        level = [psutil.Process()]
        for _ in range(self.depth):
            below = []
            for p in level:
                try:
                    below += p.children()
                except psutil.Error:
                    pass
            level = below
        return level

    def run(self):
        while not self.stop.is_set():
            for worker in self.workers():
                try:
                    full = [p.memory_full_info() for p in [worker] + worker.children(recursive=True)]
                except psutil.Error:
                    continue
                self.peak_rss = max(self.peak_rss, sum(m.rss for m in full))
                self.peak_pss = max(self.peak_pss, sum(getattr(m, "pss", m.rss) for m in full))
            time.sleep(0.5)  # reading smaps is not free: sample gently

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
