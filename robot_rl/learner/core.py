"""Learner: the learning core of `robot-rl train` and of the learner node, in plain Python (no ROS, no sim).

    learner = Learner(cfg, run_dir, store=store, wandb=log)       # seeds python, numpy and torch
    learner.new_agent(obs_space, action_space, agent_cfg)         # or learner.resume_agent(checkpoint, base_policy)
    learner.open_replays(demo_store, checkpoint=checkpoint)       # replays, sampler, RNG state, refill from the store
    learner.add_episode(arrays, meta)                             # durable in <run>/episodes, into replay, logged
    learner.update(n)  /  learner.update_owed(max_n)              # n updates, or those the update budget owes
    learner.policy_bytes(); learner.checkpoint(config_record); learner.status(); learner.close()

It owns what both processes did twice before: building and resuming the agent; the replays -- online, demos
(relabelled with a base policy for residual RL) and corrections (intervened transitions also go to the demo
replay, HIL-SERL) -- and the sampler mixing them at `demo_fraction`; the update budget (`budget.UpdateBudget`);
the RLIF take-over penalty, applied in ONE place, `_learn_from`, as an episode enters replay (the episode store
keeps raw rewards, so a resumed run re-applies it exactly); checkpoints; and the one episode log
(`episode_log`). The caller owns acting, evaluation, transport and ordering (the node: `service.LearnerService`).

Set-up is in two steps because the in-process loop loads its acting parts (base policies, the operator) between
the agent and the replays, and the random streams depend on that order: `new_agent` / `resume_agent`, then
`open_replays`.
"""

from __future__ import annotations

import json
import random
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from robot_rl import keys
from robot_rl.agents import Agent, make_agent
from robot_rl.agents.residual import ResidualAgent, is_residual_agent_dir, make_residual_agent
from robot_rl.cpu import keep_freed_memory
from robot_rl.data.store import EpisodeStore
from robot_rl.errors import RunError
from robot_rl.learner import episode_log
from robot_rl.learner.budget import UpdateBudget
from robot_rl.learner.checkpoint import RunCounters, restore_rng_state, rng_state, save_checkpoint
from robot_rl.learner.core_config import LearnerCoreConfig
from robot_rl.learner.corrections import add_interventions, add_own_success, penalize_takeovers
from robot_rl.learner.episodes import check_episode
from robot_rl.learner.ledger import source_columns
from robot_rl.learner.timers import SectionTimers
from robot_rl.replay import MixedSampler, ReplayBuffer, sizing

EPISODES_DIR = "episodes"  # <run>/episodes: every online episode (zarr EpisodeStore)


def seed_everything(seed: int) -> np.random.Generator:
    """Seed python, numpy's global and torch's global generators; a numpy Generator for the caller's own draws."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def check_demo_store(demo_store: EpisodeStore, obs_spec: dict[str, list[int]], action_dim: int) -> None:
    """ValueError naming both sides when the demos do not fit the agent's observations and actions."""
    missing = sorted(set(obs_spec) - set(demo_store.keys))
    if missing:
        raise ValueError(
            f"the demo store {demo_store.path} lacks observation keys {missing} of this env "
            f"(it has {sorted(demo_store.keys)}); record demos with the same --obs mode"
        )
    stored = {k: list(demo_store.spec[k].step_shape) for k in obs_spec}
    actions = tuple(demo_store.spec[keys.ACTION].step_shape)
    if stored != obs_spec or actions != (action_dim,):
        raise ValueError(
            f"the demo store {demo_store.path} has observation shapes {stored}, this env "
            f"{obs_spec} (actions {actions} and ({action_dim},)); record demos of the same task with "
            "the same --obs mode"
        )


class Learner:
    """Agent, replays, update budget, checkpoints and episode log of one run dir (see the module docstring)."""

    def __init__(
        self,
        cfg: LearnerCoreConfig,
        run_dir: Path,
        *,
        store: EpisodeStore | None = None,
        wandb=None,
        log: Callable[[str], None] = print,
        min_steps_to_train: int = 0,
        success_window: int = 20,
        capacity_option: str = "replay_capacity",
    ) -> None:
        self.cfg, self.run_dir, self.log, self.wandb = cfg, Path(run_dir), log, wandb
        self.store = store  # the run's episodes; the node's is made by its first episode (its task_meta)
        self.min_steps_to_train, self.capacity_option = min_steps_to_train, capacity_option
        keep_freed_memory()  # multi-MiB update tensors reuse freed memory instead of fresh page-faulting mmaps
        self.np_rng = seed_everything(cfg.seed)  # checkpointed with the rest: the in-process loop acts with it
        self.agent: Agent | None = None
        self.saved: RunCounters | None = None  # the resumed checkpoint's counters
        self.online: ReplayBuffer | None = None
        self.demos: ReplayBuffer | None = None  # demos and corrections (None: neither)
        self.sampler: MixedSampler | None = None
        self.budget = UpdateBudget(1, min_steps_to_train)
        self.episodes, self.env_steps = 0, 0  # stored online episodes and their env steps
        self.recent_success: deque[bool] = deque(maxlen=success_window)
        self.recent_interventions: deque[float] = deque(maxlen=success_window)
        self.recent_autonomous: deque[bool] = deque(maxlen=success_window)  # succeeded without a take-over
        self.metrics: dict[str, float] = {}  # the last update's losses
        # what a stored episode is to the agent's replay (None: itself; noise steering: robot_rl.bc.steering's
        # latent_episode, the latent action in place of the executed one); set before open_replays
        self.replay_view: Callable[[dict], dict] | None = None
        self.timers = SectionTimers()
        self._t_start, self._wall_before = time.perf_counter(), 0.0

    # --- the agent ----------------------------------------------------------------------------------
    def new_agent(self, obs_space, action_space, agent_cfg, residual_cfg=None) -> Agent:
        """A fresh agent for these spaces; a residual one (on a base policy) when `residual_cfg` is given."""
        if residual_cfg is not None:
            self.agent = make_residual_agent(
                agent_cfg, residual_cfg, obs_space, action_space, device=self.cfg.device, seed=self.cfg.seed
            )
        else:
            self.agent = make_agent(agent_cfg, obs_space, action_space, device=self.cfg.device, seed=self.cfg.seed)
        return self.agent

    def resume_agent(self, checkpoint: Path, base_policy: str | None, steer: str = "residual") -> Agent:
        """The checkpoint's agent (nets, optimisers, its RNG) and counters; a residual agent needs `base_policy`
        (a noise-steering agent, `steer` "noise", is a plain one acting in the base's noise space)."""
        residual = is_residual_agent_dir(Path(checkpoint) / "agent")
        if residual != (bool(base_policy) and steer == "residual"):
            raise ValueError(
                f"checkpoint {checkpoint} holds a {'residual' if residual else 'plain'} agent but "
                f"base_policy is {base_policy or 'not set'}: residual runs resume with the same "
                "base_policy"
            )
        self.agent = (ResidualAgent if residual else Agent).load(Path(checkpoint) / "agent", device=self.cfg.device)
        self.saved = RunCounters.from_json(Path(checkpoint) / "progress.json")
        self._wall_before = self.saved.train_wall_s
        return self.agent

    def replay_capacity(self) -> int:
        """Online replay rows: the configured count, or what fits this machine for the agent's observations."""
        return self.cfg.replay_capacity or sizing.auto_capacity(self.agent.obs_spec)

    # --- replays --------------------------------------------------------------------------------------
    def open_replays(
        self,
        demo_store: EpisodeStore | None,
        relabel: Callable[[dict], dict] | None = None,
        intervention_rows: int = 0,
        checkpoint: Path | None = None,
        visit: Callable[[dict], None] | None = None,
    ) -> None:
        """Online and demo replays and their sampler; the checkpoint's random states; every stored episode back
        into replay (`visit` sees each first). `relabel`: demo episode -> episode with the base's `base_action`
        (residual RL). `intervention_rows`: demo-replay rows kept for corrections (0: corrections are not kept)."""
        agent, capacity = self.agent, self.replay_capacity()
        need_gb = (
            sizing.check_capacity(capacity, agent.obs_spec, option=self.capacity_option)
            if agent.device.type == "cpu"
            else sizing.row_bytes(agent.obs_spec) * capacity / 1e9
        )
        fits = " (what fits this machine's RAM; replay_capacity sets it)" if capacity < sizing.DEFAULT_CAPACITY else ""
        self.log(f"online replay: {capacity} transitions, ~{need_gb:.2f} GB of observations{fits}")
        self.online = agent.make_replay(capacity, seed=self.cfg.seed + 1)
        self.demos = self._demo_replay(demo_store, relabel, intervention_rows)
        self._make_sampler()
        self.budget = UpdateBudget(
            agent.cfg.utd_ratio,
            self.min_steps_to_train,
            demo_transitions=len(self.demos) if self.demos is not None else 0,
            updates_done=agent.step,
        )
        if checkpoint is not None:  # generators the checkpoint lacks (demos added on resume) keep their seeds
            state = json.loads((Path(checkpoint) / "rng.json").read_text())
            restore_rng_state(
                state, self.np_rng, {k: g for k, g in self._generators().items() if k in state["torch_generators"]}
            )
        self._refill(visit)

    def _demo_replay(self, demo_store, relabel, intervention_rows: int) -> ReplayBuffer | None:
        agent = self.agent
        if demo_store is not None and demo_store.n_episodes and self.cfg.demo_fraction > 0:
            check_demo_store(demo_store, agent.obs_spec, agent.action_dim)
            demos = agent.make_replay(demo_store.n_steps + 1 + intervention_rows, seed=self.cfg.seed + 2)
            for episode in demo_store.iter_episodes():
                check_episode(episode, agent.obs_spec, agent.action_dim)
                demos.add_episode(relabel(episode) if relabel is not None else episode)
            return demos
        if intervention_rows:
            return agent.make_replay(intervention_rows, seed=self.cfg.seed + 2)  # filled by the first corrections
        return None

    def _make_sampler(self) -> None:
        """Online and demo replay mixed at demo_fraction; the demo replay joins once it holds something."""
        f = self.cfg.demo_fraction if self.demos is not None and len(self.demos) else 0.0
        if f:
            self.sampler = MixedSampler([(self.online, 1.0 - f), (self.demos, f)], demo_sources=(1,))
        else:
            self.sampler = MixedSampler([(self.online, 1.0)])

    def _generators(self) -> dict[str, torch.Generator]:
        gens = {"online_replay": self.online.generator}
        if self.demos is not None:
            gens["demo_replay"] = self.demos.generator
        return gens

    def _learn_from(self, episode: dict) -> None:
        """An episode into the replays: online with the RLIF penalty (the one place it is applied), its
        corrections (and with `successes_to_demos` the policy's own successes) into the demo replay (which joins the
        batches with the first of them)."""
        if keys.IS_INTERVENTION in episode:
            episode = penalize_takeovers(episode, self.cfg.intervention_penalty)
        if self.replay_view is not None:
            episode = self.replay_view(episode)
        self.online.add_episode(episode)
        if self.demos is None:
            return
        added = 0
        if self.cfg.intervention_to_demos and keys.IS_INTERVENTION in episode:
            added += add_interventions(self.demos, episode)
        if self.cfg.successes_to_demos:
            added += add_own_success(self.demos, episode)
        if added and len(self.sampler.sources) == 1:
            self._make_sampler()
            self.log(
                f"{'corrections or own successes' if self.cfg.successes_to_demos else 'corrections'} arrived: "
                f"{len(self.demos)} transitions now make up "
                f"{self.cfg.demo_fraction:.0%} of every batch"
            )

    def _refill(self, visit: Callable[[dict], None] | None) -> None:
        """Every stored episode back into replay, the counts from the store, the episode log made to match it."""
        n = self.store.n_episodes if self.store is not None else 0
        if self.saved is not None and n < self.saved.episodes:
            where = self.store.path if self.store is not None else self.run_dir / EPISODES_DIR
            raise RunError(
                f"{where} holds {n} episodes but the checkpoint counted {self.saved.episodes}: the episode "
                "store does not belong to this checkpoint"
            )
        if self.saved is not None and n > self.saved.episodes:
            extra = int(self.store.episode_lengths[self.saved.episodes :].sum())
            self.log(
                f"{n - self.saved.episodes} episodes ({extra} steps) were recorded after the checkpoint; "
                "they go back into replay"
            )
        for episode in self.store.iter_episodes() if n else []:
            if visit is not None:
                visit(episode)
            self._learn_from(episode)
            self.budget.add_steps(len(episode[keys.ACTION]))
        self.episodes, self.env_steps = n, self.budget.received_steps
        for record in episode_log.sync_with_store(self.run_dir, self.store):
            self._count(bool(record["success"]), float(record.get("intervention_rate", 0.0)))

    # --- episodes in ----------------------------------------------------------------------------------
    def add_episode(self, arrays: dict[str, np.ndarray], meta: dict | None = None) -> int:
        """Store an episode durably, then learn from it (`learn_episode`); its position in the store. `meta`: the
        sender's {actor_id, index, policy_version, task_meta} (the node's episodes), None in process."""
        position = self.store_episode(arrays, meta)
        self.learn_episode(arrays, position, meta)
        return position

    def store_episode(self, arrays: dict[str, np.ndarray], meta: dict | None = None) -> int:
        """Write the episode (with its sender's source columns) to <run>/episodes; durable when this returns."""
        stored = arrays
        if meta is not None:
            n = len(arrays[keys.ACTION])
            stored = {**arrays, **source_columns(meta["actor_id"], meta["index"], meta.get("policy_version", -1), n)}
            if self.store is None:
                self.store = EpisodeStore.open_or_create(
                    self.run_dir / EPISODES_DIR, {**(meta.get("task_meta") or {}), "source": "actors"}
                )
        return self.store.add_episode(stored)

    def learn_episode(self, arrays: dict[str, np.ndarray], position: int, meta: dict | None = None) -> dict:
        """A stored episode into replay and the counts; its line of the episode log (returned) and wandb."""
        self._learn_from(arrays)
        n = len(arrays[keys.ACTION])
        self.budget.add_steps(n)
        self.episodes, self.env_steps = self.store.n_episodes, self.budget.received_steps
        record = episode_log.episode_record(arrays, position, self.env_steps, meta, self.agent.step, self.wall_s())
        episode_log.append(self.run_dir, record)
        self._count(record["success"], record["intervention_rate"])
        if self.wandb is not None:
            self.wandb.log(
                {
                    "train/episode_return": record["return"],
                    "train/episode_success": float(record["success"]),
                    "train/intervention_rate": record["intervention_rate"],
                },
                self.env_steps,
            )
        return record

    def _count(self, success: bool, intervention_rate: float) -> None:
        """One episode into the recent windows; the agent's entropy target follows its autonomous success."""
        self.recent_success.append(bool(success))
        self.recent_interventions.append(float(intervention_rate))
        self.recent_autonomous.append(bool(success) and intervention_rate == 0.0)
        if self.agent is not None and len(self.recent_autonomous) >= self.recent_autonomous.maxlen // 2:
            self.agent.set_autonomous_success(float(np.mean(self.recent_autonomous)))

    # --- updates --------------------------------------------------------------------------------------
    @property
    def can_update(self) -> bool:
        """An agent exists and the online replay holds a transition (the sampler draws from it)."""
        return self.agent is not None and self.online is not None and len(self.online) > 0

    @property
    def owed_updates(self) -> int:
        """Updates the budget owes: utd_ratio per received env step once replay holds min_steps_to_train."""
        return self.budget.owed if self.agent is not None else 0

    def update(self, n: int | None = None) -> int:
        """`n` gradient updates (default: the agent's utd_ratio), in `update_many` calls of utd_ratio each."""
        utd = self.agent.cfg.utd_ratio
        n, done = (utd if n is None else n), 0
        with self.timers("update"):
            while done < n:
                k = min(utd, n - done)
                self.metrics = self.agent.update_many(self.sampler, k)
                done += k
        self.budget.add_updates(done)
        return done

    def update_owed(self, max_updates: int) -> int:
        """Up to `max_updates` of the owed updates; the count done."""
        if self.agent is None:
            return 0
        return self.update(self.budget.next_chunk(max_updates))

    # --- out: policy, checkpoints, status --------------------------------------------------------------
    def policy_bytes(self) -> bytes:
        """The deployable policy as one self-describing payload (`Policy.to_bytes`)."""
        return self.agent.policy.to_bytes()

    def wall_s(self) -> float:
        """Learner seconds, summed over resumed segments (this one counted from construction or `start_clock`)."""
        return self._wall_before + time.perf_counter() - self._t_start

    def start_clock(self) -> None:
        """Count this segment's wall seconds from now (the in-process loop: set-up and replay refill excluded)."""
        self._t_start = time.perf_counter()

    def checkpoint(self, config_record: dict) -> Path | None:
        """Agent, counters and random states into `<run>/checkpoints/step_<env steps>` with `config_record` as its
        train_config.json (None before an agent exists)."""
        if self.agent is None:
            return None
        run_id = self.wandb.run_id if self.wandb is not None else None
        progress = RunCounters(self.env_steps, self.episodes, self.wall_s(), run_id)
        with self.timers("checkpoint"):
            return save_checkpoint(
                self.run_dir,
                self.agent,
                config_record,
                progress,
                rng_state(self.np_rng, self._generators()),
                self.cfg.keep_checkpoints,
            )

    def success_rate_recent(self) -> float | None:
        return float(np.mean(self.recent_success)) if self.recent_success else None

    def intervention_rate_recent(self) -> float | None:
        return float(np.mean(self.recent_interventions)) if self.recent_interventions else None

    def status(self) -> dict:
        """Counts for status lines and topics: episodes, env steps, updates, recent success and intervention rates."""
        return {
            "episodes": self.episodes,
            "env_steps": self.env_steps,
            "updates": self.agent.step if self.agent is not None else 0,
            "success_rate_recent": self.success_rate_recent(),
            "intervention_rate_recent": self.intervention_rate_recent(),
            "target_entropy": None if self.agent is None else float(self.agent.target_entropy),
        }

    def close(self) -> None:
        """Close wandb and the run's episode store (releasing its writer lock)."""
        if self.wandb is not None:
            self.wandb.close()
        if self.store is not None and hasattr(self.store, "close"):
            self.store.close()
