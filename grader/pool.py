"""Kernels started ahead of need, so kernel start and the TensorFlow import overlap grading.

Each kernel is still used for one submission only: nothing carries over between students. Under
bubblewrap they are forked from the pool's zygote (grader.zygote), which imports TensorFlow once.
"""

import sys
from collections import deque

from grader import zygote
from grader.kernel import Kernel
from grader.sandbox import Limits

MAX_ZYGOTE_DEATHS = 3  # a zygote that keeps dying is broken here: kernels then start on their own


class WarmKernels:
    """Hands out started kernels, starting the next one as each is taken."""

    def __init__(self, limits=Limits(), ahead=1, warm_up=True):
        self.limits = limits
        self.ahead = ahead
        self.warm_up = warm_up
        self.zygote = None
        self._zygotes = zygote.enabled(limits, warm_up)
        self._deaths = 0
        self._ready = deque()

    def _replace_zygote_if_gone(self):
        """A zygote that died or was stopped goes at once, with the kernels it started ahead (a stopped
        one would keep every launcher waiting; a dead one's kernels died with it)."""
        if self.zygote is None or self.zygote.alive():
            return
        gone, self.zygote = self.zygote, None
        for kernel in [k for k in self._ready if k.zygote is gone]:
            self._ready.remove(kernel)
            kernel.close()
        gone.close()
        self._deaths += 1
        self._zygotes = self._deaths < MAX_ZYGOTE_DEATHS
        print("grader: a worker's zygote exited or stopped; " + ("starting another" if self._zygotes else
              "every kernel of this worker starts on its own from now on"), file=sys.stderr, flush=True)

    def new(self):
        """A kernel started now: forked from the zygote (started first, or again if it died) where there is one."""
        self._replace_zygote_if_gone()
        if self._zygotes and self.zygote is None:
            try:
                self.zygote = zygote.Zygote(self.limits)
            except OSError as exc:
                print(f"grader: no zygote ({exc}): every kernel starts on its own", file=sys.stderr, flush=True)
                self._zygotes = False
        return Kernel(self.limits, self.warm_up, zygote=self.zygote)

    def fill(self):
        while len(self._ready) < self.ahead:
            self._ready.append(self.new())

    def take(self):
        self._replace_zygote_if_gone()
        kernel = self._ready.popleft() if self._ready else self.new()
        self.fill()
        return kernel

    def close(self):
        while self._ready:
            self._ready.popleft().close()
        if self.zygote is not None:
            self.zygote.close()
        self.zygote = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
