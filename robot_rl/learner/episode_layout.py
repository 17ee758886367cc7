"""The episode layout the learner accepts, fixed before episodes arrive, and the checks every episode passes.

The learner must not lock onto whatever episode arrives first: a malformed first episode would otherwise
make every legitimate one be refused. So the expected layout comes, in this order, from

1. the run's own episode store (a resumed run: the store's keys are what it will accept anyway),
2. the learner's configuration (`task`, `obs_mode`, `cameras`, `image_size`, `use_rotation`, `joint_names`:
   the layout an actor with the same settings produces, `robot_rl.cell.ActorLayout`),
3. the demo store (its observation keys and action dim, with the step keys every recorder writes),
4. a checkpoint's agent (its observation spec and action dim),

and all of those that exist must agree. Only when none exists is it learned -- from the first episode that
passes every other check (known keys with the recorder's dtypes, equal lengths in 1..max_steps, finite floats,
actions in the action space, valid booleans, uint8 images). A consistent episode of another shape can still
be learned that way: set `task` (or give demos) to rule that out.

An actor episode holds (`robot_rl.data.recorder`): the observation keys (float32 state vectors, uint8 (H, W, C)
images), action / base_action / policy_action float32 (A,), reward float32, terminated / truncated / success /
is_intervention bool, t_capture float64 and t_capture_<camera> float64 per image key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_rl import keys
from robot_rl.data.spec import KeySpec
from robot_rl.learner.episodes import (
    ACTION_HIGH,
    ACTION_LOW,
    ACTION_TOLERANCE,
    EpisodeMismatch,
    is_observation_key,
    spaces_of,
    spec_of_spaces,
)
from robot_rl.learner.ledger import SOURCE_KEYS

_F32, _F64, _BOOL = np.dtype(np.float32), np.dtype(np.float64), np.dtype(bool)
LAYOUT_META = ("task", "obs_mode", "action_layout")  # task_meta fields an episode must agree on (if it names them)
HEADER_SLACK_BYTES = 1 << 20  # safetensors header + metadata (task_meta) allowed on top of the arrays


@dataclass(frozen=True)
class EpisodeLayout:
    """Every key of an acceptable episode with its dtype and per-step shape, and where that came from."""

    specs: dict[str, KeySpec]  # key -> dtype and per-step shape (no source columns: the learner adds them)
    action_dim: int
    source: str  # where the layout came from, for log lines and errors
    meta: dict[str, Any] = field(default_factory=dict)  # expected task_meta values (LAYOUT_META fields known)

    @classmethod
    def canonical(cls, obs: Mapping[str, KeySpec], action_dim: int, source: str, meta: Mapping | None = None):
        """The recorder's key set for these observation keys and action dim."""
        specs = dict(obs)
        specs |= {k: KeySpec(_F32, (action_dim,)) for k in (keys.ACTION, keys.BASE_ACTION, keys.POLICY_ACTION)}
        specs |= {keys.REWARD: KeySpec(_F32, ()), keys.T_CAPTURE: KeySpec(_F64, ())}
        specs |= {k: KeySpec(_BOOL, ()) for k in (keys.TERMINATED, keys.TRUNCATED, keys.SUCCESS, keys.IS_INTERVENTION)}
        specs |= {keys.t_capture_key(keys.camera_of(k)): KeySpec(_F64, ()) for k in obs if keys.is_image_key(k)}
        return cls(dict(sorted(specs.items())), action_dim, source, _layout_meta(meta or {}))

    @classmethod
    def of_obs_spec(cls, obs_spec: Mapping[str, list[int]], action_dim: int, source: str, meta: Mapping | None = None):
        """From an `obs_spec` (3-d: uint8 image, 1-d: float32 state) and an action dim."""
        obs = {k: KeySpec(np.dtype(np.uint8) if len(s) == 3 else _F32, tuple(s)) for k, s in obs_spec.items()}
        return cls.canonical(obs, action_dim, source, meta)

    @classmethod
    def of_store(cls, spec: Mapping[str, KeySpec], source: str, meta: Mapping | None = None) -> EpisodeLayout:
        """Exactly the keys of an episode store (less the learner's source columns)."""
        specs = {k: s for k, s in spec.items() if k not in SOURCE_KEYS}
        if keys.ACTION not in specs or len(specs[keys.ACTION].step_shape) != 1:
            raise ValueError(f"{source} has no per-step action vector (keys {sorted(specs)})")
        return cls(specs, specs[keys.ACTION].step_shape[0], source, _layout_meta(meta or {}))

    @classmethod
    def of_config(cls, actor_layout) -> EpisodeLayout:
        """What an actor with these settings (`robot_rl.cell.ActorLayout`) sends."""
        meta = actor_layout.task_meta()
        return cls.of_obs_spec(
            actor_layout.obs_spec(),
            actor_layout.action_dim,
            f"the configuration (task {actor_layout.task.name}, obs_mode {actor_layout.obs_mode})",
            meta,
        )

    @classmethod
    def learn(cls, episode: Mapping[str, np.ndarray], source: str, meta: Mapping | None = None) -> EpisodeLayout:
        """The recorder's layout of an episode's own observation keys; EpisodeMismatch if they are not plausible."""
        if keys.ACTION not in episode or episode[keys.ACTION].ndim != 2 or episode[keys.ACTION].shape[1] < 1:
            raise EpisodeMismatch(f"episode needs a (T, A) {keys.ACTION!r} array", "layout")
        obs = {}
        for key, value in episode.items():
            if not is_observation_key(key):
                continue
            step = tuple(value.shape[1:])
            if value.dtype == np.uint8 and len(step) == 3 and step[-1] in (1, 3) and min(step) > 0:
                obs[key] = KeySpec(np.dtype(np.uint8), step)
            elif value.dtype == _F32 and len(step) == 1 and step[0] > 0 and not keys.is_image_key(key):
                obs[key] = KeySpec(_F32, step)
            else:
                raise EpisodeMismatch(
                    f"observation {key!r} must be a float32 (D,) state or a uint8 (H, W, 1|3) "
                    f"image per step, got {value.dtype} {step}",
                    "layout",
                )
        if not obs:
            raise EpisodeMismatch(f"episode holds no observation keys (keys: {sorted(episode)})", "layout")
        return cls.canonical(obs, int(episode[keys.ACTION].shape[1]), source, meta)

    def with_latent(self, latent_dim: int) -> EpisodeLayout:
        """This layout with the latent action of noise steering (`noise_action` float32 (K * A,)), which a
        noise-steered actor records at every step (robot_rl.bc.steering)."""
        specs = {**self.specs, keys.NOISE_ACTION: KeySpec(_F32, (latent_dim,))}
        return EpisodeLayout(dict(sorted(specs.items())), self.action_dim, self.source, self.meta)

    @property
    def obs_spec(self) -> dict[str, list[int]]:
        """The agent's observation spec (states flattened to (D,))."""
        return {
            k: list(s.step_shape) if len(s.step_shape) == 3 else [int(np.prod(s.step_shape))]
            for k, s in self.specs.items()
            if is_observation_key(k)
        }

    def step_specs(self) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
        """{key: (dtype, per-step shape)}, what `spaces_of` builds an agent from."""
        return {k: (s.dtype, s.step_shape) for k, s in self.specs.items()}

    def max_payload_bytes(self, max_steps: int) -> int:
        """Largest wire payload an episode of at most `max_steps` steps of this layout can be."""
        row = sum(int(np.prod(s.step_shape)) * s.dtype.itemsize for s in self.specs.values())
        return max_steps * row + HEADER_SLACK_BYTES

    def agrees_with(self, other: EpisodeLayout) -> str:
        """Why two layouts differ in what the agent sees ("" when they agree)."""
        if self.obs_spec != other.obs_spec or self.action_dim != other.action_dim:
            return (
                f"{self.source} gives observations {self.obs_spec} and action dim {self.action_dim}, "
                f"{other.source} gives {other.obs_spec} and {other.action_dim}"
            )
        clash = [k for k in self.meta if k in other.meta and self.meta[k] != other.meta[k]]
        return f"{self.source} and {other.source} disagree on {clash}" if clash else ""

    def check(self, episode: Mapping[str, np.ndarray], max_steps: int, task_meta: Mapping | None = None) -> int:
        """Raise EpisodeMismatch (with its reason) on the first thing that does not fit; return the length."""
        n = check_lengths(episode, max_steps)
        missing, extra = sorted(set(self.specs) - set(episode)), sorted(set(episode) - set(self.specs))
        if missing or extra:
            raise EpisodeMismatch(
                f"keys differ from the expected layout ({self.source}): missing {missing}, unexpected {extra}", "layout"
            )
        for key, want in self.specs.items():
            got = KeySpec(np.dtype(episode[key].dtype), tuple(episode[key].shape[1:]))
            if got != want:
                raise EpisodeMismatch(
                    f"{key!r} must be {want.describe()} per step ({self.source}), got {got.describe()}", "layout"
                )
        check_values(episode)
        clash = [k for k in self.meta if k in (task_meta or {}) and task_meta[k] != self.meta[k]]
        if clash:
            raise EpisodeMismatch(
                f"its task_meta {clash[0]!r} is {task_meta[clash[0]]!r}, the learner expects "
                f"{self.meta[clash[0]]!r} ({self.source})",
                "task_meta",
            )
        return n


def expected_layout(store, actor_layout, demo_store, agent) -> EpisodeLayout | None:
    """The layout every episode must have, from (in this order) the run's episode store, the config's actor layout,
    the demo store and a checkpoint's agent -- those that exist must agree (ValueError otherwise); None if none does."""
    found = []
    if store is not None and store.n_episodes:
        found.append(EpisodeLayout.of_store(store.spec, f"the run's episodes {store.path}", store.meta))
    if actor_layout is not None:
        found.append(EpisodeLayout.of_config(actor_layout))
    if demo_store is not None and demo_store.n_episodes:
        obs_space, action_space = spaces_of({k: (s.dtype, s.step_shape) for k, s in demo_store.spec.items()})
        found.append(
            EpisodeLayout.of_obs_spec(
                spec_of_spaces(obs_space), action_space.shape[0], f"the demos {demo_store.path}", demo_store.meta
            )
        )
    if agent is not None:
        found.append(EpisodeLayout.of_obs_spec(agent.obs_spec, agent.action_dim, "the checkpoint's agent"))
    for other in found[1:]:
        if why := found[0].agrees_with(other):
            raise ValueError(
                f"the learner's episode layouts disagree: {why}; give the actors' task settings and "
                f"demos of the same task and obs mode"
            )
    return found[0] if found else None


def check_lengths(episode: Mapping[str, np.ndarray], max_steps: int) -> int:
    """Every array (T, ...) with the same T, 1 <= T <= max_steps; returns T."""
    lengths = {k: (v.shape[0] if v.ndim else None) for k, v in episode.items()}
    if not lengths or None in lengths.values() or len(set(lengths.values())) != 1:
        raise EpisodeMismatch(f"episode arrays must all be (T, ...) with the same T, got lengths {lengths}", "length")
    n = next(iter(lengths.values()))
    if not 1 <= n <= max_steps:
        raise EpisodeMismatch(
            f"episode has {n} steps; the learner accepts 1..{max_steps} (max_episode_steps)", "length"
        )
    return n


def check_values(episode: Mapping[str, np.ndarray]) -> None:
    """Finite floats, actions inside the action space (+- ACTION_TOLERANCE), booleans 0 or 1."""
    for key, value in episode.items():
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise EpisodeMismatch(
                f"{key!r} holds non-finite values (NaN or inf); refusing to train on them", "non_finite"
            )
        if value.dtype == _BOOL and (value.view(np.uint8) > 1).any():
            raise EpisodeMismatch(f"{key!r} holds bytes that are not booleans (0 or 1)", "bool")
    action = episode[keys.ACTION]
    low, high = ACTION_LOW - ACTION_TOLERANCE, ACTION_HIGH + ACTION_TOLERANCE
    if action.size and (action.min() < low or action.max() > high):
        raise EpisodeMismatch(
            f"actions span [{action.min():.4g}, {action.max():.4g}], outside the action space "
            f"[{ACTION_LOW}, {ACTION_HIGH}] (tolerance {ACTION_TOLERANCE})",
            "action_range",
        )


def _layout_meta(meta: Mapping) -> dict[str, Any]:
    return {k: meta[k] for k in LAYOUT_META if k in meta}
