"""`evaluating(module)`: a module in eval mode for a block, as it was after it -- without walking its submodules when
it already is in eval mode (train()/eval() visit every submodule: ~0.5-1 ms for a ResNet-10 policy, on every control
tick when an acting call toggles them)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    was_training = module.training
    if was_training:
        module.eval()
    try:
        yield module
    finally:
        if was_training:
            module.train()
