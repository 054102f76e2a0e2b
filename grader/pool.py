"""Kernels started ahead of need, so kernel start and the TensorFlow import overlap grading.

Each kernel is still used for one submission only: nothing carries over between students.
"""

from collections import deque

from grader.kernel import Kernel
from grader.sandbox import Limits


class WarmKernels:
    """Hands out started kernels, starting the next one as each is taken."""

    def __init__(self, limits=Limits(), ahead=1, warm_up=True):
        self.limits = limits
        self.ahead = ahead
        self.warm_up = warm_up
        self._ready = deque()

    def fill(self):
        while len(self._ready) < self.ahead:
            self._ready.append(Kernel(self.limits, self.warm_up))

    def take(self):
        kernel = self._ready.popleft() if self._ready else Kernel(self.limits, self.warm_up)
        self.fill()
        return kernel

    def close(self):
        while self._ready:
            self._ready.popleft().close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
