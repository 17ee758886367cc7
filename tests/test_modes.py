"""`evaluating`: eval mode inside the block, the module's mode back after it (also on an error), and no walk over
the submodules of a module already in eval mode (what an acting call on a deployed policy is)."""

from __future__ import annotations

import pytest
from torch import nn

from robot_rl.nets.modes import evaluating


def test_a_training_module_evaluates_inside_and_trains_again_after_even_on_an_error():
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    with evaluating(net):
        assert not net.training and not net[1].training
    assert net.training and net[1].training
    with pytest.raises(RuntimeError), evaluating(net):
        raise RuntimeError("inside")
    assert net.training and net[1].training


def test_a_module_already_in_eval_mode_is_left_as_it_is():
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).eval()
    calls = []
    net[1].train = lambda mode=True: calls.append(mode)  # a walk would call every submodule's train()
    with evaluating(net):
        assert not net.training
    assert not net.training and calls == []
