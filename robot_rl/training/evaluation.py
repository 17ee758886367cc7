"""Evaluation: N seeded episodes with the deterministic policy, with frames for a video of the first few."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np

from robot_rl.acting.core import Acting
from robot_rl.data.video import write_mp4
from robot_rl.training.env_factory import env_id_of, make_eval_env, success_of, use_sim_contact

EVAL_SEED_OFFSET = 1_000_000  # evaluation episode i of a run resets with its seed + EVAL_SEED_OFFSET + i
ActFn = Callable[[dict[str, np.ndarray]], np.ndarray]  # one unbatched dict obs -> (A,) action in [-1, 1]


@dataclass
class EvalResult:
    """What one evaluation measured."""

    success_rate: float | None  # fraction of episodes with a success step; None if the env reports no success
    return_mean: float  # mean undiscounted episode return
    return_std: float  # its standard deviation over episodes
    length_mean: float  # mean episode length in env steps
    episodes: int  # episodes evaluated
    eval_s: float  # seconds the evaluation took
    frames: list[list[np.ndarray]] = field(default_factory=list, repr=False)  # per filmed episode: (H, W, 3) uint8
    per_episode: list[dict] = field(default_factory=list, repr=False)  # see `episode_record`

    def metrics(self) -> dict[str, float]:
        """Scalars for logs (no frames)."""
        out = {
            "return_mean": self.return_mean,
            "return_std": self.return_std,
            "length_mean": self.length_mean,
            "eval_episodes": self.episodes,
            "eval_s": round(self.eval_s, 2),
        }
        if self.success_rate is not None:
            out["success_rate"] = self.success_rate
        return out


def evaluate(
    act: ActFn, env: gym.Env, episodes: int, seed: int, video_episodes: int = 0, reset: Callable[[], None] | None = None
) -> EvalResult:
    """Run `episodes` episodes, episode i reset with seed `seed + i`, so every evaluation sees the same starts.

    `reset` (if given) is called after each env reset: a policy with memory (action chunks, a base policy) forgets
    the previous episode there. Frames (`env.render()`, which needs render_mode="rgb_array") are kept for the
    first `video_episodes`.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    t0 = time.perf_counter()
    returns, lengths, successes, frames, records = [], [], [], [], []
    any_success_signal = False
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        if reset is not None:
            reset()
        record = i < video_episodes
        episode_frames = [env.render()] if record else []
        ret, length, succeeded, done = 0.0, 0, False, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(act(obs))
            ret += float(reward)
            length += 1
            done = terminated or truncated
            success = success_of(info)
            if success is not None:
                any_success_signal = True
                succeeded = succeeded or success
            if record:
                episode_frames.append(env.render())
        returns.append(ret)
        lengths.append(length)
        successes.append(succeeded)
        records.append(episode_record(seed + i, succeeded if any_success_signal else None, length, ret, info))
        if record:
            frames.append(episode_frames)
    return EvalResult(
        success_rate=float(np.mean(successes)) if any_success_signal else None,
        return_mean=float(np.mean(returns)),
        return_std=float(np.std(returns)),
        length_mean=float(np.mean(lengths)),
        episodes=episodes,
        eval_s=time.perf_counter() - t0,
        frames=frames,
        per_episode=records,
    )


def episode_record(seed: int, success: bool | None, length: int, ret: float, last_info: dict) -> dict:
    """One evaluated episode: its reset seed, success (None: the env reports none), length, return and, where the env
    reports it (the sim's tasks: `goal_offset_m`, simulator truth), the goal's offset from the tool at the end and how
    far the held object was pushed back into the hand (`grasp_slip_m`, peg_insert)."""
    record = {"seed": int(seed), "success": success, "length": int(length), "return": round(float(ret), 4)}
    offset = last_info.get("goal_offset_m")
    if offset is not None:
        record["goal_offset_mm"] = [round(float(v) * 1e3, 2) for v in np.asarray(offset, np.float64).reshape(-1)]
    slip = last_info.get("grasp_slip_m")
    if slip is not None:
        record["grasp_slip_mm"] = round(float(slip) * 1e3, 2)
    return record


def format_episode(i: int, record: dict) -> str:
    """One readable line of `episode_record`."""
    outcome = {True: "success", False: "failure", None: "ended"}[record["success"]]
    line = (
        f"episode {i} (seed {record['seed']}): {outcome} after {record['length']} steps, return {record['return']:.2f}"
    )
    return line + where_it_ended(record)


def where_it_ended(record: dict) -> str:
    """The sim's truth of an `episode_record` as text ("" without it): "; goal offset ... mm (lateral ... mm)" and
    "; peg pushed ... mm into the hand"."""
    text = ""
    offset = record.get("goal_offset_mm")
    if offset is not None:
        lateral = float(np.hypot(*offset[:2])) if len(offset) >= 2 else abs(offset[0])
        text += f"; goal offset {' '.join(f'{v:+.1f}' for v in offset)} mm (lateral {lateral:.1f} mm)"
    slip = record.get("grasp_slip_mm")
    if slip is not None:
        text += f"; peg pushed {slip:.1f} mm into the hand"
    return text


def acting_fns(acting: Acting) -> tuple[ActFn, Callable[[], None]]:
    """(act, reset) for `evaluate` from an acting core (deterministic, no warm-up, no arbiter): evaluation chooses
    its actions the way training does, the base policy (residual RL) included."""
    return (lambda obs: acting.choose(obs, warmup=False).action), acting.reset


def write_episodes_mp4(episodes: list[list[np.ndarray]], path: Path, fps: float) -> Path:
    """The recorded episodes ((H, W, 3) uint8 RGB frames) one after another in one mp4, a black frame between them."""
    frames = [f for ep in episodes if ep for f in [*ep, np.zeros_like(ep[0])]]
    if not frames:
        raise ValueError(
            "no frames to write: evaluate with video_episodes >= 1 and an env made with render_mode='rgb_array'"
        )
    write_mp4(frames, path, fps)
    return Path(path)


def evaluate_checkpoint(
    checkpoint: Path,
    episodes: int,
    seed: int | None = None,
    video_dir: Path | None = None,
    video_episodes: int = 2,
    device: str = "cpu",
    timer=None,
    sampled: bool = False,
) -> tuple[EvalResult, Path | None]:
    """Evaluate a checkpoint's policy on its run's env; returns the result and the video written (if any).

    `checkpoint`: a run dir (its latest checkpoint), or a `checkpoints/step_<N>` dir. Seeds default to the
    ones the run evaluated with during training, so the numbers are comparable with its eval.jsonl.
    `timer` (a robot_rl.bench.step_timing.StepTimer) times every step's whole action: the call the actor makes per
    control period (`Acting.choose`: the base with its chunk execution, then the residual or the steering policy).
    `sampled`: act with the policy's sampled actions, as training acts, instead of its deterministic ones (seeded by
    `seed`, so a rerun gives the same episodes).
    """
    import torch

    from robot_rl.agents.policy import Policy
    from robot_rl.agents.residual import ResidualPolicy
    from robot_rl.bc.base import load_base_policy, prepare_base_acting
    from robot_rl.learner.checkpoint import find_checkpoint, policy_dir
    from robot_rl.training.config import TrainConfig

    ckpt = find_checkpoint(checkpoint)
    cfg = TrainConfig.from_json(ckpt / "train_config.json")
    use_sim_contact(cfg.sim_contact)  # the physics the run trained on
    # residual RL: the saved residual acts on its base policy; noise steering: the saved policy picks the base's noise
    steer_noise = bool(cfg.base_policy) and cfg.steer == "noise"
    policy = (ResidualPolicy if cfg.base_policy and not steer_noise else Policy).load(policy_dir(ckpt), device=device)
    policy.eval()
    policy.prepare_acting()  # a frozen trunk's fast acting pass (robot_rl.nets.fast_trunk), built once here
    base = None
    if cfg.base_policy:  # a BC base's frozen trunk gets its fast pass too, for the steps it runs its own trunk
        base = load_base_policy(cfg.base_policy, device, policy.obs_spec, None if steer_noise else policy.action_dim)
        prepare_base_acting(base)
    if steer_noise:
        from robot_rl.bc.steering import NoiseSteering

        steering = NoiseSteering(base, cfg.noise_bound)
        acting = Acting(steering.action_dim, policy=policy, steering=steering, deterministic=not sampled)
    else:
        acting = Acting(policy.action_dim, policy=policy, base=base, deterministic=not sampled)
    act, reset = acting_fns(acting)
    if timer is not None:
        timer.label = _acting_label(cfg)
        act = timer.wrap(act)
    filmed = video_episodes if video_dir is not None else 0
    env, filmed = make_eval_env(env_id_of(cfg.task, cfg.env_id), cfg.obs, filmed, cfg.max_episode_steps)
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[], enabled=sampled):  # the caller's RNG untouched
            if sampled:  # seeded like the episodes: a rerun samples the same actions
                torch.manual_seed((cfg.seed if seed is None else seed) + EVAL_SEED_OFFSET)
            result = evaluate(
                act,
                env,
                episodes,
                seed=(cfg.seed if seed is None else seed) + EVAL_SEED_OFFSET,
                video_episodes=filmed,
                reset=reset,
            )
        video = None
        if result.frames:
            fps = env.metadata.get("render_fps") or 10
            video = write_episodes_mp4(result.frames, Path(video_dir) / f"eval_{ckpt.name}.mp4", fps)
    finally:
        env.close()
    return result, video


def _acting_label(cfg) -> str:
    """What one step's action of a run is made of (for timing reports)."""
    if not cfg.base_policy:
        return "policy"
    return f"base ({Path(str(cfg.base_policy)).name}, its chunk execution) + " + (
        "noise-steering policy" if cfg.steer == "noise" else "residual policy"
    )
