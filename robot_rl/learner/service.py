"""LearnerService: the learner node's work in plain Python -- a thin shell around the learning core.

    service = LearnerService(LearnerConfig(out="runs/learner", demos="demos/pick"))
    result = service.ingest(payload)          # bytes from /learner/episodes; durable before it returns
    service.acks()                            # {actor_id: episodes stored} for /learner/acks
    service.train_chunk()                     # up to max_updates_per_spin owed updates
    if service.policy_due(): push = service.take_push()   # a full policy when its base is new, else a delta
    service.maybe_checkpoint()

The learning itself -- agent, replays, update budget, take-over penalty, checkpoints, episode log -- is
`robot_rl.learner.core.Learner` (`self.learner`), the same core `robot-rl train` runs. This shell adds what a
learner fed over a network needs: ingest order (the delivery guarantee of `robot_rl.ros.protocol`): size
bound -> decode -> ordering verdict (duplicate: ignore; gap: refuse) -> check against the expected layout
(`robot_rl.learner.episode_layout`: configured, never taken from whatever arrives first; a bad episode is refused and
settled, `robot_rl.learner.refusals`) -> `Learner.store_episode` (durable) -> `Learner.learn_episode`.
Refusals are counted per reason (`status()`). The caller acks only after `ingest` returns, so a learner killed
at any moment has stored every episode it acknowledged. A learner started on a run dir continues it: agent and
counters from the latest checkpoint (if any), replay and per-actor counts from `<out>/episodes`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np

from robot_rl import wire
from robot_rl.agents.config import with_recipe
from robot_rl.agents.policy_delta import base_id, to_delta
from robot_rl.bc.base import load_base_policy, prepare_base_acting, relabel_with_base
from robot_rl.bc.steering import NoiseSteering, latent_episode, zero_last_layer
from robot_rl.data.store import COMPATIBLE_META, EpisodeStore, StoreError
from robot_rl.learner import episode_log, refusals
from robot_rl.learner.checkpoint import RunCounters, find_checkpoint
from robot_rl.learner.config import LearnerConfig
from robot_rl.learner.core import EPISODES_DIR, Learner
from robot_rl.learner.episode_layout import EpisodeLayout, expected_layout
from robot_rl.learner.episodes import EpisodeMismatch, spaces_of
from robot_rl.learner.ingest import IngestResult, Outcome, PolicyPush, episode_meta
from robot_rl.learner.ledger import ActorLedger, Verdict, source_of
from robot_rl.learner.service_log import LogWindow, log_line
from robot_rl.learner.wandb_log import WandbLog
from robot_rl.spaces import as_dict_space, image_keys


class LearnerService:
    def __init__(self, cfg: LearnerConfig, log: Callable[[str], None] = print) -> None:
        if not cfg.out:
            raise ValueError("the learner needs a run directory: set 'out' (e.g. -p out:=/data/runs/pick_cube)")
        self.cfg, self.log = cfg, log
        self.run_dir = Path(cfg.out)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if cfg.threads:
            import torch

            torch.set_num_threads(cfg.threads)
        ckpt = self._find_checkpoint()
        self.wandb = WandbLog(
            self.run_dir,
            cfg.wandb_mode,
            cfg.wandb_project,
            self.run_dir.name,
            cfg.to_dict(),
            resume_id=RunCounters.from_json(ckpt / "progress.json").wandb_run_id if ckpt else None,
        )
        self.demo_store = EpisodeStore.open(cfg.demos, mode="r") if cfg.demos else None
        store_path = self.run_dir / EPISODES_DIR
        store = EpisodeStore.open(store_path, mode="a") if (store_path / "zarr.json").is_file() else None
        self.learner = Learner(
            cfg,
            self.run_dir,
            store=store,
            wandb=self.wandb,
            log=log,
            min_steps_to_train=cfg.min_steps_to_train,
            success_window=cfg.success_window,
        )
        self.agent_cfg = cfg.agent()
        self.steering = None  # noise steering (steer:=noise): the flow base whose latent noise the agent picks
        self.ledger = ActorLedger()
        self.published_version: int | None = None
        self.published_base: str | None = None  # base_id of the last full policy published (policy_delta)
        self.since_checkpoint = 0
        self._stats = LogWindow()
        self.refused: Counter[str] = Counter()  # refused payloads per reason, since this learner started
        self.base = self._open_base()
        if ckpt is not None:
            agent = self.learner.resume_agent(ckpt, cfg.base_policy, cfg.steer)
            if agent.cfg != self.agent_cfg:
                self.log(f"the checkpoint's agent config differs from the parameters' and wins: {agent.cfg}")
            self.agent_cfg = agent.cfg
        self.layout = self._with_latent(
            expected_layout(store, cfg.actor_layout(), self.demo_store, None if self.steering else self.learner.agent)
        )
        if self.layout is not None:  # else learned from the first episode that passes every check
            self.log(
                f"episodes must have the layout of {self.layout.source}: observations {self.layout.obs_spec}, "
                f"action dim {self.layout.action_dim}"
            )
        sources: list[tuple[str, int]] = []
        if self.learner.agent is None and self.layout is not None:
            self._build_agent(self.layout.step_specs())
        if self.learner.agent is not None:
            self._open_replays(ckpt, visit=lambda episode: sources.append(source_of(episode)))
        settled = {(r["actor_id"], r["index"]) for r in refusals.read_settled(self.run_dir)} - set(sources)
        self.ledger = ActorLedger.from_sources(sorted(sources + list(settled)))  # stored or refused for good
        self._say_resumed(ckpt)

    # --- set-up -----------------------------------------------------------------------------------
    def _open_base(self):
        """The base policy (residual RL relabels demos with it; noise steering runs it), refused here when its
        layout does not fit the configured actors' (when `task` is given); None without one."""
        cfg, actors = self.cfg, self.cfg.actor_layout()
        if not cfg.base_policy:
            return None
        base = load_base_policy(
            cfg.base_policy,
            cfg.device,
            obs_spec=actors.obs_spec() if actors else None,
            action_dim=actors.action_dim if actors else None,
        )
        prepare_base_acting(base)  # relabelling demos runs its frozen trunk (a BC base's) per step: the fast pass
        if cfg.steer == "noise":  # DSRL: a plain agent learns on (obs, latent action) from the episodes' noise_action
            self.steering = NoiseSteering(base, cfg.noise_bound, cfg.base_policy)
            self.learner.replay_view = latent_episode
        return base

    def _say_resumed(self, ckpt: Path | None) -> None:
        """One line on what a restarted learner found: episodes, actors, updates, the checkpoint."""
        n = self.learner.episodes
        if n or ckpt is not None:
            self.log(
                f"resumed {self.run_dir}: {n} episodes ({self.learner.env_steps} steps) from "
                f"{len(self.ledger.counts())} actors, {self.learner.budget.updates_done} updates"
                f"{f' from {ckpt.name}' if ckpt else ' (no checkpoint: fresh agent)'}; "
                f"{self.learner.owed_updates} updates owed; acks {self.ledger.counts()}"
            )

    def _find_checkpoint(self) -> Path | None:
        try:
            return find_checkpoint(self.run_dir)
        except FileNotFoundError:
            return None

    def _with_latent(self, layout: EpisodeLayout | None) -> EpisodeLayout | None:
        """Under noise steering, the layout with the latent action every episode carries (a resumed agent's action
        must be that latent); else `layout` itself."""
        if self.steering is None or layout is None:
            return layout
        agent = self.learner.agent
        if agent is not None and agent.action_dim != self.steering.latent_dim:
            raise ValueError(
                f"the checkpoint's agent acts in {agent.action_dim} dims; steering the noise of {self.cfg.base_policy} "
                f"takes its latent action of {self.steering.latent_dim}: resume with the same base_policy"
            )
        return layout.with_latent(self.steering.latent_dim)

    def _build_agent(self, step_specs: dict) -> None:
        """The agent for these spaces, with the recipe for its observations (residual RL: on the base policy)."""
        obs_space, action_space = spaces_of(step_specs)
        plain = not self.cfg.base_policy  # residual and noise-steering agents: their entropy recipe is not measured
        arm_dims = int(np.prod(action_space.shape)) - bool(self.agent_cfg.discrete_gripper) if plain else None
        self.agent_cfg, note = with_recipe(self.agent_cfg, bool(image_keys(as_dict_space(obs_space))), True, arm_dims)
        if note:
            self.log(note)
        residual = None
        if self.steering is not None:  # the agent acts in the base's latent space: K * A dims on [-1, 1]
            action_space = gym.spaces.Box(-1.0, 1.0, (self.steering.latent_dim,), np.float32)
            self.agent_cfg = dataclasses.replace(self.agent_cfg, discrete_gripper=False)
            self.log(
                f"noise-space steering (DSRL) of the flow base {self.cfg.base_policy}: the agent picks its initial "
                f"noise, {self.steering.latent_dim} latent dims within +-{self.cfg.noise_bound}"
            )
        elif self.cfg.base_policy:
            if self.agent_cfg.discrete_gripper:
                self.agent_cfg = dataclasses.replace(self.agent_cfg, discrete_gripper=False)
                self.log("residual RL corrects every action dim continuously: discrete_gripper turned off")
            residual = self.cfg.residual()
            self.log(
                f"residual RL on the base policy {self.cfg.base_policy} (scale {self.cfg.residual_scale}, actor "
                f"after {self.cfg.critic_only_steps} critic-only updates)"
            )
        agent = self.learner.new_agent(obs_space, action_space, self.agent_cfg, residual)
        if residual is not None and agent.adopt_base_trunk(self.base):  # the actor then runs one trunk pass a step
            self.log(f"the residual's frozen image trunk is the base's ({self.cfg.base_policy})")
        if self.steering is not None:  # its untrained mean picks the zero noise: the base's zero-noise chunk
            zero_last_layer(agent.policy)
        self.log(
            f"built {self.agent_cfg.algo} agent: obs {agent.obs_spec}, action dim "
            f"{agent.action_dim}, utd {self.agent_cfg.utd_ratio}, batch {self.agent_cfg.batch_size}"
        )

    def _open_replays(self, ckpt: Path | None, visit=None) -> None:
        """The core's replays: demos relabelled with the base (residual RL), rows kept for corrections (and own
        successes)."""
        agent, cfg = self.learner.agent, self.cfg
        rows = (
            0
            if not ((cfg.intervention_to_demos or cfg.successes_to_demos) and cfg.demo_fraction > 0)
            or self.steering is not None
            else (cfg.intervention_replay_capacity or max(1000, self.learner.replay_capacity() // 4))
        )
        relabel = (
            None
            if self.base is None or self.steering is not None
            else (lambda episode: relabel_with_base(episode, self.base, list(agent.obs_spec), agent.action_dim))
        )
        self.learner.open_replays(self.demo_store, relabel, rows, checkpoint=ckpt, visit=visit)

    def _start_from(self, step_specs: dict) -> None:
        """Agent and replays for a learned layout's spaces; on failure the learner stays without an agent."""
        try:
            self._build_agent(step_specs)
            self._open_replays(None)
        except Exception:
            self.learner.agent = None
            raise

    # --- ingest -----------------------------------------------------------------------------------
    def ingest(self, payload: bytes) -> IngestResult:
        """Decode, order-check, validate and durably store one episode payload; never raises on bad input."""
        with self.learner.timers("ingest"):
            result = self._ingest(payload)
        if result.outcome in (Outcome.REFUSED, Outcome.GAP):
            self.refused[result.reason] += 1
        return result

    def _ingest(self, payload: bytes) -> IngestResult:
        limit = self.layout.max_payload_bytes(self.cfg.max_episode_steps) if self.layout is not None else 0
        if limit and len(payload) > limit:  # refused before decoding: a huge payload costs no copy and no time
            return IngestResult(
                Outcome.REFUSED,
                f"refused an episode payload of {len(payload)} bytes: an episode of "
                f"at most {self.cfg.max_episode_steps} steps of the expected layout is at most {limit} "
                f"bytes (max_episode_steps)",
                reason="too_large",
            )
        try:
            arrays, meta = wire.decode_episode(payload, limit or wire.MAX_DECODED_BYTES)  # images may be compressed
            actor_id, index, policy_version, task_meta = episode_meta(meta)
        except Exception as e:  # noqa: BLE001 - any payload at all: refused, never raised
            return IngestResult(
                Outcome.REFUSED, f"refused an episode payload ({len(payload)} bytes): {e}", reason="unreadable"
            )
        where = f"episode {index} of {actor_id!r}"
        verdict = self.ledger.verdict(actor_id, index)
        if verdict is Verdict.DUPLICATE:
            return IngestResult(Outcome.DUPLICATE, f"{where} is already stored: ignored", actor_id)
        if verdict is Verdict.GAP:
            return IngestResult(
                Outcome.GAP,
                f"refused {where}: expected index {self.ledger.expected(actor_id)} "
                f"first (the actor resends the missing ones)",
                actor_id,
                reason="gap",
            )
        try:
            layout = self.layout or self._with_latent(
                EpisodeLayout.learn(arrays, f"the first valid episode ({where})", task_meta)
            )
            n = layout.check(arrays, self.cfg.max_episode_steps, task_meta)
            self._check_task_meta(task_meta)
        except EpisodeMismatch as e:
            return self._settle(actor_id, index, e.reason, f"refused {where}: {e}")
        sender = {"actor_id": actor_id, "index": index, "policy_version": policy_version, "task_meta": task_meta}
        try:
            if self.learner.agent is None:
                self._start_from(layout.step_specs())
            if self.layout is None:
                self.layout = layout
                self.log(
                    f"episode layout learned from {where} (no task, demos or run to take it from): "
                    f"observations {layout.obs_spec}, action dim {layout.action_dim}"
                )
            position = self.learner.store_episode(arrays, sender)  # durable from here on: safe to acknowledge
        except (EpisodeMismatch, StoreError, ValueError, OSError) as e:  # not the episode's fault: it will be resent
            return IngestResult(Outcome.REFUSED, f"refused {where}: {e}", actor_id, reason="store")
        self.ledger.record(actor_id, index)
        self.learner.learn_episode(arrays, position, sender)
        self.since_checkpoint += 1
        self._stats.episodes += 1
        if self.learner.episodes % self.cfg.log_every_episodes == 0:
            self._log_line()
        return IngestResult(Outcome.STORED, f"stored {where} ({n} steps)", actor_id, n)

    def _check_task_meta(self, task_meta: dict) -> None:
        store = self.learner.store
        have = store.meta if store is not None else {}
        for key in COMPATIBLE_META:
            if key in task_meta and key in have and task_meta[key] != have[key]:
                raise EpisodeMismatch(
                    f"its task_meta {key!r} is {task_meta[key]!r}, the learner's episodes have "
                    f"{have[key]!r} (one learner trains one task setup)",
                    "task_meta",
                )

    def _settle(self, actor_id: str, index: int, reason: str, message: str) -> IngestResult:
        """Refuse an episode for good: recorded, then counted in the acks so the actor stops resending it."""
        try:
            refusals.settle(self.run_dir, actor_id, index, reason, message)
        except OSError as e:  # not recorded: not acknowledged either (the actor resends it)
            return IngestResult(
                Outcome.REFUSED, f"{message}; could not record the refusal: {e}", actor_id, reason=reason
            )
        self.ledger.record(actor_id, index)
        return IngestResult(
            Outcome.REFUSED,
            f"{message} (acknowledged as refused: the actor stops resending it)",
            actor_id,
            reason=reason,
        )

    def _log_line(self) -> None:
        self._stats = log_line(self.learner, self._stats, self.refused, self.log, self.wandb)

    def acks(self) -> dict[str, int]:
        """{actor id: episodes settled} (stored, or refused for good): the acks payload."""
        return self.ledger.counts()

    def status(self) -> dict:
        """What the node publishes on its status topic: the core's counts, acks, refusals per reason, the layout's
        source."""
        return {
            **self.learner.status(),
            "acks": self.acks(),
            "refused": dict(sorted(self.refused.items())),
            "refused_total": sum(self.refused.values()),
            "layout": self.layout.source if self.layout is not None else "",
        }

    # --- training ---------------------------------------------------------------------------------
    def train_chunk(self) -> int:
        """Do up to `max_updates_per_spin` owed updates, `utd_ratio` critic steps per actor step; return the count."""
        if self.learner.agent is None:
            return 0
        done = self.learner.update_owed(self.cfg.updates_per_spin(self.learner.agent.cfg.utd_ratio))
        self._stats.updates += done
        return done

    @property
    def owed_updates(self) -> int:
        return self.learner.owed_updates

    def policy_due(self) -> bool:
        """A policy exists and none was published yet, or `publish_every_updates` updates passed since."""
        agent = self.learner.agent
        if agent is None:
            return False
        since = None if self.published_version is None else agent.step - self.published_version
        return since is None or since >= self.cfg.publish_every_updates

    def take_policy(self) -> tuple[bytes, int]:
        """(Policy.to_bytes(), version = update step), marked as published (a full policy; see `take_push`)."""
        self.published_version = self.learner.agent.step
        self.published_base = base_id(self.learner.agent.policy)
        return self.learner.policy_bytes(), self.learner.agent.step

    def take_push(self) -> PolicyPush:
        """What to publish now, marked as published: the full policy when its base (config + frozen trunk) differs
        from the last full one published -- at start -- else only its trainable tensors (`policy_delta.to_delta`)."""
        policy, base = self.learner.agent.policy, base_id(self.learner.agent.policy)
        if base != self.published_base:
            payload, version = self.take_policy()
            return PolicyPush(payload, version, delta=False)
        self.published_version = self.learner.agent.step
        return PolicyPush(to_delta(policy, base), self.published_version, delta=True)

    # --- checkpoints ------------------------------------------------------------------------------
    def maybe_checkpoint(self) -> Path | None:
        if self.since_checkpoint >= self.cfg.checkpoint_every_episodes:
            return self.checkpoint()
        return None

    def checkpoint(self) -> Path | None:
        """The core's checkpoint (None before an agent exists), with the node's parameters as its record; then
        redraw train_curve.png."""
        path = self.learner.checkpoint({"learner": self.cfg.to_dict()})
        if path is None:
            return None
        self.since_checkpoint = 0
        records = episode_log.read(self.run_dir)
        if records:  # ~0.5 s of matplotlib: drawn with each checkpoint, not per log line
            with self.learner.timers("checkpoint"):
                task = str(self.learner.store.meta.get("task", self.run_dir.name))
                episode_log.plot(self.run_dir, records, self.cfg.success_window, task)
        return path

    def close(self) -> None:
        self.log(f"time: {self.learner.timers.summary()}")
        self.learner.close()
        if self.demo_store is not None and hasattr(self.demo_store, "close"):
            self.demo_store.close()
