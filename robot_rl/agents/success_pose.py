"""An auxiliary task for image encoders: predict where the arm will be when the episode succeeds.

From pixels the critic alone must teach the image necks where the goal is (the hole, the cube), through a sparse
success reward; on peg_insert the policies it trains hover 0-4 mm off the hole's axis (clearance 1.5 mm). The pose
the arm reaches at a success is, in hindsight, that location, and it is measured by the robot itself (forward
kinematics: the proprioception's tool position), so no simulator fact is needed: every row of an episode that ended
in success is labelled with the success pose minus the row's pose (the replay's `pose_slice`, see
robot_rl.replay.buffer). This head regresses that offset from the encoder's features, and its loss joins the
critic's, so it trains the necks (the actor reads detached features, as ever). Only training uses it; what acts and
is deployed does not change. The target is scaled per dim by a running root-mean-square, so the weight does not
depend on the arm's units; or, with `symlog_scale` s > 0, compared as symlog(offset / s) (sign(x) log(1 + |x|)),
which weighs errors near the goal, where precision matters, above those far from it: with s = 2 mm an error of
2 mm at the goal counts as much as one of 12 mm 1 cm away.
"""

from __future__ import annotations

import torch
from torch import nn

from robot_rl.nets.mlp import mlp


class SuccessPoseHead(nn.Module):
    def __init__(
        self, feature_dim: int, pose_dim: int, hidden: int = 256, rms_rate: float = 0.01, symlog_scale: float = 0.0
    ):
        super().__init__()
        self.symlog_scale = symlog_scale
        self.net = mlp(feature_dim, (hidden,), pose_dim, layer_norm=True)
        self.rms_rate = rms_rate
        self.register_buffer("mean_square", torch.zeros(pose_dim))  # running mean of the targets' squares, per dim
        self.register_buffer("seen", torch.zeros((), dtype=torch.bool))

    def predict(self, feats: torch.Tensor) -> torch.Tensor:
        """The predicted offset to the success pose (B, G), in the state's units."""
        out = self.net(feats)
        if self.symlog_scale > 0:
            return out.sign() * out.abs().expm1() * self.symlog_scale
        return out

    def loss(self, feats: torch.Tensor, offset: torch.Tensor, rows: torch.Tensor) -> torch.Tensor | None:
        """Mean squared error of the predicted offset over `rows` (B,) bool, on symlog(offset / symlog_scale) or each dim
        scaled by the targets' running RMS; None when no row of the batch is labelled. `feats` keep their graph (the
        necks learn from it)."""
        if not bool(rows.any()):
            return None
        target = offset[rows]
        if self.symlog_scale > 0:
            scaled = target / self.symlog_scale
            return (self.net(feats[rows]) - scaled.sign() * scaled.abs().log1p()).pow(2).sum(-1).mean()
        with torch.no_grad():
            square = target.pow(2).mean(0)
            if bool(self.seen):
                self.mean_square.lerp_(square, self.rms_rate)
            else:
                self.mean_square.copy_(square)
                self.seen.fill_(True)
            scale = self.mean_square.sqrt().clamp(min=1e-6)
        return ((self.net(feats[rows]) - target) / scale).pow(2).sum(-1).mean()
