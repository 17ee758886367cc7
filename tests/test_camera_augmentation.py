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


def test_a_three_stage_trunk_gives_a_finer_grid_acts_through_the_prepared_pass_and_takes_full_resnet10_weights(
    tmp_path,
):
    from robot_rl.nets.encoders import ResNet10
    from robot_rl.nets.pretrained import load_resnet10_weights, save_resnet10_weights

    full = ResNet10()
    torch.manual_seed(0)
    for p in full.parameters():  # not the init's: the copy below must carry them
        p.data.normal_(0, 0.05)
    save_resnet10_weights(full, tmp_path / "r10.safetensors")
    three = ObsEncoder(SPEC, "resnet10", 8, True, 4, stages=3).eval()
    four = ObsEncoder(SPEC, "resnet10", 8, True, 4).eval()
    assert three.trunk.layer4 is None and not three.same_trunk_layout(four)
    load_resnet10_weights(three.trunk, str(tmp_path / "r10.safetensors"))  # the fourth stage's tensors left out
    torch.testing.assert_close(three.trunk.layer3.conv1.weight, full.layer3.conv1.weight)
    frames = _frames(2, 4)
    with torch.no_grad():
        eager = three.trunk(frames)  # stride 16: 48 px -> 3x3 cells of 256 channels
        assert eager.shape == (2, 256, 3, 3) and four.trunk(frames).shape == (2, 512, 2, 2)
        full.eval()
        x = torch.addcmul(full.pixel_shift, frames.permute(0, 3, 1, 2).float(), full.pixel_scale)
        x = full.maxpool(full.bn1(full.conv1(x))).relu_()
        torch.testing.assert_close(eager, full.layer3(full.layer2(full.layer1(x))))  # the full trunk's third stage
        three.prepare_acting()
        obs = {"image_front": frames, "image_wrist": _frames(2, 5), "state": torch.zeros(2, 4)}
        prepared = three.trunk_features(obs)["image_front"]
    torch.testing.assert_close(prepared, eager, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="encoder_stages must be 3 or 4"):
        AgentConfig(encoder_stages=2)
