"""Reference implementation of the assignment: the one source of truth for the grader."""

from solution.blocks import convolutional_block, identity_block
from solution.resnet50 import ResNet50

__all__ = ["identity_block", "convolutional_block", "ResNet50"]
