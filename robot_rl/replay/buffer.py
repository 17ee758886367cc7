"""Replay in RAM (or GPU memory): each frame stored once, n-step returns computed at sample time.

Layout: a ring of `capacity` rows. Row t holds obs_t and, when a transition leaves it, action_t, reward_t,
terminated_t, truncated_t. The transition's next observation is row t + next_offset[t] (1, or 0 for the last
row of a stored episode, whose final observation the episode store does not keep). An episode fed step by
step with `add` leaves its final observation in one extra row without a transition. Images are uint8, or,
with `frame_features`, bfloat16 features of a frozen trunk computed once when the frame enters.

Ring overwrites go oldest-row first, so a transition's successors always outlive it.

With `pose_slice` (start, stop) into the state vector, a stored episode that ends in success (terminated with a
positive last reward) also gives each of its rows the success pose's offset from that row's pose (its last
observation's state[start:stop] minus the row's): what an agent's success-pose head learns to predict
(robot_rl.agents.success_pose). Rows fed step by step with `add` carry none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from robot_rl import keys
from robot_rl.replay.batch import Batch
from robot_rl.spaces import as_dict_obs, as_dict_space, obs_spec, spec_image_keys, spec_state_keys

EXTRA_KEYS = (keys.BASE_ACTION, keys.IS_INTERVENTION)
FrameFeatureFn = Callable[[str, torch.Tensor], torch.Tensor]  # (image key, uint8 (N, H, W, C)) -> (N, K, C', h, w)
# frames per trunk call when caching features: on CPU a ResNet-10 pass over 32 frames (x augmentations) keeps
# its activations in cache and runs ~25 % faster per frame than one over 256 (6.5 vs 9 ms per 128x128 image,
# 2 cores); 16 frames (x 2 augmentations) keeps the first conv's 32 MiB output under malloc's mmap threshold
# (robot_rl.cpu), so it is reused, not page-faulted afresh each call: 0 against ~700 minor faults and 1.3 ms
# of system time per frame, user time equal (learner ingest, 1 thread); a GPU wants big batches
_ENCODE_CHUNK_CPU, _ENCODE_CHUNK_GPU = 16, 256


def encode_chunk(device: torch.device) -> int:
    """Frames per trunk call when caching frozen-trunk features on `device` (a BC trainer's demo cache too)."""
    return _ENCODE_CHUNK_CPU if device.type == "cpu" else _ENCODE_CHUNK_GPU


class ReplayBuffer:
    def __init__(
        self,
        obs_space: gym.spaces.Dict,
        action_dim: int,
        capacity: int,
        n_step: int = 1,
        gamma: float = 0.99,
        device: str | torch.device = "cpu",
        frame_features: FrameFeatureFn | None = None,
        seed: int | None = None,
        pose_slice: tuple[int, int] | None = None,
    ):
        if capacity < 2:
            raise ValueError(f"capacity must be at least 2 rows, got {capacity}")
        if n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {n_step}")
        self.spec = obs_spec(as_dict_space(obs_space))
        self.state_keys = spec_state_keys(self.spec)
        self.image_keys = spec_image_keys(self.spec)
        self.action_dim = action_dim
        self.capacity = capacity
        self.n_step = n_step
        self.gamma = gamma
        self.device = torch.device(device)
        self.frame_features = frame_features
        self.generator = torch.Generator(self.device)
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)

        dev, cap = self.device, capacity
        self._obs: dict[str, torch.Tensor] = {}
        for k in self.state_keys:
            self._obs[k] = torch.zeros((cap, self.spec[k][0]), dtype=torch.float32, device=dev)
        for k in self.image_keys:
            if frame_features is None:
                self._obs[k] = torch.zeros((cap, *self.spec[k]), dtype=torch.uint8, device=dev)
            else:
                probe = frame_features(k, torch.zeros((1, *self.spec[k]), dtype=torch.uint8, device=dev))
                self._obs[k] = torch.zeros((cap, *probe.shape[1:]), dtype=probe.dtype, device=dev)
        self._action = torch.zeros((cap, action_dim), dtype=torch.float32, device=dev)
        self._base_action = torch.zeros((cap, action_dim), dtype=torch.float32, device=dev)
        self._is_intervention = torch.zeros(cap, dtype=torch.bool, device=dev)
        self._reward = torch.zeros(cap, dtype=torch.float32, device=dev)
        self._terminated = torch.zeros(cap, dtype=torch.bool, device=dev)
        self._truncated = torch.zeros(cap, dtype=torch.bool, device=dev)
        self._next_offset = torch.ones(cap, dtype=torch.long, device=dev)
        self._has_transition = torch.zeros(cap, dtype=torch.bool, device=dev)
        self._has_transition_cpu = np.zeros(cap, dtype=bool)  # mirror, so bookkeeping never syncs a GPU
        self.pose_slice = None if pose_slice is None else (int(pose_slice[0]), int(pose_slice[1]))
        if self.pose_slice is not None:
            start, stop = self.pose_slice
            if keys.STATE not in self.state_keys or not 0 <= start < stop <= self.spec[keys.STATE][0]:
                raise ValueError(
                    f"pose_slice {pose_slice} must be a non-empty slice of the observation's {keys.STATE!r}"
                )
            self._success_offset = torch.zeros((cap, stop - start), dtype=torch.float32, device=dev)
            self._has_success = torch.zeros(cap, dtype=torch.bool, device=dev)
        self._n_transitions = 0
        self._cursor = 0  # next row to write
        self._rows_written = 0  # one past the highest row ever written
        self._episode_open = False  # `add` is inside an episode whose next obs sits at row _cursor
        self._last_next_state: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        """Number of transitions that can be sampled."""
        return self._n_transitions

    # --- writing ---------------------------------------------------------------------------------
    def add(
        self,
        obs: Any,
        action: np.ndarray,
        reward: float,
        next_obs: Any,
        terminated: bool,
        truncated: bool,
        **extras: Any,
    ) -> None:
        """Append one transition (unbatched). Consecutive calls within an episode must chain obs = previous next_obs."""
        unknown = set(extras) - set(EXTRA_KEYS)
        if unknown:
            raise ValueError(f"unknown extras {sorted(unknown)}; add() accepts {EXTRA_KEYS}")
        obs, next_obs = as_dict_obs(obs), as_dict_obs(next_obs)
        if self._episode_open:
            for k, prev in self._last_next_state.items():
                if not np.array_equal(np.asarray(obs[k], dtype=np.float32).reshape(-1), prev):
                    raise ValueError(
                        f"add(): obs[{k!r}] is not the previous transition's next_obs, but the episode was not ended; "
                        "pass terminated=True or truncated=True on an episode's last transition"
                    )
            self._write_obs((self._rows(1) + 1) % self.capacity, {k: v[None] for k, v in next_obs.items()})
        else:  # a new episode: its first obs and the next obs in one write (one trunk call when caching features)
            both = {k: np.stack([obs[k], next_obs[k]]) for k in self.spec if k in obs and k in next_obs}
            self._write_obs(self._rows(2), both)
        row = self._cursor
        self._write_transition(
            self._rows(1),
            action=np.asarray(action, dtype=np.float32)[None],
            reward=np.asarray([reward], dtype=np.float32),
            terminated=np.asarray([terminated]),
            truncated=np.asarray([truncated]),
            base_action=None
            if keys.BASE_ACTION not in extras
            else np.asarray(extras[keys.BASE_ACTION], dtype=np.float32)[None],
            is_intervention=None if keys.IS_INTERVENTION not in extras else np.asarray([extras[keys.IS_INTERVENTION]]),
            last_has_successor=True,
        )
        self._cursor = (row + 1) % self.capacity
        if terminated or truncated:
            self._advance(1)
            self._episode_open = False
        else:
            self._episode_open = True
            self._last_next_state = {k: np.asarray(next_obs[k], dtype=np.float32).reshape(-1) for k in self.state_keys}

    def add_episode(self, ep: dict[str, np.ndarray]) -> None:
        """Append a stored episode: row t = obs_t, action_t, reward_t, terminated_t, truncated_t (T rows).

        The last transition's next obs is the last obs itself; an episode ending with neither flag counts as truncated.
        """
        required = (*self.spec, keys.ACTION, keys.REWARD, keys.TERMINATED, keys.TRUNCATED)
        missing = [k for k in required if k not in ep]
        if missing:
            raise ValueError(f"episode lacks {missing}; an episode needs {list(required)}")
        n = len(ep[keys.ACTION])
        if n == 0:
            return
        if n > self.capacity:
            raise ValueError(f"episode of {n} steps does not fit a replay of capacity {self.capacity} rows")
        if self._episode_open:  # the open episode keeps its pending next obs row
            self._advance(1)
            self._episode_open = False
        rows = self._rows(n)
        self._write_obs(rows, {k: np.asarray(ep[k]) for k in self.spec})
        truncated = np.asarray(ep[keys.TRUNCATED], dtype=bool).copy()
        terminated = np.asarray(ep[keys.TERMINATED], dtype=bool)
        truncated[-1] |= not terminated[-1]
        self._write_transition(
            rows,
            action=np.asarray(ep[keys.ACTION], dtype=np.float32),
            reward=np.asarray(ep[keys.REWARD], dtype=np.float32),
            terminated=terminated,
            truncated=truncated,
            base_action=ep.get(keys.BASE_ACTION),
            is_intervention=ep.get(keys.IS_INTERVENTION),
            last_has_successor=False,
        )
        if self.pose_slice is not None:
            self._write_success_offsets(rows, ep, bool(terminated[-1]) and float(ep[keys.REWARD][-1]) > 0)
        self._advance(n)

    def _write_success_offsets(self, rows: torch.Tensor, ep: dict[str, np.ndarray], success: bool) -> None:
        start, stop = self.pose_slice
        pose = np.asarray(ep[keys.STATE], dtype=np.float32).reshape(len(rows), -1)[:, start:stop]
        self._success_offset[rows] = torch.as_tensor(pose[-1] - pose).to(self.device)
        self._has_success[rows] = success

    def _rows(self, n: int) -> torch.Tensor:
        """The next n row indices from the cursor, wrapping. (n,) long."""
        return (torch.arange(self._cursor, self._cursor + n, device=self.device)) % self.capacity

    def _advance(self, n: int) -> None:
        self._cursor = (self._cursor + n) % self.capacity

    def _write_obs(self, rows: torch.Tensor, obs: dict[str, np.ndarray]) -> None:
        """Write observations (leading dim N) into rows; any transitions those rows held are dropped."""
        n = rows.shape[0]
        rows_cpu = rows.cpu().numpy()
        self._n_transitions -= int(self._has_transition_cpu[rows_cpu].sum())
        self._has_transition_cpu[rows_cpu] = False
        self._has_transition[rows] = False
        if self.pose_slice is not None:
            self._has_success[rows] = False  # until the rows' episode is known to succeed
        self._rows_written = max(self._rows_written, int(rows_cpu.max()) + 1)  # rows [0, _rows_written) hold data
        for k in self.spec:
            if k not in obs:
                raise ValueError(f"observation lacks {k!r}; expected keys {list(self.spec)}")
            value = obs[k]
            if k in self.state_keys:
                value = value.reshape(n, -1)
                if value.shape[1] != self.spec[k][0]:
                    raise ValueError(f"obs[{k!r}] has {value.shape[1]} values per step, expected {self.spec[k][0]}")
                self._obs[k][rows] = torch.as_tensor(value, dtype=torch.float32).to(self.device)
                continue
            if value.dtype != np.uint8 or tuple(value.shape[1:]) != tuple(self.spec[k]):
                raise ValueError(
                    f"obs[{k!r}] is {value.dtype} {value.shape[1:]}, expected uint8 {tuple(self.spec[k])} per step"
                )
            frames = torch.as_tensor(value).to(self.device)
            if self.frame_features is None:
                self._obs[k][rows] = frames
            else:
                chunk = encode_chunk(frames.device)
                for s in range(0, n, chunk):
                    self._obs[k][rows[s : s + chunk]] = self.frame_features(k, frames[s : s + chunk])

    def _write_transition(
        self,
        rows: torch.Tensor,
        action,
        reward,
        terminated,
        truncated,
        base_action,
        is_intervention,
        last_has_successor: bool,
    ) -> None:
        n = rows.shape[0]
        if action.shape != (n, self.action_dim):
            raise ValueError(f"action has shape {action.shape[1:]}, expected ({self.action_dim},)")
        if not np.all(np.isfinite(action)) or not np.all(np.isfinite(reward)):
            raise ValueError("action and reward must be finite (got NaN or inf)")
        dev = self.device
        self._action[rows] = torch.as_tensor(action).to(dev)
        self._reward[rows] = torch.as_tensor(reward.reshape(n)).to(dev)
        self._terminated[rows] = torch.as_tensor(np.asarray(terminated, dtype=bool).reshape(n)).to(dev)
        self._truncated[rows] = torch.as_tensor(np.asarray(truncated, dtype=bool).reshape(n)).to(dev)
        base = (
            np.zeros((n, self.action_dim), np.float32) if base_action is None else np.asarray(base_action, np.float32)
        )
        self._base_action[rows] = torch.as_tensor(base.reshape(n, self.action_dim)).to(dev)
        interv = np.zeros(n, bool) if is_intervention is None else np.asarray(is_intervention, dtype=bool).reshape(n)
        self._is_intervention[rows] = torch.as_tensor(interv).to(dev)
        offsets = torch.ones(n, dtype=torch.long)
        if not last_has_successor:
            offsets[-1] = 0
        self._next_offset[rows] = offsets.to(dev)
        self._has_transition[rows] = True
        self._has_transition_cpu[rows.cpu().numpy()] = True
        self._n_transitions += n

    # --- sampling --------------------------------------------------------------------------------
    def sample(self, batch_size: int) -> Batch:
        """`batch_size` transitions drawn uniformly, with n-step returns (see Batch.discount)."""
        if self._n_transitions == 0:
            raise ValueError("cannot sample from an empty replay buffer; add transitions first")
        idx = self._sample_rows(batch_size)
        reward, discount, next_rows = self._n_step(idx)
        return Batch(
            obs=self._gather_obs(idx),
            action=self._action[idx],
            reward=reward,
            next_obs=self._gather_obs(next_rows),
            discount=discount,
            base_action=self._base_action[idx],
            is_intervention=self._is_intervention[idx],
            next_base_action=self._base_action[next_rows],  # stored with the row of next_obs
            success_offset=None if self.pose_slice is None else self._success_offset[idx],
            has_success=None if self.pose_slice is None else self._has_success[idx],
        )

    def _sample_rows(self, batch_size: int) -> torch.Tensor:
        """Uniform over rows holding a transition, by rejection (rows without one are ~1 per episode)."""
        picked: list[torch.Tensor] = []
        need = batch_size
        while need > 0:
            cand = torch.randint(0, self._rows_written, (2 * need + 8,), device=self.device, generator=self.generator)
            cand = cand[self._has_transition[cand]][:need]
            picked.append(cand)
            need -= cand.shape[0]
        return picked[0] if len(picked) == 1 else torch.cat(picked)

    def _n_step(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """n-step return, discount gamma^k * (1 - terminated) and next-obs row for transitions at rows idx (B,).

        A policy step's return stops where a person (or the scripted operator) took over: the steps after it were
        theirs, and summing them would credit the policy's action with the correction it caused. It bootstraps from
        the state the take-over started in. A take-over's steps sum on into the policy's after the release."""
        cap, gamma = self.capacity, self.gamma
        ret = self._reward[idx].clone()
        disc = torch.full_like(ret, gamma)
        terminated = self._terminated[idx].clone()
        next_rows = (idx + self._next_offset[idx]) % cap
        alive = ~(terminated | self._truncated[idx])
        by_person = self._is_intervention[idx]
        for _ in range(1, self.n_step):
            alive &= self._has_transition[next_rows] & (by_person | ~self._is_intervention[next_rows])
            j = next_rows
            ret += torch.where(alive, disc * self._reward[j], 0.0)
            terminated |= alive & self._terminated[j]
            disc = torch.where(alive, disc * gamma, disc)
            next_rows = torch.where(alive, (j + self._next_offset[j]) % cap, next_rows)
            alive &= ~(self._terminated[j] | self._truncated[j])
        return ret, disc * (~terminated), next_rows

    def _gather_obs(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {k: self._obs[k][rows] for k in self.state_keys}
        for k in self.image_keys:
            store = self._obs[k]
            if self.frame_features is None:
                out[k] = store[rows]  # (B, H, W, C) uint8
            else:  # one of the cached augmentations per sample: (B, C', h, w) bfloat16
                n_augs = store.shape[1]
                aug = torch.randint(0, n_augs, rows.shape, device=self.device, generator=self.generator)
                flat = store.view(store.shape[0] * n_augs, -1)  # index_select on rows is ~3x faster than 2-d indexing
                out[k] = flat.index_select(0, rows * n_augs + aug).view(rows.shape[0], *store.shape[2:])
        return out
