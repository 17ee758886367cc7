"""Per-camera augmentation: cameras named in `image_aug_skip` are never shifted, the others are, in both the
trainable-encoder path (`ObsEncoder.augment`) and the frozen trunk's feature cache (`FrameFeatures`)."""

from __future__ import annotations

import pytest
import torch

from robot_rl.agents import AgentConfig
from robot_rl.bc import BCPolicyConfig
from robot_rl.nets.obs_encoder import FrameFeatures, ObsEncoder

SPEC = {"image_front": [48, 48, 3], "image_wrist": [48, 48, 3], "state": [4]}


def _frames(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 48, 48, 3), dtype=torch.uint8, generator=g)


def test_augment_shifts_every_camera_but_the_skipped_one():
    enc = ObsEncoder(SPEC, "conv", 8, False, 4, aug_skip=("wrist", "side"))  # "side": not in this spec, ignored
    obs = {"image_front": _frames(8, 0), "image_wrist": _frames(8, 1), "state": torch.zeros(8, 4)}
    out = enc.augment(obs, torch.Generator().manual_seed(0))
    assert torch.equal(out["image_wrist"], obs["image_wrist"])
    assert not torch.equal(out["image_front"], obs["image_front"])  # 8 frames, shifts up to 4 px: some move
    plain = ObsEncoder(SPEC, "conv", 8, False, 4).augment(obs, torch.Generator().manual_seed(0))
    assert not torch.equal(plain["image_wrist"], obs["image_wrist"])  # the default shifts both


def test_the_frozen_feature_cache_stores_the_unshifted_features_in_every_view_of_a_skipped_camera():
    enc = ObsEncoder(SPEC, "resnet10", 8, True, 4, aug_skip=("wrist",)).eval()
    cache = FrameFeatures(enc, n_augs=3, generator=torch.Generator().manual_seed(0))
    wrist, front = _frames(5, 2), _frames(5, 3)
    w, f = cache("image_wrist", wrist), cache("image_front", front)
    assert w.shape == f.shape and w.shape[:2] == (5, 3) and w.dtype == torch.bfloat16
    with torch.no_grad():
        plain = enc.trunk_features({"image_wrist": wrist, "image_front": front, "state": torch.zeros(5, 4)})
    for view in range(3):  # every view of the wrist frame is the unshifted one
        torch.testing.assert_close(w[:, view].float(), plain["image_wrist"].to(torch.bfloat16).float())
    torch.testing.assert_close(f[:, 0].float(), plain["image_front"].to(torch.bfloat16).float())
    assert not torch.equal(f[:, 1], f[:, 0]) and not torch.equal(f[:, 2], f[:, 0])  # the front camera's are shifted


@pytest.mark.parametrize("cls", [AgentConfig, BCPolicyConfig])
def test_the_configs_take_camera_names_and_refuse_anything_else(cls):
    assert cls(image_aug_skip=["wrist"]).image_aug_skip == ("wrist",)  # from a config file's list
    assert cls(image_aug_skip="wrist").image_aug_skip == ("wrist",)
    with pytest.raises(ValueError, match="image_aug_skip must name cameras"):
        cls(image_aug_skip=("wrist", ""))
