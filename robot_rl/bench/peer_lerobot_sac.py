"""Peer side of `robot-rl bench learner`: LeRobot 0.4.4's SAC learner step, critic updates/s, one JSON line.

A standalone script run by the peer's Python (`.peers-venv/bin/python peer_lerobot_sac.py --spec JSON`);
it imports only LeRobot (and what LeRobot needs) plus the sibling module `timing`. The spec is the
same JSON object our side is built from (`LearnerBenchSpec` in robot_rl/bench/learner.py).

What is timed is one optimisation step of `lerobot.rl.learner.add_actor_information_and_train`
(lerobot 0.4.4, src/lerobot/rl/learner.py, the body of its main `while True` loop after the queues):
`utd_ratio - 1` times { sample a batch from its ReplayBuffer iterator, NaN check, frozen-encoder
feature cache (`get_observation_features`), critic loss/backward/clip/step, discrete-critic
loss/backward/clip/step, target update }, then once more the same with the actor and temperature
updates (policy_update_freq=1) before the final target update. Policy, optimisers and buffer are
built with LeRobot's own classes and functions (SACPolicy, make_optimizers_and_scheduler,
ReplayBuffer(optimize_memory=True) with its default DrQ shift augmentation).

ResNet-10 without a download: LeRobot loads `vision_encoder_name` with
`transformers.AutoModel.from_pretrained(name, trust_remote_code=True)` and reads
`.last_hidden_state`. HIL-SERL uses "helper2424/resnet10" (remote code: 7x7/2 conv stem, max-pool,
four basic blocks of 64/128/256/512 channels with GroupNorm). Offline we save a randomly initialised
`transformers.ResNetModel` of the same shape (ResNetConfig(embedding_size=64,
hidden_sizes=[64, 128, 256, 512], depths=[1, 1, 1, 1], layer_type="basic")) to a temporary folder and
pass that folder as `vision_encoder_name`; it differs only in BatchNorm for GroupNorm, which costs the
same order of FLOPs. LeRobot then freezes it (`freeze_vision_encoder=True`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from types import SimpleNamespace

import torch

# LeRobot, transformers and the sibling module `timing` are imported inside the functions, so that robot_rl
# can import this module (its package walk does) without the peer packages; main() imports tv_cpu_shim first.


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time LeRobot 0.4.4 SAC learner steps (peer side of bench learner).")
    parser.add_argument("--spec", required=True, help="JSON of robot_rl.bench.learner.LearnerBenchSpec")
    parser.add_argument("--updates", type=int, default=4, help="critic updates to time (rounded up to whole UTD steps)")
    parser.add_argument(
        "--warmup-steps", type=int, default=2, help="untimed optimisation steps (torch.compile happens here)"
    )
    parser.add_argument("--buffer-capacity", type=int, default=1000, help="synthetic transitions in the replay buffer")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--torch-compile",
        choices=("on", "off"),
        default="on",
        help="SACConfig.use_torch_compile (LeRobot's default is on)",
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def save_random_resnet10(folder: str) -> str:
    """A randomly initialised ResNet-10 (HIL-SERL shape) saved where AutoModel.from_pretrained finds it offline."""
    from transformers import ResNetConfig, ResNetModel

    config = ResNetConfig(
        num_channels=3,
        embedding_size=64,
        hidden_sizes=[64, 128, 256, 512],
        depths=[1, 1, 1, 1],
        layer_type="basic",
        hidden_act="relu",
        downsample_in_first_stage=False,
    )
    ResNetModel(config).save_pretrained(folder)
    return folder


def make_sac_config(spec: dict, encoder_dir: str | None, device: str, torch_compile: bool):
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.sac.configuration_sac import ActorNetworkConfig, CriticNetworkConfig, SACConfig
    from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_IMAGES, OBS_STATE

    h, w = spec["image_hw"]
    inputs = {OBS_STATE: PolicyFeature(type=FeatureType.STATE, shape=(spec["state_dim"],))}
    if spec["object_state_dim"]:
        inputs[OBS_ENV_STATE] = PolicyFeature(type=FeatureType.ENV, shape=(spec["object_state_dim"],))
    for cam in spec["cameras"]:
        inputs[f"{OBS_IMAGES}.{cam}"] = PolicyFeature(type=FeatureType.VISUAL, shape=(3, h, w))
    # The policy's action feature is the continuous part; the buffer holds it plus the gripper index.
    outputs = {ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(spec["continuous_action_dim"],))}
    return SACConfig(
        input_features=inputs,
        output_features=outputs,
        device=device,
        storage_device="cpu",
        vision_encoder_name=encoder_dir,
        freeze_vision_encoder=spec["freeze_encoder"],
        shared_encoder=True,
        num_discrete_actions=3 if spec["discrete_gripper"] else None,
        num_critics=spec["n_critics"],
        utd_ratio=spec["utd"],
        latent_dim=spec["latent_dim"],
        critic_network_kwargs=CriticNetworkConfig(hidden_dims=list(spec["hidden_dims"])),
        actor_network_kwargs=ActorNetworkConfig(hidden_dims=list(spec["hidden_dims"])),
        discrete_critic_network_kwargs=CriticNetworkConfig(hidden_dims=list(spec["hidden_dims"])),
        use_torch_compile=torch_compile,
        push_to_hub=False,
    )


def fill_buffer(buffer, config, spec: dict, capacity: int, generator: torch.Generator) -> None:
    """Synthetic transitions of the benchmark's shapes, added the way the learner adds actor transitions."""

    def observation() -> dict:
        obs = {}
        for key, feature in config.input_features.items():
            obs[key] = torch.rand((1, *feature.shape), generator=generator)  # images: float in [0, 1], (1, C, H, W)
        return obs

    a_dim = spec["continuous_action_dim"]
    for i in range(capacity):
        action = torch.rand((1, a_dim), generator=generator) * 2 - 1
        if spec["discrete_gripper"]:
            action = torch.cat([action, torch.randint(0, 3, (1, 1), generator=generator).float()], dim=1)
        done = (i + 1) % 100 == 0
        buffer.add(
            state=observation(),
            action=action,
            reward=float(torch.rand(1, generator=generator)),
            next_state=observation(),
            done=done,
            truncated=False,
        )


def make_optimisation_step(policy, optimizers, iterator, clip: float, utd: int):
    """One pass of the learner's main-loop body: utd critic (+ discrete critic) updates, one actor/temperature update."""
    from lerobot.rl.learner import check_nan_in_transition, get_observation_features
    from lerobot.utils.constants import ACTION

    def critic_updates(batch) -> dict:
        observations, next_observations = batch["state"], batch["next_state"]
        check_nan_in_transition(observations=observations, actions=batch[ACTION], next_state=next_observations)
        features, next_features = get_observation_features(policy, observations, next_observations)
        forward_batch = {
            ACTION: batch[ACTION],
            "reward": batch["reward"],
            "state": observations,
            "next_state": next_observations,
            "done": batch["done"],
            "observation_feature": features,
            "next_observation_feature": next_features,
            "complementary_info": batch["complementary_info"],
        }
        loss = policy.forward(forward_batch, model="critic")["loss_critic"]
        optimizers["critic"].zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.critic_ensemble.parameters(), max_norm=clip).item()
        optimizers["critic"].step()
        if policy.config.num_discrete_actions is not None:
            loss_d = policy.forward(forward_batch, model="discrete_critic")["loss_discrete_critic"]
            optimizers["discrete_critic"].zero_grad()
            loss_d.backward()
            torch.nn.utils.clip_grad_norm_(policy.discrete_critic.parameters(), max_norm=clip).item()
            optimizers["discrete_critic"].step()
        return forward_batch

    def step() -> None:
        for _ in range(utd - 1):
            critic_updates(next(iterator))
            policy.update_target_networks()
        forward_batch = critic_updates(next(iterator))
        loss_actor = policy.forward(forward_batch, model="actor")["loss_actor"]
        optimizers["actor"].zero_grad()
        loss_actor.backward()
        torch.nn.utils.clip_grad_norm_(policy.actor.parameters(), max_norm=clip).item()
        optimizers["actor"].step()
        loss_t = policy.forward(forward_batch, model="temperature")["loss_temperature"]
        optimizers["temperature"].zero_grad()
        loss_t.backward()
        torch.nn.utils.clip_grad_norm_([policy.log_alpha], max_norm=clip).item()
        optimizers["temperature"].step()
        policy.update_target_networks()

    return step


def main() -> None:
    args = parse_args()
    spec = json.loads(args.spec)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the benchmark never downloads
    import tv_cpu_shim  # noqa: F401  (must precede torchvision, which LeRobot imports)
    from timing import available_cores, progress, time_calls

    torch.set_num_threads(available_cores())
    torch.manual_seed(args.seed)
    from lerobot.policies.sac.modeling_sac import SACPolicy
    from lerobot.rl.buffer import ReplayBuffer
    from lerobot.rl.learner import make_optimizers_and_scheduler

    with tempfile.TemporaryDirectory(prefix="resnet10-random-") as tmp:
        encoder_dir = save_random_resnet10(tmp) if spec["cameras"] else None
        config = make_sac_config(spec, encoder_dir, args.device, args.torch_compile == "on")
        policy = SACPolicy(config=config).to(config.device)
    policy.train()
    optimizers, _ = make_optimizers_and_scheduler(cfg=SimpleNamespace(policy=config), policy=policy)

    buffer = ReplayBuffer(
        capacity=args.buffer_capacity,
        device=config.device,
        state_keys=config.input_features.keys(),
        storage_device="cpu",
        optimize_memory=True,
    )
    progress(f"[peer lerobot] filling a {args.buffer_capacity}-transition buffer ({spec['name']})")
    fill_buffer(buffer, config, spec, args.buffer_capacity, torch.Generator().manual_seed(args.seed))
    iterator = buffer.get_iterator(batch_size=spec["batch_size"], async_prefetch=config.async_prefetch, queue_size=2)

    step = make_optimisation_step(policy, optimizers, iterator, config.grad_clip_norm, spec["utd"])
    steps = math.ceil(args.updates / spec["utd"])
    timing = time_calls(step, calls=steps, warmup_calls=args.warmup_steps, label=f"[peer lerobot {spec['name']}]")
    print(
        json.dumps(
            {
                "config": spec["name"],
                "critic_updates_per_s": timing.calls * spec["utd"] / timing.elapsed_s,
                "critic_updates": timing.calls * spec["utd"],
                "torch_compile": args.torch_compile == "on",
                "device": config.device,
                "cores": available_cores(),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
