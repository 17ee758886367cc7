"""Image encoders: random shift, ResNet-10, frozen-trunk feature caching, pretrained weights from disk."""

from __future__ import annotations

import os
import time

import gymnasium as gym
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from robot_rl import keys
from robot_rl.agents import Agent, AgentConfig, Policy, make_agent
from robot_rl.nets.encoders import IMAGENET_MEAN, IMAGENET_STD, ResNet10, SpatialEmbeddingNeck, random_shift
from robot_rl.nets.pretrained import load_resnet10_weights, save_resnet10_weights

FRONT, WRIST = keys.image_key("front"), keys.image_key("wrist")


def _make_space(size: int = 64) -> gym.spaces.Dict:
    return gym.spaces.Dict(
        {
            keys.STATE: gym.spaces.Box(-1, 1, (5,), np.float32),
            FRONT: gym.spaces.Box(0, 255, (size, size, 3), np.uint8),
            WRIST: gym.spaces.Box(0, 255, (size, size, 3), np.uint8),
        }
    )


def _obs(rng: np.random.Generator, size: int = 64) -> dict[str, np.ndarray]:
    return {
        keys.STATE: rng.uniform(-1, 1, 5).astype(np.float32),
        FRONT: rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
        WRIST: rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
    }


def _fill(agent: Agent, n_steps: int, rng: np.random.Generator, episode_len: int = 10):
    rb = agent.make_replay(capacity=n_steps * 2, seed=0)
    obs = _obs(rng)
    for t in range(n_steps):
        nxt = _obs(rng)
        end = (t + 1) % episode_len == 0
        rb.add(obs, rng.uniform(-1, 1, 4).astype(np.float32), float(rng.normal()), nxt, False, end)
        obs = _obs(rng) if end else nxt
    return rb


def _image_agent(**overrides) -> Agent:
    cfg = AgentConfig(hidden_dims=(32, 32), batch_size=8, latent_dim=16, **overrides)
    return make_agent(cfg, _make_space(), gym.spaces.Box(-1, 1, (4,), np.float32), seed=0)


def _neck_by_channel(neck: SpatialEmbeddingNeck, fmap: torch.Tensor) -> torch.Tensor:
    """HIL-SERL's formula, channel by channel: pool each channel's map with its F weightings, then dense."""
    b, c, h, w = fmap.shape
    pooled = torch.einsum("bcs,csf->bcf", fmap.reshape(b, c, h * w), neck.kernel).reshape(b, -1)
    dense = neck.dense_weight.reshape(-1, neck.dense_weight.shape[-1])
    return neck.out(pooled @ dense + neck.dense_bias)


def test_spatial_embedding_neck_matches_the_per_channel_formula_in_value_and_gradient():
    torch.manual_seed(0)
    neck = SpatialEmbeddingNeck(channels=6, height=3, width=3, latent_dim=5).double()
    fmap = torch.randn(4, 6, 3, 3, dtype=torch.double, requires_grad=True)
    out, ref = neck(fmap), _neck_by_channel(neck, fmap)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(neck(fmap.to(memory_format=torch.channels_last)), ref)  # a frozen trunk's layout
    params = [fmap, neck.kernel, neck.dense_weight, neck.dense_bias]
    weights = torch.randn_like(out)
    got = torch.autograd.grad((out * weights).sum(), params)
    want = torch.autograd.grad((ref * weights).sum(), params)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def _neck_value_and_grads(neck: SpatialEmbeddingNeck, fmap: torch.Tensor, weights: torch.Tensor):
    out = neck(fmap)
    return out.detach(), torch.autograd.grad((out * weights).sum(), list(neck.parameters()))


@pytest.fixture
def pooler(monkeypatch):
    """A fresh pooling chooser (nothing compiled yet) in place of the process-wide one; float32 products."""
    from robot_rl.nets import encoders

    monkeypatch.delenv("ROBOT_RL_POOL", raising=False)
    monkeypatch.setenv("ROBOT_RL_BF16", "off")
    fresh = encoders._Pooler(min_rows=64)
    monkeypatch.setattr(encoders, "_pool", fresh)
    return fresh


def _slow_bmm(monkeypatch) -> None:
    """Makes the eager pooling slow, so that the pooler's timing picks the compiled kernel."""
    from robot_rl.nets import encoders

    fast = encoders._pool_bmm

    def slow(x, kernel):
        time.sleep(0.005)
        return fast(x, kernel)

    monkeypatch.setattr(encoders, "_pool_bmm", slow)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_training_batches_pool_through_the_compiled_kernel_with_the_formulas_result(pooler, dtype, monkeypatch):
    _slow_bmm(monkeypatch)
    torch.manual_seed(0)
    neck = SpatialEmbeddingNeck(channels=32, height=4, width=4, latent_dim=16)
    fmap = torch.randn(64, 32, 4, 4).to(dtype)  # bfloat16: cached trunk features as the replay stores them
    weights = torch.randn(64, 16)
    out, grads = _neck_value_and_grads(neck, fmap, weights)
    assert not pooler.failed and pooler.choice == {((64, 512), dtype, (32, 16, 8)): "compiled"}
    ref = _neck_by_channel(neck, fmap.float())
    want = torch.autograd.grad((ref * weights).sum(), list(neck.parameters()))
    torch.testing.assert_close(out, ref.detach(), rtol=1e-5, atol=1e-5)
    for g, w in zip(grads, want):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)


def test_small_batches_and_pool_bmm_skip_compilation_and_a_failed_compile_falls_back(pooler, monkeypatch):
    torch.manual_seed(0)
    neck = SpatialEmbeddingNeck(channels=32, height=4, width=4, latent_dim=16)
    small, large = torch.randn(8, 32, 4, 4), torch.randn(64, 32, 4, 4)
    neck(small)  # acting sends one row: never waits for a compile
    monkeypatch.setenv("ROBOT_RL_POOL", "bmm")
    neck(large)
    assert pooler._compiled is None and not pooler.choice

    monkeypatch.delenv("ROBOT_RL_POOL")

    def no_compiler(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", no_compiler)
    with pytest.warns(UserWarning, match="compiled spatial pooling unavailable .*no C\\+\\+ compiler.*using torch.bmm"):
        out = neck(large)
    assert pooler.failed
    torch.testing.assert_close(out, _neck_by_channel(neck, large), rtol=1e-5, atol=1e-5)


def test_the_pooling_of_a_shape_is_the_one_that_ran_faster_on_its_first_batch(pooler, monkeypatch):
    """The compiled kernel's speed depends on the CPU's vector width (100x slower than bmm with inductor's
    512-bit code on AVX-512): each shape's first batch times both and keeps the faster for that shape."""
    torch.manual_seed(0)
    neck = SpatialEmbeddingNeck(channels=32, height=4, width=4, latent_dim=16)
    calls, compile_kwargs = [], []
    compile_ = torch.compile

    def slow_counted_compile(fn, **kwargs):  # the compiled kernel, counted and 5 ms slower
        compile_kwargs.append(kwargs)
        inner = compile_(fn, **kwargs)
        return lambda *a: calls.append(1) or time.sleep(0.005) or inner(*a)

    monkeypatch.setattr(torch, "compile", slow_counted_compile)
    fmap = torch.randn(64, 32, 4, 4)
    out = neck(fmap)
    assert pooler.choice == {((64, 512), torch.float32, (32, 16, 8)): "bmm"} and len(calls) == 1 + pooler.timing_calls
    calls.clear()
    for _ in range(3):
        torch.testing.assert_close(neck(fmap), out)
    assert calls == []  # decided: no more timing, no compiled calls for this shape
    torch.testing.assert_close(out, _neck_by_channel(neck, fmap), rtol=1e-5, atol=1e-5)
    assert [k["options"]["cpp.simdlen"] for k in compile_kwargs] == [256]  # compiled once, 256-bit vectors


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_bfloat16_products_of_training_batches_stay_within_bfloat16_rounding(monkeypatch, dtype):
    """With ROBOT_RL_BF16=on the neck's dense products of a training batch take bfloat16 operands: values and
    every gradient within bfloat16 rounding of the float32 formula, and not equal to it (the path was taken).
    A one-row batch (acting) keeps float32 products."""
    monkeypatch.setenv("ROBOT_RL_BF16", "on")
    torch.manual_seed(0)
    neck = SpatialEmbeddingNeck(channels=32, height=4, width=4, latent_dim=16)
    fmap = torch.randn(64, 32, 4, 4).to(dtype)
    weights = torch.randn(64, 16)
    out, grads = _neck_value_and_grads(neck, fmap, weights)
    ref = _neck_by_channel(neck, fmap.float())
    want = torch.autograd.grad((ref * weights).sum(), list(neck.parameters()))
    assert not torch.allclose(out, ref, rtol=1e-6, atol=1e-6)
    assert (out - ref).abs().max() < 2e-2
    for g, w in zip(grads, want):
        assert (g - w).norm() <= 2e-2 * w.norm(), ((g - w).norm(), w.norm())
    torch.testing.assert_close(neck(fmap[:1]), ref[:1].detach(), rtol=1e-5, atol=1e-5)


def test_compute_dtype_follows_robot_rl_bf16_and_refuses_unknown_values(monkeypatch):
    from robot_rl.nets.encoders import compute_dtype, native_bfloat16

    cpu = torch.device("cpu")
    monkeypatch.setenv("ROBOT_RL_BF16", "off")
    assert compute_dtype(cpu) == torch.float32
    monkeypatch.setenv("ROBOT_RL_BF16", "on")
    assert compute_dtype(cpu) == torch.bfloat16
    monkeypatch.setenv("ROBOT_RL_BF16", "auto")
    assert compute_dtype(cpu) == (torch.bfloat16 if native_bfloat16(cpu) else torch.float32)
    monkeypatch.delenv("ROBOT_RL_BF16")
    assert compute_dtype(cpu) == torch.float32  # opt-in
    flags = open("/proc/cpuinfo").read().split() if os.path.exists("/proc/cpuinfo") else []
    if flags:
        assert native_bfloat16(cpu) == ("avx512_bf16" in flags or "amx_tile" in flags)
    monkeypatch.setenv("ROBOT_RL_BF16", "yes")
    with pytest.raises(ValueError, match="ROBOT_RL_BF16='yes'; choose one of"):
        compute_dtype(cpu)


def test_random_shift_moves_each_image_by_at_most_pad_pixels_and_replicates_edges():
    img = torch.arange(10, dtype=torch.uint8).repeat(10, 1)[None, :, :, None].repeat(64, 1, 1, 1)  # column index
    out = random_shift(img, 2, torch.Generator().manual_seed(0))
    assert out.shape == img.shape and out.dtype == torch.uint8
    shift_x = out[:, 5, 5, 0].long() - 5  # the column a pixel came from
    assert set(shift_x.tolist()) == {-2, -1, 0, 1, 2}
    assert torch.all(out[:, :, 0, 0] == (shift_x.clamp(min=0))[:, None])  # left edge replicated when shifted right
    assert torch.all(out[:, :, 9, 0] == (9 + shift_x.clamp(max=0))[:, None])


def test_resnet10_turns_128px_images_into_a_4x4x512_map_with_five_million_weights():
    net = ResNet10().eval()
    out = net(torch.zeros(2, 128, 128, 3, dtype=torch.uint8))
    assert out.shape == (2, 512, 4, 4)
    n_params = sum(p.numel() for p in net.parameters())
    assert 4.8e6 < n_params < 5.0e6  # BasicBlock x [1, 1, 1, 1] = 4.90M


def _resnet10_textbook(net: ResNet10, images: torch.Tensor) -> torch.Tensor:
    """torchvision's order of operations: normalise, conv-BN-ReLU, then max-pool; blocks with out-of-place ReLUs."""
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = (images.permute(0, 3, 1, 2).float() / 255.0 - mean) / std
    x = net.maxpool(torch.relu(net.bn1(net.conv1(x))))
    for block in (net.layer1, net.layer2, net.layer3, net.layer4):
        identity = x if block.downsample is None else block.downsample(x)
        x = torch.relu(block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x))))) + identity)
    return x


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_resnet10_equals_the_textbook_order_of_operations_in_value_and_gradient(mode):
    """Its forward pools before the ReLU, applies ReLUs in place and normalises with one multiply-add; none of
    that may change the map or, for a trainable trunk, the weights' gradients."""
    torch.manual_seed(0)
    net = ResNet10().train(mode == "train")
    images = torch.randint(0, 256, (3, 64, 64, 3), dtype=torch.uint8)
    out = net(images)
    grads = torch.autograd.grad(out.square().sum(), list(net.parameters()))
    ref = _resnet10_textbook(net, images)
    ref_grads = torch.autograd.grad(ref.square().sum(), list(net.parameters()))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    for g, r in zip(grads, ref_grads):  # relative to each gradient's norm: train-mode batch norm amplifies rounding
        assert (g - r).norm() <= 1e-3 * r.norm(), ((g - r).norm(), r.norm())


def test_frozen_resnet_features_are_cached_once_per_frame_and_updates_never_call_the_trunk():
    agent = _image_agent(encoder="resnet10", freeze_encoder=True, feature_cache_augs=3)
    calls = []
    agent.policy.encoder.trunk.register_forward_hook(lambda *_: calls.append(1))
    rb = _fill(agent, 16, np.random.default_rng(0))
    assert len(calls) > 0
    assert rb._obs[FRONT].shape == (32, 3, 512, 2, 2) and rb._obs[FRONT].dtype == torch.bfloat16
    views = rb._obs[FRONT][0].float()
    assert not torch.equal(views[0], views[1])  # the cached augmentations differ
    calls.clear()
    trunk_before = [p.clone() for p in agent.policy.encoder.trunk.parameters()]
    neck_before = [p.clone() for p in agent.policy.encoder.necks.parameters()]
    metrics = agent.update_many(rb, 3)
    assert calls == [] and all(np.isfinite(v) for v in metrics.values())
    assert all(torch.equal(a, b) for a, b in zip(trunk_before, agent.policy.encoder.trunk.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(neck_before, agent.policy.encoder.necks.parameters()))


def test_cached_features_equal_the_trunk_on_the_raw_frame_up_to_bfloat16():
    agent = _image_agent(encoder="resnet10", freeze_encoder=True, feature_cache_augs=1)
    frames = torch.as_tensor(np.random.default_rng(5).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8))
    direct = agent.policy.encoder.trunk(frames)  # (2, 512, 2, 2)
    cached = agent.frame_features(FRONT, frames)  # (2, 1, 512, 2, 2) bfloat16
    assert cached.shape == (2, 1, 512, 2, 2) and cached.dtype == torch.bfloat16
    assert torch.allclose(direct, cached[:, 0].float(), atol=1e-2 * direct.abs().max().item())


def test_a_frozen_trunk_runs_batch_norm_folded_and_follows_weights_loaded_into_it():
    agent = _image_agent(encoder="resnet10", freeze_encoder=True)
    encoder = agent.policy.encoder
    with torch.no_grad():  # non-trivial batch-norm statistics, so folding them in changes the conv weights
        for m in encoder.trunk.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2), m.running_var.uniform_(0.5, 2.0), m.weight.uniform_(0.5, 1.5)
    obs = {k: torch.as_tensor(v)[None] for k, v in _obs(np.random.default_rng(2)).items()}

    def check() -> None:
        with torch.no_grad():
            got = encoder.trunk_features(obs)  # both cameras through the folded copy in one call
            for key in (FRONT, WRIST):
                want = encoder.trunk(obs[key])  # the module as saved, batch norm separate
                assert torch.allclose(got[key], want, atol=1e-5 * want.abs().max().item()), key
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in encoder.frozen_trunk().modules())
        convs = [m for m in encoder.frozen_trunk().modules() if isinstance(m, torch.nn.Conv2d)]
        assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)

    check()
    assert encoder.frozen_trunk() is encoder.frozen_trunk()  # built once
    assert not [k for k in agent.policy.state_dict() if "fold" in k]  # the copy is never saved
    encoder.trunk.load_state_dict(
        {k: v * 1.5 if v.is_floating_point() else v for k, v in encoder.trunk.state_dict().items()}
    )
    check()  # new weights: the folded copy is rebuilt from them


def test_conv_encoder_is_trained_through_the_critic_only():
    agent = _image_agent(encoder="conv")
    rb = _fill(agent, 30, np.random.default_rng(2))
    assert rb._obs[FRONT].dtype == torch.uint8  # a trainable encoder sees pixels
    trunk_before = [p.clone() for p in agent.policy.encoder.trunk.parameters()]
    batch = rb.sample(8)
    agent.update(batch, update_actor=False)
    assert any(not torch.equal(a, b) for a, b in zip(trunk_before, agent.policy.encoder.trunk.parameters()))
    # the actor's step alone leaves the encoder as it is (features are detached for the actor)
    enc_before = [p.clone() for p in agent.policy.encoder.parameters()]
    agent._update_actor(agent.policy.encoder(batch.obs).detach())
    assert all(torch.equal(a, b) for a, b in zip(enc_before, agent.policy.encoder.parameters()))


@pytest.mark.parametrize(
    "overrides",
    [dict(encoder="conv"), dict(encoder="resnet10", freeze_encoder=True, discrete_gripper=True)],
    ids=["conv", "resnet10_frozen_gripper"],
)
def test_image_agents_save_load_and_act_identically(tmp_path, overrides):
    agent = _image_agent(**overrides)
    rb = _fill(agent, 20, np.random.default_rng(3))
    agent.update_many(rb, 2)
    agent.save(tmp_path / "agent")
    restored, sent = Agent.load(tmp_path / "agent"), Policy.from_bytes(agent.policy.to_bytes())
    for policy in (restored.policy, sent):  # a frozen trunk acts through the pass the agent's feature cache built
        policy.prepare_acting()
    obs = _obs(np.random.default_rng(4))
    action = agent.policy.act(obs, deterministic=True)
    assert action.shape == (4,) and np.all(np.abs(action) <= 1)
    np.testing.assert_array_equal(restored.policy.act(obs, deterministic=True), action)
    np.testing.assert_array_equal(sent.act(obs, deterministic=True), action)
    batch = rb.sample(8)
    assert agent.update(batch) == restored.update(batch)


def _hf_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename torchvision-style ResNet keys to those of a transformers ResNetForImageClassification."""
    out = {}
    for k, v in state.items():
        k = k.replace("conv1.", "embedder.embedder.convolution.", 1) if k.startswith("conv1.") else k
        k = k.replace("bn1.", "embedder.embedder.normalization.", 1) if k.startswith("bn1.") else k
        if k.startswith("layer"):
            stage, rest = int(k[5]) - 1, k[7:]
            rest = (
                rest.replace("downsample.0.", "shortcut.convolution.")
                .replace("downsample.1.", "shortcut.normalization.")
                .replace("conv1.", "layer.0.convolution.")
                .replace("bn1.", "layer.0.normalization.")
                .replace("conv2.", "layer.1.convolution.")
                .replace("bn2.", "layer.1.normalization.")
            )
            k = f"encoder.stages.{stage}.layers.0.{rest}"
        out[f"resnet.{k}"] = v
    out["classifier.1.weight"] = torch.zeros(10, 512)
    return out


def test_pretrained_weights_load_from_a_file_a_directory_or_the_hugging_face_cache(tmp_path, monkeypatch):
    torch.manual_seed(0)
    source = ResNet10()
    with torch.no_grad():
        source.bn1.running_mean.uniform_()  # a buffer too, so a silent skip would show
    save_resnet10_weights(source, tmp_path / "r10.safetensors")
    expected = source.state_dict()

    cfg = AgentConfig(
        encoder="resnet10",
        freeze_encoder=True,
        encoder_weights=str(tmp_path / "r10.safetensors"),
        latent_dim=8,
        hidden_dims=(16,),
    )
    agent = make_agent(cfg, _make_space(), gym.spaces.Box(-1, 1, (4,), np.float32), seed=0)
    assert all(torch.equal(v, expected[k]) for k, v in agent.policy.encoder.trunk.state_dict().items())

    snapshot = tmp_path / "hub" / "models--someone--resnet10" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    save_file({k: v.contiguous() for k, v in _hf_names(expected).items()}, str(snapshot / "model.safetensors"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    for spec in ("someone/resnet10", str(snapshot)):
        net = ResNet10()
        load_resnet10_weights(net, spec)
        assert all(torch.equal(v, expected[k]) for k, v in net.state_dict().items()), spec


def test_missing_or_wrong_pretrained_weights_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        load_resnet10_weights(ResNet10(), "nobody/not-cached-anywhere")
    save_file({"fc.weight": torch.zeros(2, 2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="does not hold ResNet-10 weights"):
        load_resnet10_weights(ResNet10(), str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="encoder 'conv' or 'resnet10'"):
        make_agent(AgentConfig(encoder="none"), _make_space(), gym.spaces.Box(-1, 1, (4,), np.float32))
