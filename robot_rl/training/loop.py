"""The in-process training loop: one env, one learner, one readable main loop (`train`).

Per env step: act (warm-up policy, then the stochastic policy) -> step the env -> record the step ->
`agent.update_many(sampler, agent.utd_ratio)` on batches mixing online data and demos at a fixed fraction. At an
episode end the episode is written to `<out>/episodes` (durable), read back and added to the online
replay -- the path episodes take from a robot's actor to the learner, and the one a resumed run refills
replay by, so an interrupted and resumed run holds exactly the data of an uninterrupted one -- and a
checkpoint is written when due. Every `eval_every` steps: a deterministic evaluation, `<out>/eval.jsonl`,
`<out>/curve.png`, a video. A run stops at the first episode end at or after `steps`, so checkpoints
always fall between episodes and a resume continues exactly where the run stood.

Residual RL (`base_policy` set; robot_rl.training.residual): the base policy acts first at every step, its action
is recorded as `base_action`, and the agent learns a bounded correction on top of it.

Simulated operator (`operator`; robot_rl.training.intervention): after warm-up a scripted operator takes over when
the policy strays; steps record `policy_action` and `is_intervention`, intervened transitions also go to the demo
replay (`intervention_to_demos`), and an optional penalty marks the step that led to a take-over.

Run directory:
    train_config.json   eval.jsonl   curve.png   train_episodes.jsonl   videos/eval_<step>.mp4   wandb/
    episodes/           every online episode (zarr EpisodeStore)
    demos/              scripted demos recorded for this run (when no --demos store was given)
    checkpoints/step_<N>/, checkpoints/latest
"""

from __future__ import annotations

import json
import random
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from robot_rl import keys
from robot_rl.agents import Agent, make_agent
from robot_rl.agents.config import with_recipe
from robot_rl.agents.residual import make_residual_agent
from robot_rl.bench.timing import available_cores
from robot_rl.cpu import keep_freed_memory
from robot_rl.data.demos import DemoConfig, record_scripted_demos
from robot_rl.data.recorder import EpisodeRecorder
from robot_rl.data.store import EpisodeStore
from robot_rl.replay import MixedSampler, ReplayBuffer, sizing
from robot_rl.spaces import as_dict_space, image_keys
from robot_rl.training import curves
from robot_rl.training.checkpoint import Progress, restore_rng_state, rng_state, save_checkpoint
from robot_rl.training.config import CONFIG_JSON, TrainConfig
from robot_rl.training.env_factory import (env_id_of, is_sim_task, make_env, make_eval_env, run_store_meta,
                                           success_of)
from robot_rl.training.evaluation import EVAL_SEED_OFFSET, EvalResult, evaluate, write_episodes_mp4
from robot_rl.training.intervention import SimOperator, add_interventions, intervention_replay_rows, make_sim_operator
from robot_rl.training.residual import ResidualActing, make_residual_acting
from robot_rl.training.resume import check_new_out, resume_checkpoint, resume_from
from robot_rl.training.timers import SectionTimers
from robot_rl.training.wandb_log import WandbLog

DEMO_SEED_OFFSET = 2_000_000  # scripted demo attempt j resets with seed + DEMO_SEED_OFFSET + j
SCRIPTED_DEMO_NOISE = 0.1  # the scripted expert's action noise (normalised units) for diverse demos and warm-up
RECENT_EPISODES = 20  # the status line's success rate is over this many latest training episodes


@dataclass
class TrainResult:
    """What a finished `train` call hands back."""

    run_dir: Path  # the run directory
    progress: Progress  # final counters
    evals: list[dict] = field(default_factory=list)  # every record of eval.jsonl
    checkpoint: Path | None = None  # the last checkpoint written
    replay_transitions: dict[str, int] = field(default_factory=dict)  # {"online": N, "demos": M} at the end


# --- setup ------------------------------------------------------------------------------------
def make_run_dir(cfg: TrainConfig) -> Path:
    """`cfg.out`, or runs/<env>-<obs>-<time>; created, with the config saved in it."""
    if cfg.out:
        run_dir = Path(cfg.out)
    else:
        name = (cfg.env_id or cfg.task or "env").replace("/", "_")
        run_dir = Path("runs") / f"{name}-{cfg.obs}-{datetime.now():%Y%m%d-%H%M%S}"
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(run_dir / CONFIG_JSON)
    return run_dir


def make_demo_store(cfg: TrainConfig, env_id: str, run_dir: Path) -> EpisodeStore | None:
    """The demos to mix in: `--demos`, else scripted demos recorded into <run>/demos (once), else None."""
    if cfg.demos:
        return EpisodeStore.open(cfg.demos, mode="r")
    if cfg.scripted_demos == 0 or not is_sim_task(env_id):
        return None
    path = run_dir / "demos"
    have = EpisodeStore.open(path, mode="r").n_episodes if path.exists() else 0
    if have < cfg.scripted_demos:
        print(f"[train] no --demos given: recording {cfg.scripted_demos - have} scripted demos of {cfg.task} into "
              f"{path} (--scripted-demos 0 trains from scratch)")
        record_scripted_demos(DemoConfig(
            task=cfg.task, episodes=cfg.scripted_demos - have, out=path, obs_mode=cfg.obs,
            seed=cfg.seed + DEMO_SEED_OFFSET + have, noise=SCRIPTED_DEMO_NOISE, progress=cfg.progress_bar,
        ))
    return EpisodeStore.open(path, mode="r")


def make_sampler(cfg: TrainConfig, online: ReplayBuffer, demos: ReplayBuffer | None) -> MixedSampler:
    """Batches from the online replay, with the demo fraction from the demos once the demo replay holds any."""
    if demos is None or len(demos) == 0:
        return MixedSampler([(online, 1.0)])
    return MixedSampler([(online, 1.0 - cfg.demo_fraction), (demos, cfg.demo_fraction)], demo_sources=(1,))


def make_replays(cfg: TrainConfig, agent: Agent, demo_store: EpisodeStore | None, relabel=None,
                 intervention_rows: int = 0):
    """(online replay, demo replay or None, sampler drawing the demo fraction of each batch from the demos).

    `relabel` (residual RL): episode -> episode with the base policy's actions as `base_action`.
    `intervention_rows` > 0: the demo replay also has room for intervened transitions (made even without demos).
    """
    capacity = cfg.replay_capacity or sizing.auto_capacity(agent.obs_spec)
    if agent.device.type == "cpu":
        need_gb = sizing.check_capacity(capacity, agent.obs_spec, option="--replay-capacity")
        if not cfg.replay_capacity and capacity < sizing.DEFAULT_CAPACITY:
            print(f"[train] online replay: {capacity} transitions (~{need_gb:.1f} GB) fit this machine's RAM; "
                  "--replay-capacity N sets it")
    online = agent.make_replay(capacity, seed=cfg.seed + 1)
    if demo_store is None or demo_store.n_episodes == 0:
        if intervention_rows == 0:
            return online, None, MixedSampler([(online, 1.0)])
        demos = agent.make_replay(intervention_rows, seed=cfg.seed + 2)
        return online, demos, make_sampler(cfg, online, demos)
    missing = sorted(set(agent.obs_spec) - set(demo_store.keys))
    if missing:
        raise ValueError(f"the demo store {demo_store.path} lacks observation keys {missing} of this env "
                         f"(it has {sorted(demo_store.keys)}); record demos with the same --obs mode")
    stored = {k: list(demo_store.spec[k].step_shape) for k in agent.obs_spec}
    if stored != agent.obs_spec:
        raise ValueError(f"the demo store {demo_store.path} has observation shapes {stored}, this env "
                         f"{agent.obs_spec}; record demos of the same task with the same --obs mode")
    demos = agent.make_replay(demo_store.n_steps + 1 + intervention_rows, seed=cfg.seed + 2)
    for episode in demo_store.iter_episodes():
        demos.add_episode(relabel(episode) if relabel is not None else episode)
    return online, demos, make_sampler(cfg, online, demos)


def make_warmup_policy(cfg: TrainConfig, env_id: str, env: gym.Env, np_rng: np.random.Generator):
    """(reset(), act(obs) -> (A,)) of the warm-up policy: uniform random actions, or the sim task's expert."""
    if cfg.warmup_policy == "scripted":
        if not is_sim_task(env_id):
            raise ValueError(f"--warmup-policy scripted needs a sim task with an expert, not {env_id}; use random")
        from robot_rl_sim.experts import make_expert

        expert = make_expert(env, noise=SCRIPTED_DEMO_NOISE, seed=cfg.seed)
        return expert.reset, lambda obs: np.asarray(expert.act(obs), dtype=np.float32)
    low, high = env.action_space.low, env.action_space.high
    return (lambda: None), (lambda obs: np_rng.uniform(low, high).astype(np.float32))


def refill_replays(online: ReplayBuffer, store: EpisodeStore, intervention_demos: ReplayBuffer | None) -> list[dict]:
    """Put every recorded online episode back into the (fresh) online replay, in recorded order, and its intervened
    transitions into `intervention_demos` (when given); the episodes' train-episode records."""
    records, env_steps = [], 0
    for i, episode in enumerate(store.iter_episodes()):
        online.add_episode(episode)
        if intervention_demos is not None:
            add_interventions(intervention_demos, episode)
        env_steps += len(episode[keys.ACTION])
        records.append(curves.train_episode_record(episode, i, env_steps))
    return records


def seed_everything(seed: int) -> np.random.Generator:
    """Seed python, numpy's global and torch's global generators; the loop's own numpy Generator."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


# --- evaluation -------------------------------------------------------------------------------
def run_evaluation(cfg: TrainConfig, agent: Agent, eval_env: gym.Env, video_episodes: int, run_dir: Path,
                   progress: Progress, wall_s: float, log: WandbLog, title: str,
                   residual: ResidualActing | None = None, extra: dict | None = None) -> EvalResult:
    """Evaluate the deterministic policy (on the base, with `residual`); append to eval.jsonl (with `extra`, e.g.
    the recent training episodes' intervention rate), redraw curve.png, write the video, log."""
    act, reset = (residual.eval_act, residual.eval_reset) if residual is not None else (
        lambda obs: agent.policy.act(obs, deterministic=True), None)
    with torch.no_grad():
        result = evaluate(act, eval_env, cfg.eval_episodes, seed=cfg.seed + EVAL_SEED_OFFSET,
                          video_episodes=video_episodes, reset=reset)
    record = {"env_steps": progress.env_steps, "episodes": progress.episodes, "updates": agent.step,
              "wall_s": round(wall_s, 2), **result.metrics(), **(extra or {})}
    curves.append_eval(run_dir, record)
    curves.plot_curve(curves.read_evals(run_dir), run_dir / curves.CURVE_PNG, title)
    log.log({f"eval/{k}": v for k, v in result.metrics().items()}, progress.env_steps)
    if result.frames:
        fps = eval_env.metadata.get("render_fps") or 10
        video = write_episodes_mp4(result.frames, run_dir / "videos" / f"eval_{progress.env_steps}.mp4", fps)
        log.log_video(video, progress.env_steps)
    return result


def _status(progress: Progress, recent: deque, updates_per_s: float, steps_per_s: float,
            last_eval: EvalResult | None, recent_interventions: deque | None = None) -> str:
    success = f"{np.mean(recent):.0%}" if recent else "-"
    line = f"ep {progress.episodes} | train success {success}"
    if recent_interventions is not None:
        rate = f"{np.mean(recent_interventions):.1%}" if recent_interventions else "-"
        line += f" | intervention rate {rate}"
    line += f" | {updates_per_s:.0f} upd/s | {steps_per_s:.0f} steps/s"
    if last_eval is not None and last_eval.success_rate is not None:
        line += f" | eval success {last_eval.success_rate:.0%}"
    elif last_eval is not None:
        line += f" | eval return {last_eval.return_mean:.1f}"
    return line


# --- the main loop ----------------------------------------------------------------------------
def train(cfg: TrainConfig) -> TrainResult:
    """Train until `cfg.steps` env steps (finishing the episode in flight); see the module docstring."""
    if cfg.operator and not is_sim_task(env_id_of(cfg.task, cfg.env_id)):
        raise ValueError(f"--operator needs a sim task (its scripted operator reads the simulator's ground truth); "
                         f"{env_id_of(cfg.task, cfg.env_id)} is not one: use --task pick_cube or peg_insert, "
                         "or drop --operator")
    if cfg.out and not cfg.resume:
        check_new_out(Path(cfg.out))  # before make_run_dir rewrites the config of a run already there
    run_dir = Path(cfg.resume) if cfg.resume else make_run_dir(cfg)
    ckpt = resume_checkpoint(run_dir, cfg) if cfg.resume else None
    if cfg.resume:
        cfg.save(run_dir / CONFIG_JSON)  # what runs: the record with the changeable options given now
    env_id = env_id_of(cfg.task, cfg.env_id)
    title = f"{env_id} ({cfg.obs})" if is_sim_task(env_id) else env_id
    demo_store = make_demo_store(cfg, env_id, run_dir)

    env = make_env(env_id, cfg.obs, max_episode_steps=cfg.max_episode_steps, reward_classifier=cfg.reward_classifier)
    store = EpisodeStore.open_or_create(run_dir / "episodes", run_store_meta(env, env_id, cfg.obs))
    eval_env, video_episodes = make_eval_env(env_id, cfg.obs, cfg.video_episodes, cfg.max_episode_steps)
    obs_space = env.observation_space
    has_images = bool(image_keys(as_dict_space(obs_space)))
    threads = cfg.threads if cfg.threads is not None else (available_cores() if has_images else 1)
    if threads:  # small state nets run best on one thread; image batches' GEMMs scale with cores
        torch.set_num_threads(threads)
    keep_freed_memory()  # multi-MiB update tensors reuse freed memory instead of fresh page-faulting mmaps
    if ckpt is None:
        success_reward = is_sim_task(env_id) or cfg.reward_classifier is not None  # 0/1 success rewards
        cfg.agent, note = with_recipe(cfg.agent, has_images, success_reward)
        if note:
            print(f"[train] {note}")
            cfg.save(run_dir / CONFIG_JSON)
    # wandb first: nothing it does at start-up can then touch the random streams seeded below
    resume_id = Progress.from_json(ckpt / "progress.json").wandb_run_id if ckpt is not None else None
    log = WandbLog(run_dir, cfg.wandb_mode if cfg.wandb else "disabled", cfg.wandb_project, run_dir.name,
                   cfg.to_dict(), resume_id=resume_id)
    np_rng = seed_everything(cfg.seed)
    if ckpt is not None:
        agent, progress = resume_from(ckpt, cfg, store)
    else:  # a new run, or one stopped before its first checkpoint: a new agent, counting the recorded episodes
        agent = (make_residual_agent(cfg.agent, cfg.residual, obs_space, env.action_space, device=cfg.device,
                                     seed=cfg.seed) if cfg.base_policy else
                 make_agent(cfg.agent, obs_space, env.action_space, device=cfg.device, seed=cfg.seed))
        progress = Progress(env_steps=store.n_steps, episodes=store.n_episodes)
    # residual RL: the base policy acts every step, the agent learns a correction (robot_rl.training.residual)
    residual = None if not cfg.base_policy else make_residual_acting(cfg.base_policy, agent, cfg.base_noise, np_rng,
                                                                      cfg.device)
    operator: SimOperator | None = None
    if cfg.operator:
        operator = make_sim_operator(env, env_id, cfg.patience_steps, cfg.takeover_steps, cfg.max_interventions,
                                     cfg.max_fraction, cfg.max_episode_steps)
    corrections = operator is not None and cfg.intervention_to_demos  # intervened transitions also go to the demos
    intervention_rows = 0 if not corrections else intervention_replay_rows(
        cfg.steps, operator.cfg.max_episode_steps, cfg.replay_capacity or sizing.auto_capacity(agent.obs_spec))
    online, demos, sampler = make_replays(cfg, agent, demo_store, relabel=residual.relabel if residual else None,
                                          intervention_rows=intervention_rows)
    generators = {"online_replay": online.generator, **({"demo_replay": demos.generator} if demos is not None else {})}
    if ckpt is not None:  # generators the checkpoint lacks (demos or an operator added on resume) keep their seeds
        state = json.loads((ckpt / "rng.json").read_text())
        restore_rng_state(state, np_rng, {k: g for k, g in generators.items() if k in state["torch_generators"]})
        curves.truncate_evals(run_dir, progress.env_steps)
        print(f"[train] resumed from {ckpt}: {progress.env_steps} env steps, {progress.episodes} episodes, "
              f"{agent.step} updates")
    episode_records = refill_replays(online, store, demos if corrections else None)
    curves.write_train_episodes(run_dir, episode_records, append=False)  # rewritten from the store on every start
    sampler = make_sampler(cfg, online, demos)
    if progress.env_steps >= cfg.steps:
        print(f"[train] {run_dir} already has {progress.env_steps} of {cfg.steps} env steps; raise --steps to train on")
        log.close()
        env.close()
        eval_env.close()
        return TrainResult(run_dir, progress, curves.read_evals(run_dir), ckpt,
                           {"online": len(online), "demos": len(demos) if demos is not None else 0})
    print(f"[train] {title}: online replay {len(online)} transitions, demos "
          f"{len(demos) if demos is not None else 0} transitions -> {run_dir}")
    progress.wandb_run_id = log.run_id
    recorder = EpisodeRecorder(store)
    if residual is None:
        warmup_reset, warmup_act = make_warmup_policy(cfg, env_id, env, np_rng)
    else:  # the base acts in warm-up too; reset it at every episode start
        warmup_reset, warmup_act = residual.reset, None
    timers = SectionTimers()
    recent = deque((r["success"] for r in episode_records), maxlen=RECENT_EPISODES)
    recent_interventions = deque((r["intervention_rate"] for r in episode_records), maxlen=RECENT_EPISODES)

    def eval_extra() -> dict | None:  # the eval rows carry the training episodes' recent intervention rate
        if operator is None:
            return None
        return {"intervention_rate_recent": round(float(np.mean(recent_interventions)), 6) if recent_interventions
                else 0.0}

    t_start, wall_before = time.perf_counter(), progress.train_wall_s

    def wall() -> float:  # seconds of training, summed over resumed segments
        return wall_before + time.perf_counter() - t_start

    last_eval = None
    if progress.env_steps == 0:
        with timers("eval"):
            last_eval = run_evaluation(cfg, agent, eval_env, video_episodes, run_dir, progress, wall(), log, title,
                                       residual, eval_extra())
    next_eval = (progress.env_steps // cfg.eval_every + 1) * cfg.eval_every
    next_checkpoint = (progress.env_steps // cfg.checkpoint_every + 1) * cfg.checkpoint_every
    bar = tqdm(total=cfg.steps, initial=progress.env_steps, unit="step", desc="train", disable=not cfg.progress_bar,
               dynamic_ncols=True, mininterval=0.5)
    window = {"t": time.perf_counter(), "steps": progress.env_steps, "updates": agent.step}
    metrics: dict[str, float] = {}
    ckpt_path = None

    def start_episode():
        obs, info = env.reset(seed=cfg.seed + progress.episodes)
        warmup_reset()
        if operator is not None:
            operator.reset()
            operator.observe(active=progress.env_steps >= cfg.warmup_steps)
        recorder.start(obs, info)
        return obs

    obs = start_episode()
    episode_return, episode_success = 0.0, False
    while True:
        with timers("act"):
            if residual is not None:  # base (+ noise in warm-up, + the residual after it)
                action = residual.act(obs, warmup=progress.env_steps < cfg.warmup_steps)
            elif progress.env_steps < cfg.warmup_steps:
                action = warmup_act(obs)
            else:
                with torch.no_grad():
                    action = agent.policy.act(obs, deterministic=False)
            policy_action, is_intervention = action, False
            if operator is not None:  # the operator's action replaces the policy's while it drives
                out = operator.arbitrate(policy_action)
                action, is_intervention = out.action, out.is_intervention
        with timers("env"):
            next_obs, reward, terminated, truncated, info = env.step(action)
        learn_reward = float(reward)
        if operator is not None and not (terminated or truncated):
            with timers("act"):  # the operator sees the new state; a take-over there penalises this step (RLIF)
                if operator.observe(active=progress.env_steps + 1 >= cfg.warmup_steps):
                    learn_reward += cfg.intervention_penalty
        with timers("record"):
            recorder.step(action, next_obs, learn_reward, bool(terminated), bool(truncated), info,
                          base_action=residual.base_action if residual is not None else None,
                          policy_action=policy_action, is_intervention=is_intervention)
        progress.env_steps += 1
        bar.update(1)
        episode_return += float(reward)
        episode_success = episode_success or bool(success_of(info))
        obs = next_obs

        if progress.env_steps >= cfg.warmup_steps and len(online) > 0:
            with timers("update"):
                metrics = agent.update_many(sampler, cfg.agent.utd_ratio)

        if progress.env_steps >= next_eval:
            next_eval += cfg.eval_every
            with timers("eval"):
                last_eval = run_evaluation(cfg, agent, eval_env, video_episodes, run_dir, progress, wall(), log, title,
                                           residual, eval_extra())

        if progress.env_steps % cfg.log_every == 0:
            dt = time.perf_counter() - window["t"]
            steps_per_s = (progress.env_steps - window["steps"]) / dt
            updates_per_s = (agent.step - window["updates"]) / dt
            window = {"t": time.perf_counter(), "steps": progress.env_steps, "updates": agent.step}
            status = _status(progress, recent, updates_per_s, steps_per_s, last_eval,
                             recent_interventions if operator is not None else None)
            if cfg.progress_bar:
                bar.set_postfix_str(status, refresh=False)
            else:  # logs and CI: one plain line with the learner's numbers
                numbers = " ".join(f"{k} {v:.3g}" for k, v in sorted(metrics.items()))
                print(f"[train] step {progress.env_steps} | {status} | {numbers}", flush=True)
            log.log({**{f"train/{k}": v for k, v in metrics.items()}, **timers.metrics(),
                     "perf/env_steps_per_s": steps_per_s, "perf/updates_per_s": updates_per_s,
                     "train/success_rate_recent": float(np.mean(recent)) if recent else 0.0,
                     **({"train/intervention_rate_recent": float(np.mean(recent_interventions)) if recent_interventions
                         else 0.0} if operator is not None else {}),
                     "train/episodes": progress.episodes, "train/updates": agent.step}, progress.env_steps)

        if not (terminated or truncated):
            continue
        # --- episode end: make it durable, checkpoint if due, stop or start the next one ----------
        with timers("record"):
            episode = store.get_episode(recorder.end())
            online.add_episode(episode)
            if corrections and add_interventions(demos, episode) and len(sampler.sources) == 1:
                sampler = make_sampler(cfg, online, demos)  # the first corrections: mix the demo replay in from now
            record = curves.train_episode_record(episode, progress.episodes, progress.env_steps)
            curves.write_train_episodes(run_dir, [record], append=True)
        progress.episodes += 1
        recent.append(episode_success)
        recent_interventions.append(record["intervention_rate"])
        log.log({"train/episode_return": episode_return, "train/episode_success": float(episode_success),
                 **({"train/intervention_rate": record["intervention_rate"]} if operator is not None else {})},
                progress.env_steps)
        done = progress.env_steps >= cfg.steps
        if progress.env_steps >= next_checkpoint or done:
            next_checkpoint = (progress.env_steps // cfg.checkpoint_every + 1) * cfg.checkpoint_every
            progress.train_wall_s = wall()
            with timers("checkpoint"):
                ckpt_path = save_checkpoint(run_dir, agent, cfg.to_dict(), progress, rng_state(np_rng, generators),
                                            cfg.keep_checkpoints)
        if done:
            break
        obs = start_episode()
        episode_return, episode_success = 0.0, False

    bar.close()
    evals = curves.read_evals(run_dir)
    if not evals or evals[-1]["env_steps"] != progress.env_steps:
        with timers("eval"):
            last_eval = run_evaluation(cfg, agent, eval_env, video_episodes, run_dir, progress, wall(), log, title,
                                       residual, eval_extra())
        evals = curves.read_evals(run_dir)
    print(f"[train] done: {progress.env_steps} env steps, {progress.episodes} episodes, {agent.step} updates in "
          f"{wall():.0f} s; last eval: {_eval_line(evals[-1])}")
    print(f"[train] time: {timers.summary()}")
    log.close()
    env.close()
    eval_env.close()
    return TrainResult(run_dir=run_dir, progress=progress, evals=evals, checkpoint=ckpt_path,
                       replay_transitions={"online": len(online), "demos": len(demos) if demos is not None else 0})


def _eval_line(record: dict) -> str:
    parts = [f"return {record['return_mean']:.1f}"]
    if record.get("success_rate") is not None:
        parts.insert(0, f"success {record['success_rate']:.0%}")
    return ", ".join(parts)
