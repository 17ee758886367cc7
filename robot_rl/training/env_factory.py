"""Making the training and evaluation envs: a sim task or any gymnasium id, seen by the learner the same way.

Whatever the env, the loop sees dict observations (`{keys.STATE: (D,), keys.image_key(cam): (H, W, 3) uint8}`,
via `robot_rl.spaces`) and a Box action space in [-1, 1] (rescaled when the env's bounds differ).
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np

from robot_rl import envs as sim_envs
from robot_rl.spaces import as_dict_obs, as_dict_space, image_keys


class DictObservation(gym.ObservationWrapper):
    """Presents a Box or Dict(Box) observation as a dict of arrays (see `robot_rl.spaces.as_dict_space`)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = as_dict_space(env.observation_space)

    def observation(self, observation: Any) -> dict[str, np.ndarray]:
        return as_dict_obs(observation)


def env_id_of(task: str | None, env_id: str | None) -> str:
    """The gymnasium id to make: `env_id` if given, else the sim task's id."""
    if env_id:
        return env_id
    if task:
        return sim_envs.env_id_for_task(task)
    raise ValueError(f"give a sim task (--task, one of {sorted(sim_envs.TASK_ENV_IDS)}) or a gymnasium id (--env-id)")


SIM_CONTACT_VAR = "ROBOT_RL_SIM_CONTACT"  # robot_rl_sim.contact reads it whenever a sim env is made
SIM_CONTACTS = ("stiff", "bounded")


def use_sim_contact(name: str) -> str:
    """The sim's contact profile (robot_rl_sim.contact) for every env this process makes: `name`, or for "auto" the
    one ROBOT_RL_SIM_CONTACT names, else "stiff". Set in that variable (the sim reads it there, and processes this
    one starts inherit it) and returned, for the run to record. A variable naming another profile than an explicit
    `name` is refused: one run, one physics."""
    current = os.environ.get(SIM_CONTACT_VAR) or None
    chosen = (current or "stiff") if name == "auto" else name
    if chosen not in SIM_CONTACTS:
        source = SIM_CONTACT_VAR if name == "auto" else "sim_contact"
        raise ValueError(f"{source}={chosen!r}: choose one of {list(SIM_CONTACTS)}")
    if current is not None and current != chosen:
        raise ValueError(
            f"{SIM_CONTACT_VAR}={current} but the run's sim contact is {chosen!r}: unset the variable or make them agree"
        )
    os.environ[SIM_CONTACT_VAR] = chosen
    return chosen


def is_sim_task(env_id: str) -> bool:
    return env_id in sim_envs.TASK_ENV_IDS.values()


def make_env(
    env_id: str,
    obs_mode: str = "state",
    render: bool = False,
    max_episode_steps: int | None = None,
    reward_classifier: str | None = None,
) -> gym.Env:
    """The env the loop trains or evaluates on; `render=True` makes `env.render()` return RGB frames.

    `reward_classifier` (a `robot-rl reward train` dir): its prediction replaces the env's reward and ends the
    episode on predicted success (the sim's own success no longer terminates; `info["success"]` stays the
    ground truth, so logs and evaluations still report true success)."""
    kwargs: dict[str, Any] = {}
    if is_sim_task(env_id):
        kwargs["obs_mode"] = obs_mode
        if reward_classifier:
            kwargs["terminate_on_success"] = False
    if render:
        kwargs["render_mode"] = "rgb_array"
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = max_episode_steps
    try:
        env = gym.make(env_id, **kwargs)
    except gym.error.Error as e:
        raise ValueError(
            f"could not make gymnasium env {env_id!r} ({e}); pass a registered id, e.g. Pendulum-v1"
        ) from e
    if not isinstance(env.action_space, gym.spaces.Box):
        raise ValueError(f"{env_id} has action space {env.action_space}; only continuous Box actions can be trained")
    low, high = env.action_space.low, env.action_space.high
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError(f"{env_id} has an unbounded action space {env.action_space}; bounded Box actions are needed")
    if not (np.allclose(low, -1.0) and np.allclose(high, 1.0)):
        unit = np.ones(env.action_space.shape, dtype=np.float32)
        env = gym.wrappers.RescaleAction(env, -unit, unit)  # the policy acts in [-1, 1]
    if not isinstance(env.observation_space, gym.spaces.Dict):
        env = DictObservation(env)
    else:
        as_dict_space(env.observation_space)  # validates: every entry a Box
    if reward_classifier:
        from robot_rl.reward.serve import ClassifierReward, RewardPredictor

        predictor = RewardPredictor.load(reward_classifier)
        missing = [k for k in predictor.image_keys if k not in env.observation_space.spaces]
        if missing:
            raise ValueError(
                f"the reward classifier {reward_classifier} reads {list(predictor.image_keys)}; the env "
                f"has {list(env.observation_space.spaces)}: train from pixels (--obs pixels)"
            )
        env = ClassifierReward(env, predictor, terminate_on_success=True)
    return env


def make_eval_env(
    env_id: str, obs_mode: str, video_episodes: int, max_episode_steps: int | None = None
) -> tuple[gym.Env, int]:
    """The evaluation env and how many episodes per evaluation can be filmed (0 when the env cannot render)."""
    if video_episodes == 0:
        return make_env(env_id, obs_mode, max_episode_steps=max_episode_steps), 0
    env = make_env(env_id, obs_mode, render=True, max_episode_steps=max_episode_steps)
    try:
        env.reset(seed=0)
        frame = env.render()
    except gym.error.DependencyNotInstalled as e:
        frame, why = None, str(e)
    else:
        why = f"render() returned {type(frame).__name__}, not an (H, W, 3) uint8 image"
    if isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.dtype == np.uint8:
        return env, video_episodes
    print(f"[train] no evaluation videos: {env_id} cannot render ({why})")
    env.close()
    return make_env(env_id, obs_mode, max_episode_steps=max_episode_steps), 0


def run_store_meta(env: gym.Env, env_id: str, obs_mode: str) -> dict[str, Any]:
    """Metadata of a run's own episode store: a sim task's description (task, obs_mode, control rate, layouts, as
    `robot-rl demos record` stores it), else the env's id, observation mode and control rate where it has one."""
    meta: dict[str, Any] = {"env_id": env_id, "obs": obs_mode, "source": "online"}
    task_meta = getattr(env.unwrapped, "task_meta", None)
    if is_sim_task(env_id) and callable(task_meta):
        return {**task_meta(), **meta}
    meta["obs_mode"] = "pixels" if image_keys(as_dict_space(env.observation_space)) else "state"
    dt_s = getattr(env.unwrapped, "dt", None)
    if isinstance(dt_s, (int, float)) and dt_s > 0:
        meta["control_rate_hz"] = round(1.0 / float(dt_s), 6)
    return meta


def success_of(info: dict[str, Any]) -> bool | None:
    """The step's success flag if the env reports one (`info["success"]` or `info["is_success"]`), else None."""
    for key in ("success", "is_success"):
        if key in info:
            return bool(np.asarray(info[key]).any())
    return None
