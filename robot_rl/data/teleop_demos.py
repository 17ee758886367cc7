"""Recording demonstrations by hand: a person drives the simulated task with a teleop device, in real time.

    robot-rl demos record --task pick_cube --teleop keyboard --episodes 10 --out demos/pick_cube_by_hand

Each control period (the task's rate, wall clock) the device's command goes through the same `Arbiter` the
actor uses, with a "policy" that holds the arm: nothing moves unless the person drives. Every step records
the executed action, `is_intervention` (True while the person drives) and the hold as `policy_action`.
The person ends an episode with the device's keys: success (terminated, reward 1), failure (terminated,
reward 0), re-record (discarded: nothing is stored, the same seed is tried again). The simulator's own
success and time limit end it too. Successful episodes are stored; failures only with `keep_failures`.
A device that disconnects mid-episode holds the arm (the arbiter's rule) until the person engages again.

On hardware the same recording runs through the actor node with `warmup:=teleop` (robot_rl.nodes.actor).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robot_rl import keys
from robot_rl.data.recorder import EpisodeRecorder
from robot_rl.data.store import EpisodeStore
from robot_rl.interfaces import Teleop
from robot_rl.teleop.arbiter import Arbiter, ArbiterConfig

DEVICES = ("keyboard", "spacemouse", "ros")  # terminal keys; SpaceMouse over HID; any teleop node via teleop/command


@dataclass(frozen=True)
class TeleopDemoConfig:
    task: str  # sim task name (robot_rl.envs.TASK_ENV_IDS)
    episodes: int  # episodes to store
    out: Path  # episode store directory (created, or appended to)
    device: str = "keyboard"  # one of DEVICES
    mapping: str = ""  # device mapping name or YAML path ("" = the device's default)
    obs_mode: str = "pixels"  # "pixels" or "state"
    seed: int = 0  # attempt j (re-records excluded) resets the env with seed + j
    keep_failures: bool = False  # also store episodes that ended without success
    translation_scale: float = 0.5  # full stick / key -> this fraction of a full translation action
    max_episode_steps: int = 0  # 0 = the task's default
    topic: str = "teleop/command"  # device "ros": the teleop/command topic to read


@dataclass(frozen=True)
class TeleopDemoResult:
    store_path: Path
    added: int  # episodes stored
    successes: int  # episodes that ended in success
    discarded: int  # re-recorded episodes (not stored)
    failures: int  # episodes that ended without success (stored only with keep_failures)
    store_episodes: int


def open_device(cfg: TeleopDemoConfig) -> Teleop:
    """The configured device as a `Teleop` (read() never blocks)."""
    from robot_rl.teleop.mapping import load_mapping

    if cfg.device == "keyboard":
        from robot_rl.teleop.keyboard import TerminalKeyboard

        return TerminalKeyboard(load_mapping(cfg.mapping or "keyboard"))
    if cfg.device == "spacemouse":
        from robot_rl.teleop.spacemouse import HidJoyTeleop

        return HidJoyTeleop(load_mapping(cfg.mapping or "spacemouse_hid"))
    if cfg.device == "ros":
        from robot_rl.nodes.teleop_source import RosTeleop

        return RosTeleop(cfg.topic)
    raise ValueError(f"teleop device {cfg.device!r}; choose one of {DEVICES}")


def record_teleop_demos(
    cfg: TeleopDemoConfig, device: Teleop | None = None, status: Callable[[str], None] | None = None
) -> TeleopDemoResult:
    """Record `cfg.episodes` stored episodes driven by a person; `device` defaults to `open_device(cfg)`."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    from robot_rl_sim.env import make_task_env

    if cfg.episodes < 1:
        raise ValueError(f"episodes must be at least 1; got {cfg.episodes}")
    env = make_task_env(cfg.task, obs_mode=cfg.obs_mode, max_episode_steps=cfg.max_episode_steps or None)
    task = env.unwrapped.task
    meta = {**env.unwrapped.task_meta(), "source": f"teleop:{cfg.device}"}
    store = EpisodeStore.open_or_create(cfg.out, meta)
    recorder = EpisodeRecorder(store)
    action_dim = int(np.prod(env.action_space.shape))
    arbiter = Arbiter(
        ArbiterConfig(use_rotation=bool(task.use_rotation), translation_scale=cfg.translation_scale), action_dim
    )
    period_s = 1.0 / float(meta["control_rate_hz"])
    say = status or (lambda line: print(f"\r\x1b[K{line}", end="", file=sys.stderr, flush=True))
    device = device or open_device(cfg)

    added = successes = discarded = failures = attempt = 0
    try:
        while added < cfg.episodes:
            obs, info = env.reset(seed=cfg.seed + attempt)
            recorder.start(obs, info)
            arbiter.reset()
            device.read()  # keys pressed between episodes do not judge this one
            verdict, steps, driven = _drive_episode(
                env, obs, device, arbiter, recorder, period_s, say, f"episode {added + 1}/{cfg.episodes}"
            )
            if verdict == "rerecord" or not recorder.n_steps:
                recorder.discard()
                discarded += 1
                say(f"episode discarded after {steps} steps ({verdict}): recording it again\n")
                continue
            attempt += 1
            ok = verdict == "success"
            successes += int(ok)
            failures += int(not ok)
            if ok or cfg.keep_failures:
                index = recorder.end()
                added += 1
                say(f"episode {index} stored: {steps} steps, {verdict}, driven {driven}/{steps}\n")
            else:
                recorder.discard()
                say(f"episode not stored ({verdict}; --keep-failures stores those)\n")
    finally:
        device.close()
        env.close()
    return TeleopDemoResult(store.path, added, successes, discarded, failures, store.n_episodes)


def _commit(recorder: EpisodeRecorder, step: tuple, verdict: str | None) -> bool:
    """Record a completed step (the person's verdict, if any, decides its outcome); True if the episode ended."""
    action, hold, next_obs, reward, terminated, truncated, step_info, driven = step
    if verdict:
        reward, terminated, truncated = float(verdict == "success"), True, False
        step_info = {**step_info, "success": verdict == "success"}
    recorder.step(
        action, next_obs, reward, terminated, truncated, step_info, policy_action=hold, is_intervention=driven
    )
    return terminated or truncated


def _drive_episode(
    env, obs, device: Teleop, arbiter: Arbiter, recorder: EpisodeRecorder, period_s: float, say, label: str
) -> tuple[str | None, int, int]:
    """One episode the person drives, paced at `period_s`: (verdict, steps, steps driven). A step is recorded only
    once the next read shows whether a verdict key ends the episode on it; the sim ending it needs no verdict."""
    action_dim = int(np.prod(env.action_space.shape))
    verdict, steps, driven, gripper, pending = None, 0, 0, -1.0, None
    deadline = time.monotonic()
    while True:
        hold = np.zeros(action_dim, np.float32)  # the "policy": hold still, keep the gripper
        hold[-1] = gripper
        quat = obs[keys.STATE][3:7] if isinstance(obs, dict) and keys.STATE in obs else None
        out = arbiter.step(hold, device.read(), quat)
        if out.verdict == "rerecord" or (out.verdict and pending is None):
            verdict = out.verdict
            break
        if pending is not None and _commit(recorder, pending, out.verdict):
            verdict = out.verdict or ("success" if pending[4] else "timeout")
            break
        gripper = float(out.action[-1])
        next_obs, reward, terminated, truncated, step_info = env.step(out.action)
        steps += 1
        driven += int(out.is_intervention)
        pending = (
            out.action,
            hold,
            next_obs,
            float(reward),
            bool(terminated),
            bool(truncated),
            step_info,
            out.is_intervention,
        )
        obs = next_obs
        if terminated or truncated:  # the sim ended it: no verdict to wait for
            _commit(recorder, pending, None)
            verdict = "success" if terminated else "timeout"
            break
        say(
            f"{label} step {steps} | "
            f"{'DRIVING' if out.is_intervention else 'holding'}{' | device lost: arm held' if out.held else ''}"
            " | keys: success / failure / re-record"
        )
        deadline += period_s
        time.sleep(max(0.0, deadline - time.monotonic()))
    return verdict, steps, driven
