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
        self._retired = []  # zygotes that died: their folders stay while kernels started from them may run
        self._ready = deque()

    def new(self):
        """A kernel started now: forked from the zygote (started first, or again if it died) where there is one."""
        if self._zygotes and (self.zygote is None or not self.zygote.alive()):
            if self.zygote is not None:
                self._retired.append(self.zygote)
                self.zygote = None
                self._zygotes = len(self._retired) < MAX_ZYGOTE_DEATHS
                print("grader: a worker's zygote exited; " + ("starting another" if self._zygotes else
                      "every kernel of this worker starts on its own from now on"), file=sys.stderr, flush=True)
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
        kernel = self._ready.popleft() if self._ready else self.new()
        self.fill()
        return kernel

    def close(self):
        while self._ready:
            self._ready.popleft().close()
        for z in [*self._retired, self.zygote]:
            if z is not None:
                z.close()
        self.zygote, self._retired = None, []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
