"""`EpisodeRecorder`: turns a stream of (obs, action, reward, ...) into store episodes.

Used by the training loop, the demo recorder and the ROS actor::

    rec = EpisodeRecorder(store)
    obs, info = env.reset(seed=0)
    rec.start(obs, info)
    while True:
        action = policy(obs)
        obs, reward, terminated, truncated, info = env.step(action)
        rec.step(action, obs, reward, terminated, truncated, info)
        if terminated or truncated:
            break
    index = rec.end()          # or rec.discard() to drop a re-recorded episode

Row t holds obs_t (the observation the action was chosen from), action_t and what followed it
(reward, terminated, truncated, success); the observation after the last step is not stored.
Every episode gets the same key set: the observation keys (a flat array observation becomes
`keys.STATE`), all of `keys.STEP_KEYS`, and `t_capture_<camera>` for every image key. Defaults for
what the caller does not give: base_action zeros, policy_action = action, is_intervention False,
success = info["success"] or False, t_capture = info["t_capture"] of the info that came with the
observation, else the recorder's `time.monotonic()` when the observation was handed over (pass the
reset info to `start` so row 0 uses the same clock as the rest); camera times fall back to t_capture.
An episode that ends without terminated or truncated was cut by the caller: its last row is marked
truncated.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from robot_rl import keys


class EpisodeSink(Protocol):
    """What the recorder writes to: `EpisodeStore` or `MemoryEpisodeStore`."""

    def add_episode(self, steps: Mapping[str, np.ndarray]) -> int: ...


def _obs_dict(obs: Any) -> dict[str, np.ndarray]:
    """A copy of one observation as a dict (a flat array becomes {keys.STATE: array})."""
    if isinstance(obs, Mapping):
        clash = sorted(set(obs) & set(keys.STEP_KEYS))
        if clash:
            raise ValueError(f"observation keys {clash} clash with step keys {list(keys.STEP_KEYS)}; rename them")
        return {str(k): np.array(v, copy=True) for k, v in obs.items()}
    return {keys.STATE: np.array(obs, copy=True)}


class EpisodeRecorder:
    """Buffers one episode in RAM and writes it with `store.add_episode` on `end()`."""

    def __init__(self, store: EpisodeSink) -> None:
        self.store = store
        self._obs: list[dict[str, np.ndarray]] = []  # obs_0 .. obs_T (the last is dropped on end)
        self._t_obs: list[dict[str, float]] = []  # per obs: {"t_capture": .., "t_capture_<cam>": ..}
        self._rows: list[dict[str, np.ndarray]] = []  # per step: action, reward, flags, ...
        self.last_episode: tuple[int, dict[str, np.ndarray]] | None = None  # (index, arrays) of the last one ended

    @property
    def recording(self) -> bool:
        """True between start() and end()/discard()."""
        return bool(self._obs)

    @property
    def n_steps(self) -> int:
        return len(self._rows)

    def start(self, obs: Any, info: Mapping[str, Any] | None = None) -> None:
        """Begin an episode at its first observation (and the reset info, for its capture times)."""
        if self._rows:
            raise RuntimeError(
                f"start() while an episode of {len(self._rows)} steps is being recorded; call end() or discard() first"
            )
        self._obs, self._t_obs = [], []
        self._add_obs(obs, info or {})

    def step(
        self,
        action: np.ndarray,
        obs_next: Any,
        reward: float,
        terminated: bool,
        truncated: bool,
        info: Mapping[str, Any] | None,
        base_action: np.ndarray | None = None,
        policy_action: np.ndarray | None = None,
        is_intervention: bool = False,
        noise_action: np.ndarray | None = None,
    ) -> None:
        """Record the action taken from the current observation and what followed it (`noise_action`: the latent
        action of a noise-steered run, stored as `keys.NOISE_ACTION`; give it at every step of an episode or never)."""
        if not self._obs:
            raise RuntimeError("step() before start(): call start(obs) with the episode's first observation")
        info = info or {}
        action = np.asarray(action, dtype=np.float32).reshape(-1)  # (A,)
        base = np.zeros_like(action) if base_action is None else np.asarray(base_action, np.float32).reshape(-1)
        proposed = action if policy_action is None else np.asarray(policy_action, np.float32).reshape(-1)
        for name, value in (("base_action", base), ("policy_action", proposed)):
            if value.shape != action.shape:
                raise ValueError(f"{name} must have the action's shape {action.shape}; got {value.shape}")
        self._rows.append(
            {
                keys.ACTION: action,
                keys.BASE_ACTION: base,
                keys.POLICY_ACTION: proposed.copy(),
                keys.IS_INTERVENTION: np.bool_(is_intervention),
                keys.REWARD: np.float32(reward),
                keys.TERMINATED: np.bool_(terminated),
                keys.TRUNCATED: np.bool_(truncated),
                keys.SUCCESS: np.bool_(info.get("success", False)),
            }
        )
        if noise_action is not None:
            self._rows[-1][keys.NOISE_ACTION] = np.asarray(noise_action, np.float32).reshape(-1)
        self._add_obs(obs_next, info)

    def end(self) -> int:
        """Write the episode to the store and return its index (durable when this returns).

        If the store refuses the episode (StoreError), it stays buffered: fix the cause and call
        end() again, or discard() it.
        """
        if not self._rows:
            raise RuntimeError("end() with no recorded steps: call start(obs) and step(...) at least once")
        n = len(self._rows)
        steps = {key: np.stack([o[key] for o in self._obs[:n]]) for key in self._obs[0]}
        for key in self._rows[0]:
            steps[key] = np.stack([r[key] for r in self._rows])
        if not (steps[keys.TERMINATED][-1] or steps[keys.TRUNCATED][-1]):
            steps[keys.TRUNCATED][-1] = True  # cut by the caller: bootstrap from the last observation
        for key in self._t_obs[0]:
            steps[key] = np.array([t[key] for t in self._t_obs[:n]], dtype=np.float64)
        index = self.store.add_episode(steps)
        self.discard()
        order = getattr(self.store, "keys", None) or sorted(steps)  # the store's key order, as get_episode reads it
        self.last_episode = (index, {key: steps[key] for key in order})
        return index

    def discard(self) -> None:
        """Drop the episode being recorded (e.g. a person asked to re-record it)."""
        self._obs, self._t_obs, self._rows = [], [], []

    def _add_obs(self, obs: Any, info: Mapping[str, Any]) -> None:
        obs = _obs_dict(obs)
        if self._obs and set(obs) != set(self._obs[0]):
            raise ValueError(f"observation keys changed within the episode: {sorted(self._obs[0])} -> {sorted(obs)}")
        t_capture = float(info.get(keys.T_CAPTURE, time.monotonic()))
        times = {keys.T_CAPTURE: t_capture}
        for key in obs:
            if keys.is_image_key(key):
                cam_key = keys.t_capture_key(keys.camera_of(key))
                times[cam_key] = float(info.get(cam_key, t_capture))
        self._obs.append(obs)
        self._t_obs.append(times)
