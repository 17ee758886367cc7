"""LearnerService: the learner node's work in plain Python -- ingest, train, publish, checkpoint, resume.

    service = LearnerService(LearnerConfig(out="runs/learner", demos="demos/pick"))
    result = service.ingest(payload)          # bytes from /learner/episodes; durable before it returns
    service.acks()                            # {actor_id: episodes stored} for /learner/acks
    service.train_chunk()                     # up to max_updates_per_spin owed updates
    if service.policy_due(): payload, version = service.take_policy()
    service.maybe_checkpoint()

Ingest order (the delivery guarantee of `robot_rl.nodes.protocol`): size bound -> decode -> ordering verdict
(duplicate: ignore; gap: refuse) -> check against the expected layout (`robot_rl.learner.layout`: configured,
never taken from whatever arrives first; a bad episode is refused and settled, `robot_rl.learner.refusals`) ->
`EpisodeStore.add_episode` (durable) -> replay -> counts. Refusals are counted per reason (`status()`).
The caller acks only after `ingest` returns, so a learner killed at any moment has stored every episode it
acknowledged. A learner started on a run dir continues it: agent and counters from the latest checkpoint
(if any), replay and per-actor counts from `<out>/episodes` (episodes after the checkpoint included).
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np
import torch

from robot_rl import keys, wire
from robot_rl.agents import Agent, make_agent
from robot_rl.agents.residual import ResidualAgent, is_residual_agent_dir, make_residual_agent
from robot_rl.bc.base import load_base_policy
from robot_rl.cpu import keep_freed_memory
from robot_rl.agents.config import with_recipe
from robot_rl.data.store import COMPATIBLE_META, EpisodeStore, StoreError
from robot_rl.learner import progress as plog
from robot_rl.learner import refusals
from robot_rl.learner.budget import UpdateBudget
from robot_rl.learner.config import LearnerConfig
from robot_rl.learner.episodes import EpisodeMismatch, check_episode, spaces_of, spec_of_spaces
from robot_rl.learner.layout import EpisodeLayout, expected_layout
from robot_rl.learner.ledger import ActorLedger, Verdict, encode_actor_id, source_columns, source_of
from robot_rl.replay import MixedSampler, sizing
from robot_rl.spaces import as_dict_space, image_keys
from robot_rl.training.residual import relabel_with_base
from robot_rl.training.intervention import add_interventions, intervention_rate, penalize_takeovers
from robot_rl.training.checkpoint import Progress, find_checkpoint, restore_rng_state, rng_state, save_checkpoint
from robot_rl.training.timers import SectionTimers
from robot_rl.training.wandb_log import WandbLog

EPISODES_DIR = "episodes"


class Outcome(Enum):
    STORED = "stored"  # new episode, durable, in replay
    DUPLICATE = "duplicate"  # already held: ignored
    GAP = "gap"  # an earlier episode of the actor is missing: refused
    REFUSED = "refused"  # unreadable, another schema, or does not fit the layout/store (see IngestResult.reason)


@dataclass(frozen=True)
class IngestResult:
    outcome: Outcome
    message: str  # what happened, for the log (names actor, index and the reason)
    actor_id: str = ""
    steps: int = 0
    reason: str = ""  # why it was refused (the status counter): unreadable, too_large, gap, layout, length, ...


@dataclass
class _Stats:
    """Counters for log lines and wandb, since the last log line."""

    t0: float = field(default_factory=time.perf_counter)
    episodes: int = 0  # stored
    updates: int = 0
    ingest_s0: float = 0.0  # the ingest timer's seconds when the window opened
    metrics: dict[str, float] = field(default_factory=dict)


def _episode_meta(meta: dict) -> tuple[str, int, int, dict]:
    """(actor id, episode index, policy version, task_meta) of an episode payload, each of its exact type: a float
    index 0.5 or a string "0" was coerced by int() and stored as episode 0, an actor id 5 as '5'. ValueError if not."""
    actor_id, index, policy_version = meta.get("actor_id"), meta.get("index"), meta.get("policy_version", -1)
    task_meta = meta.get("task_meta") or {}
    if not isinstance(actor_id, str):
        raise ValueError(f"actor_id must be a string, got {type(actor_id).__name__}")
    encode_actor_id(actor_id)  # 1..128 bytes: the id the store and the acks can hold
    for name, value in (("index", index), ("policy_version", policy_version)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"episode {name} must be an integer, got {type(value).__name__} {value!r}"[:200])
    if not 0 <= index < 2**63:  # the store's source_index column is int64
        raise ValueError(f"episode index {index} must be in [0, 2**63)"[:200])
    if not -1 <= policy_version < 2**63:
        raise ValueError(f"policy_version {policy_version} must be in [-1, 2**63)"[:200])
    if not isinstance(task_meta, dict):
        raise ValueError(f"task_meta must be a JSON object, got {type(task_meta).__name__}")
    return actor_id, index, policy_version, task_meta


class LearnerService:
    def __init__(self, cfg: LearnerConfig, log: Callable[[str], None] = print) -> None:
        if not cfg.out:
            raise ValueError("the learner needs a run directory: set 'out' (e.g. -p out:=/data/runs/pick_cube)")
        self.cfg, self.log = cfg, log
        self.run_dir = Path(cfg.out)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        keep_freed_memory()  # multi-MiB update tensors reuse freed memory instead of fresh page-faulting mmaps
        random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.np_rng = np.random.default_rng(cfg.seed)
        self.agent_cfg = cfg.agent()
        self.demo_store = EpisodeStore.open(cfg.demos, mode="r") if cfg.demos else None
        store_path = self.run_dir / EPISODES_DIR
        self.store = EpisodeStore.open(store_path, mode="a") if (store_path / "zarr.json").is_file() else None
        self.ledger = ActorLedger()
        self.budget = UpdateBudget(self.agent_cfg.utd_ratio, cfg.min_steps_to_train)
        self.agent: Agent | None = None
        self.progress = Progress()
        self.published_version: int | None = None
        self.since_checkpoint = 0
        self._stats, self._t_start, self.timers = _Stats(), time.perf_counter(), SectionTimers()
        self.refused: Counter[str] = Counter()  # refused payloads per reason, since this learner started
        ckpt = self._find_checkpoint()
        self.base = load_base_policy(cfg.base_policy, cfg.device) if cfg.base_policy else None  # relabels demos
        if ckpt is not None:
            residual = is_residual_agent_dir(ckpt / "agent")
            if residual != bool(cfg.base_policy):
                raise ValueError(f"checkpoint {ckpt} holds a {'residual' if residual else 'plain'} agent but base_policy "
                                 f"is {cfg.base_policy or 'not set'}: residual runs resume with the same base_policy")
            self.agent = (ResidualAgent if residual else Agent).load(ckpt / "agent", device=cfg.device)
            self.progress = Progress.from_json(ckpt / "progress.json")
            if self.agent.cfg != self.agent_cfg:
                self.log(f"the checkpoint's agent config differs from the parameters' and wins: {self.agent.cfg}")
            self.agent_cfg = self.agent.cfg
        self.layout = expected_layout(self.store, self.cfg.actor_layout(), self.demo_store, self.agent)
        if self.layout is not None:  # else learned from the first episode that passes every check
            self.log(f"episodes must have the layout of {self.layout.source}: observations {self.layout.obs_spec}, "
                     f"action dim {self.layout.action_dim}")
        if self.agent is None and self.layout is not None:
            self._build_agent(self.layout.step_specs())
        if self.agent is not None:
            self._make_replays()
            if ckpt is not None:  # generators the checkpoint lacks (demos added on restart) keep their seeds
                state = json.loads((ckpt / "rng.json").read_text())
                gens = {k: g for k, g in self._generators().items() if k in state["torch_generators"]}
                restore_rng_state(state, self.np_rng, gens)
        self._refill_from_store(ckpt)
        self.wandb = WandbLog(self.run_dir, cfg.wandb_mode, cfg.wandb_project, self.run_dir.name, cfg.to_dict(),
                              resume_id=self.progress.wandb_run_id)
        self.progress.wandb_run_id = self.wandb.run_id

    # --- set-up -----------------------------------------------------------------------------------
    def _find_checkpoint(self) -> Path | None:
        try:
            return find_checkpoint(self.run_dir)
        except FileNotFoundError:
            return None

    def _build_agent(self, step_specs: dict) -> None:
        obs_space, action_space = spaces_of(step_specs)
        self.agent_cfg, note = with_recipe(self.agent_cfg, bool(image_keys(as_dict_space(obs_space))))
        if note:
            self.log(note)
        if self.cfg.base_policy:
            if self.agent_cfg.discrete_gripper:
                self.agent_cfg = dataclasses.replace(self.agent_cfg, discrete_gripper=False)
                self.log("residual RL corrects every action dim continuously: discrete_gripper turned off")
            self.agent = make_residual_agent(self.agent_cfg, self.cfg.residual(), obs_space, action_space,
                                             device=self.cfg.device, seed=self.cfg.seed)
            self.log(f"residual RL on the base policy {self.cfg.base_policy} (scale {self.cfg.residual_scale}, actor "
                     f"after {self.cfg.critic_only_steps} critic-only updates)")
        else:
            self.agent = make_agent(self.agent_cfg, obs_space, action_space, device=self.cfg.device, seed=self.cfg.seed)
        self.log(f"built {self.agent_cfg.algo} agent: obs {self.agent.obs_spec}, action dim "
                 f"{self.agent.action_dim}, utd {self.agent_cfg.utd_ratio}, batch {self.agent_cfg.batch_size}")

    def _start_from(self, step_specs: dict) -> None:
        """Agent and replays for a learned layout's spaces; on failure the learner stays without an agent."""
        try:
            self._build_agent(step_specs)
            self._make_replays()
        except Exception:
            self.agent = None
            raise

    def _make_replays(self) -> None:
        agent = self.agent
        capacity = self.cfg.replay_capacity or sizing.auto_capacity(agent.obs_spec)
        if agent.device.type == "cpu":
            need_gb = sizing.check_capacity(capacity, agent.obs_spec)
        else:
            need_gb = sizing.row_bytes(agent.obs_spec) * capacity / 1e9
        self.log(f"online replay: {capacity} transitions, ~{need_gb:.2f} GB of observations")
        self.online = agent.make_replay(capacity, seed=self.cfg.seed + 1)
        self.demos = None
        # rows of the demo replay kept for intervened transitions (HIL-SERL: corrections are mixed in like demos)
        rows = 0 if not (self.cfg.intervention_to_demos and self.cfg.demo_fraction > 0) else (
            self.cfg.intervention_replay_capacity or max(1000, capacity // 4))
        if self.demo_store is not None and self.demo_store.n_episodes and self.cfg.demo_fraction > 0:
            obs_space, action_space = spaces_of({k: (s.dtype, s.step_shape) for k, s in self.demo_store.spec.items()})
            if spec_of_spaces(obs_space) != agent.obs_spec or action_space.shape != (agent.action_dim,):
                raise ValueError(f"the demo store {self.demo_store.path} has observations {spec_of_spaces(obs_space)} "
                                 f"and actions {action_space.shape}; the agent has {agent.obs_spec} and "
                                 f"({agent.action_dim},): record demos of the same task and obs mode")
            self.demos = agent.make_replay(self.demo_store.n_steps + 1 + rows, seed=self.cfg.seed + 2)
            for episode in self.demo_store.iter_episodes():
                check_episode(episode, agent.obs_spec, agent.action_dim)
                if self.base is not None:  # residual RL: the base's action along each demo
                    episode = relabel_with_base(episode, self.base, list(agent.obs_spec), agent.action_dim)
                self.demos.add_episode(episode)
        elif rows:
            self.demos = agent.make_replay(rows, seed=self.cfg.seed + 2)  # filled by the first corrections
        self._make_sampler()
        self.budget = UpdateBudget(self.agent_cfg.utd_ratio, self.cfg.min_steps_to_train,
                                   demo_transitions=len(self.demos) if self.demos is not None else 0,
                                   received_steps=self.budget.received_steps, updates_done=agent.step)

    def _make_sampler(self) -> None:
        """Online and demo replay mixed at demo_fraction; the demo replay joins once it holds something."""
        f = self.cfg.demo_fraction if self.demos is not None and len(self.demos) else 0.0
        self.sampler = MixedSampler([(self.online, 1.0 - f)] + ([(self.demos, f)] if f else []), demo_sources=(1,) if f else ())

    def _learn_from(self, episode: dict) -> None:
        """An episode into the replays: online (with the RLIF penalty, if set) and its corrections into the demos."""
        episode = penalize_takeovers(episode, self.cfg.intervention_penalty)
        self.online.add_episode(episode)
        if self.demos is not None and self.cfg.intervention_to_demos and keys.IS_INTERVENTION in episode:
            mixed = len(self.sampler.sources) > 1
            if add_interventions(self.demos, episode) and not mixed:
                self._make_sampler()
                self.log(f"corrections arrived: {len(self.demos)} intervened transitions now make up "
                         f"{self.cfg.demo_fraction:.0%} of every batch")

    def _generators(self) -> dict[str, torch.Generator]:
        gens = {"online_replay": self.online.generator}
        if self.demos is not None:
            gens["demo_replay"] = self.demos.generator
        return gens

    def _refill_from_store(self, ckpt: Path | None) -> None:
        """Replay, per-actor counts and the step count from `<out>/episodes`; the log trimmed to match."""
        n = self.store.n_episodes if self.store is not None else 0
        if ckpt is not None and n < self.progress.episodes:
            raise ValueError(f"{self.store.path if self.store else self.run_dir / EPISODES_DIR} holds {n} episodes "
                             f"but checkpoint {ckpt} counted {self.progress.episodes}: the store is not this run's")
        sources = []
        for episode in self.store.iter_episodes() if n else []:
            sources.append(source_of(episode))
            self._learn_from(episode)
            self.budget.add_steps(len(episode["action"]))
        settled = {(r["actor_id"], r["index"]) for r in refusals.read_settled(self.run_dir)} - set(sources)
        self.ledger = ActorLedger.from_sources(sorted(sources + list(settled)))  # stored or refused for good
        records = plog.keep_first(self.run_dir, n) if n else []
        self._recent = [bool(r["success"]) for r in records[-self.cfg.success_window:]]
        self._recent_interventions = [float(r.get("intervention_rate", 0.0)) for r in records[-self.cfg.success_window:]]
        self.progress.episodes, self.progress.env_steps = n, self.budget.received_steps
        if n or ckpt is not None:
            self.log(f"resumed {self.run_dir}: {n} episodes ({self.budget.received_steps} steps) from "
                     f"{len(self.ledger.counts())} actors, {self.budget.updates_done} updates"
                     f"{f' from {ckpt.name}' if ckpt else ' (no checkpoint: fresh agent)'}; "
                     f"{self.budget.owed} updates owed; acks {self.ledger.counts()}")

    # --- ingest -----------------------------------------------------------------------------------
    def ingest(self, payload: bytes) -> IngestResult:
        """Decode, order-check, validate and durably store one episode payload; never raises on bad input."""
        with self.timers("ingest"):
            result = self._ingest(payload)
        if result.outcome in (Outcome.REFUSED, Outcome.GAP):
            self.refused[result.reason] += 1
        return result

    def _ingest(self, payload: bytes) -> IngestResult:
        limit = self.layout.max_payload_bytes(self.cfg.max_episode_steps) if self.layout is not None else 0
        if limit and len(payload) > limit:  # refused before decoding: a huge payload costs no copy and no time
            return IngestResult(Outcome.REFUSED, f"refused an episode payload of {len(payload)} bytes: an episode of "
                                f"at most {self.cfg.max_episode_steps} steps of the expected layout is at most {limit} "
                                f"bytes (max_episode_steps)", reason="too_large")
        try:
            arrays, meta = wire.decode_episode(payload)
            actor_id, index, policy_version, task_meta = _episode_meta(meta)
        except Exception as e:  # noqa: BLE001 - any payload at all: refused, never raised
            return IngestResult(Outcome.REFUSED, f"refused an episode payload ({len(payload)} bytes): {e}",
                                reason="unreadable")
        where = f"episode {index} of {actor_id!r}"
        verdict = self.ledger.verdict(actor_id, index)
        if verdict is Verdict.DUPLICATE:
            return IngestResult(Outcome.DUPLICATE, f"{where} is already stored: ignored", actor_id)
        if verdict is Verdict.GAP:
            return IngestResult(Outcome.GAP, f"refused {where}: expected index {self.ledger.expected(actor_id)} "
                                f"first (the actor resends the missing ones)", actor_id, reason="gap")
        try:
            layout = self.layout or EpisodeLayout.learn(arrays, f"the first valid episode ({where})", task_meta)
            n = layout.check(arrays, self.cfg.max_episode_steps, task_meta)
            self._check_task_meta(task_meta)
        except EpisodeMismatch as e:
            return self._settle(actor_id, index, e.reason, f"refused {where}: {e}")
        try:
            if self.agent is None:
                self._start_from(layout.step_specs())
            if self.layout is None:
                self.layout = layout
                self.log(f"episode layout learned from {where} (no task, demos or run to take it from): "
                         f"observations {layout.obs_spec}, action dim {layout.action_dim}")
            stored = {**arrays, **source_columns(actor_id, index, policy_version, n)}
            if self.store is None:
                self.store = EpisodeStore.open_or_create(self.run_dir / EPISODES_DIR, {**task_meta, "source": "actors"})
            self.store.add_episode(stored)  # durable from here on: safe to acknowledge
        except (EpisodeMismatch, StoreError, ValueError, OSError) as e:  # not the episode's fault: it will be resent
            return IngestResult(Outcome.REFUSED, f"refused {where}: {e}", actor_id, reason="store")
        self._learn_from(arrays)
        self.ledger.record(actor_id, index)
        self.budget.add_steps(n)
        self.progress.episodes, self.progress.env_steps = self.store.n_episodes, self.budget.received_steps
        self.since_checkpoint += 1
        self._after_episode(arrays, actor_id, index, policy_version)
        return IngestResult(Outcome.STORED, f"stored {where} ({n} steps)", actor_id, n)

    def _check_task_meta(self, task_meta: dict) -> None:
        have = self.store.meta if self.store is not None else {}
        for key in COMPATIBLE_META:
            if key in task_meta and key in have and task_meta[key] != have[key]:
                raise EpisodeMismatch(f"its task_meta {key!r} is {task_meta[key]!r}, the learner's episodes have "
                                      f"{have[key]!r} (one learner trains one task setup)", "task_meta")

    def _settle(self, actor_id: str, index: int, reason: str, message: str) -> IngestResult:
        """Refuse an episode for good: recorded, then counted in the acks so the actor stops resending it."""
        try:
            refusals.settle(self.run_dir, actor_id, index, reason, message)
        except OSError as e:  # not recorded: not acknowledged either (the actor resends it)
            return IngestResult(Outcome.REFUSED, f"{message}; could not record the refusal: {e}", actor_id, reason=reason)
        self.ledger.record(actor_id, index)
        return IngestResult(Outcome.REFUSED, f"{message} (acknowledged as refused: the actor stops resending it)",
                            actor_id, reason=reason)

    def _after_episode(self, arrays: dict, actor_id: str, index: int, policy_version: int) -> None:
        success, ret, steps = plog.summarize(arrays)
        rate = intervention_rate(arrays) if keys.IS_INTERVENTION in arrays else 0.0
        plog.append_record(self.run_dir, plog.EpisodeRecord(
            actor_id, index, success, ret, steps, policy_version, self.progress.env_steps, self.agent.step,
            round(self.wall_s(), 3), round(rate, 6)))
        self._recent = (self._recent + [success])[-self.cfg.success_window:]
        self._recent_interventions = (self._recent_interventions + [rate])[-self.cfg.success_window:]
        self._stats.episodes += 1
        self.wandb.log({"train/episode_return": ret, "train/episode_success": float(success),
                        "train/intervention_rate": rate}, self.progress.env_steps)
        if self.progress.episodes % self.cfg.log_every_episodes == 0:
            self._log_line()

    def _log_line(self) -> None:
        s, dt = self._stats, max(time.perf_counter() - self._stats.t0, 1e-9)
        ingest_ms = 1000 * (self.timers.seconds["ingest"] - s.ingest_s0) / max(s.episodes, 1)
        rate = float(np.mean(self._recent)) if self._recent else 0.0
        interventions = float(np.mean(self._recent_interventions)) if self._recent_interventions else 0.0
        numbers = " ".join(f"{k} {v:.3g}" for k, v in sorted(s.metrics.items()))
        self.log(f"ep {self.progress.episodes} | env steps {self.progress.env_steps} | updates "
                 f"{self.agent.step} | success {rate:.0%} (last {len(self._recent)}) | interventions {interventions:.0%} | {s.episodes / dt:.2f} ep/s "
                 f"| {s.updates / dt:.1f} upd/s | ingest {ingest_ms:.0f} ms/ep | {numbers}"
                 + (f" | refused {dict(sorted(self.refused.items()))}" if self.refused else ""))
        self.wandb.log({**{f"train/{k}": v for k, v in s.metrics.items()}, "train/success_rate_recent": rate,
                        "train/intervention_rate_recent": interventions,
                        "train/updates": self.agent.step, "train/episodes": self.progress.episodes,
                        "perf/updates_per_s": s.updates / dt, "perf/episodes_per_s": s.episodes / dt,
                        "perf/ingest_ms": ingest_ms, **self.timers.metrics(),
                        **{f"refused/{k}": v for k, v in self.refused.items()}}, self.progress.env_steps)
        self._stats = _Stats(metrics=s.metrics, ingest_s0=self.timers.seconds["ingest"])

    def acks(self) -> dict[str, int]:
        """{actor id: episodes settled} (stored, or refused for good): the acks payload."""
        return self.ledger.counts()

    def status(self) -> dict:
        """What the node publishes on its status topic: counts, refusals per reason, the layout's source."""
        return {"episodes": self.progress.episodes, "env_steps": self.progress.env_steps,
                "updates": self.agent.step if self.agent is not None else 0, "acks": self.acks(),
                "refused": dict(sorted(self.refused.items())), "refused_total": sum(self.refused.values()),
                "layout": self.layout.source if self.layout is not None else ""}

    # --- training ---------------------------------------------------------------------------------
    def train_chunk(self) -> int:
        """Do up to `max_updates_per_spin` owed updates, `utd_ratio` critic steps per actor step; return the count."""
        if self.agent is None:
            return 0
        utd = self.agent_cfg.utd_ratio
        todo = self.budget.next_chunk(self.cfg.updates_per_spin(utd))
        done = 0
        with self.timers("update"):
            while done < todo:
                k = min(utd, todo - done)
                self._stats.metrics = self.agent.update_many(self.sampler, k)
                done += k
        self.budget.add_updates(done)
        self._stats.updates += done
        return done

    @property
    def owed_updates(self) -> int:
        return self.budget.owed if self.agent is not None else 0

    def policy_due(self) -> bool:
        """A policy exists and none was published yet, or `publish_every_updates` updates passed since."""
        if self.agent is None:
            return False
        return self.published_version is None or self.agent.step - self.published_version >= self.cfg.publish_every_updates

    def take_policy(self) -> tuple[bytes, int]:
        """(Policy.to_bytes(), version = update step), marked as published."""
        self.published_version = self.agent.step
        return self.agent.policy.to_bytes(), self.agent.step

    # --- checkpoints ------------------------------------------------------------------------------
    def wall_s(self) -> float:
        return self.progress.train_wall_s + time.perf_counter() - self._t_start

    def maybe_checkpoint(self) -> Path | None:
        if self.since_checkpoint >= self.cfg.checkpoint_every_episodes:
            return self.checkpoint()
        return None

    def checkpoint(self) -> Path | None:
        """Agent, counters and RNG states into `<out>/checkpoints/step_<env steps>` (None before an agent exists);
        then redraw train_curve.png."""
        if self.agent is None:
            return None
        saved = Progress(self.progress.env_steps, self.progress.episodes, self.wall_s(), self.wandb.run_id)
        with self.timers("checkpoint"):
            path = save_checkpoint(self.run_dir, self.agent, {"learner": self.cfg.to_dict()}, saved,
                                   rng_state(self.np_rng, self._generators()), self.cfg.keep_checkpoints)
            self.since_checkpoint = 0
            records = plog.read_records(self.run_dir)
            if records:  # ~0.5 s of matplotlib: drawn with each checkpoint, not per log line
                task = str(self.store.meta.get("task", self.run_dir.name))
                plog.plot(self.run_dir, records, self.cfg.success_window, task)
        return path

    def close(self) -> None:
        self.log(f"time: {self.timers.summary()}")
        self.wandb.close()
        for store in (self.store, self.demo_store):
            if store is not None and hasattr(store, "close"):
                store.close()  # releases the run store's writer lock
