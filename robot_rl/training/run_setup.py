"""The set-up of `robot-rl train` (`make_run`): every part of a run built, in an order the random streams depend on.

A resumed run must continue exactly as an uninterrupted one would, so the order is fixed: run dir and checkpoint
-> demos -> envs and episode store -> the recipe -> with `--base-policy flow|mlp` the BC base trained on the demos
(robot_rl.training.base_setup; a resume finds it trained) -> wandb -> the learner core (seeds every generator) and
its agent -> the residual base and the simulated operator -> the replays (refilled from the store, the checkpoint's
random states restored) -> the warm-up policy and the acting cores (robot_rl.acting.core.Acting: one for training, a
deterministic one for evaluation). What the loop does with them: robot_rl.training.run.TrainRun.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from robot_rl.acting.core import Acting, RandomWarmup, WarmupPolicy
from robot_rl.agents.config import with_recipe
from robot_rl.bc.steering import latent_episode, zero_last_layer
from robot_rl.bench.timing import available_cores
from robot_rl.cell import action_scale_mismatch
from robot_rl.data.demos import DemoConfig, record_scripted_demos
from robot_rl.data.store import EpisodeStore
from robot_rl.learner.checkpoint import RunCounters
from robot_rl.learner.core import Learner
from robot_rl.learner.wandb_log import WandbLog
from robot_rl.replay import sizing
from robot_rl.spaces import as_dict_space, image_keys
from robot_rl.training import curves
from robot_rl.training.base_setup import is_base_kind, train_run_base
from robot_rl.training.config import CONFIG_JSON, TrainConfig
from robot_rl.training.env_factory import (
    env_id_of,
    is_sim_task,
    make_env,
    make_eval_env,
    run_store_meta,
    use_sim_contact,
)
from robot_rl.training.intervention import SimOperator, intervention_replay_rows, make_sim_operator
from robot_rl.training.residual import ResidualBases, SteeringBases, make_noise_steering, make_residual_bases
from robot_rl.training.resume import apply_agent_settings, check_new_out, resume_checkpoint
from robot_rl.training.run import TrainRun, say

DEMO_SEED_OFFSET = 2_000_000  # scripted demo attempt j resets with seed + DEMO_SEED_OFFSET + j
RECENT_EPISODES = 20  # the status line's success rate is over this many latest training episodes


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
        store = EpisodeStore.open(cfg.demos, mode="r")
        if is_sim_task(env_id) and cfg.task and (why := action_scale_mismatch(store.meta, cfg.task)):
            raise ValueError(f"the demos {cfg.demos} {why}")
        return store
    wanted = cfg.scripted_demo_count()
    if wanted == 0 or not is_sim_task(env_id):
        return None
    path = run_dir / "demos"
    have = EpisodeStore.open(path, mode="r").n_episodes if path.exists() else 0
    if have < wanted:
        say(
            f"no --demos given: recording {wanted - have} scripted demos of {cfg.task} into "
            f"{path} (--scripted-demos N to choose, 0 trains from scratch)"
        )
        record_scripted_demos(
            DemoConfig(
                task=cfg.task,
                episodes=wanted - have,
                out=path,
                obs_mode=cfg.obs,
                seed=cfg.seed + DEMO_SEED_OFFSET + have,
                noise=cfg.demo_noise,
                progress=cfg.progress_bar,
                layout=cfg.demo_layout,
            )
        )
    return EpisodeStore.open(path, mode="r")


def make_warmup_policy(cfg: TrainConfig, env_id: str, env: gym.Env, np_rng: np.random.Generator) -> WarmupPolicy:
    """The warm-up policy (reset(), act(obs) -> (A,)): uniform random actions from `np_rng`, or the sim task's
    expert."""
    if cfg.warmup_policy == "scripted":
        if not is_sim_task(env_id):
            raise ValueError(f"--warmup-policy scripted needs a sim task with an expert, not {env_id}; use random")
        from robot_rl_sim.experts import make_expert

        return make_expert(env, noise=cfg.demo_noise, seed=cfg.seed)
    return RandomWarmup(env.action_space.low, env.action_space.high, np_rng)


def open_run(cfg: TrainConfig) -> tuple[Path, Path | None]:
    """(run dir, checkpoint to resume from or None): checked and created, the config recorded."""
    env_id = env_id_of(cfg.task, cfg.env_id)
    if cfg.operator and not is_sim_task(env_id):
        raise ValueError(
            f"--operator needs a sim task (its scripted operator reads the simulator's ground truth); "
            f"{env_id} is not one: use --task pick_cube or peg_insert, or drop --operator"
        )
    cfg.sim_contact = use_sim_contact(cfg.sim_contact)  # before any env is made; recorded with the run
    if cfg.out and not cfg.resume:
        check_new_out(Path(cfg.out))  # before make_run_dir rewrites the config of a run already there
    run_dir = Path(cfg.resume) if cfg.resume else make_run_dir(cfg)
    ckpt = resume_checkpoint(run_dir, cfg) if cfg.resume else None
    if cfg.resume:
        cfg.save(run_dir / CONFIG_JSON)  # what runs: the record with the changeable options given now
    return run_dir, ckpt


def make_learner(
    cfg: TrainConfig, run_dir: Path, ckpt: Path | None, env: gym.Env, log: WandbLog, steering: SteeringBases | None
) -> Learner:
    """The learning core on `<run>/episodes`, with the checkpoint's agent (changeable options applied) or a new one;
    with noise steering a plain agent acting in the flow base's latent noise space, learning on the latent actions."""
    store = EpisodeStore.open_or_create(
        run_dir / "episodes", run_store_meta(env, env_id_of(cfg.task, cfg.env_id), cfg.obs)
    )
    learner = Learner(
        cfg,
        run_dir,
        store=store,
        wandb=log,
        log=say,
        success_window=RECENT_EPISODES,
        capacity_option="--replay-capacity",
    )
    if ckpt is not None:
        changed = apply_agent_settings(learner.resume_agent(ckpt, cfg.base_policy, cfg.steer), cfg)
        if changed:
            say(f"resuming with {', '.join(changed)}")
    elif steering is not None:  # DSRL: its untrained mean picks the zero noise (the base's zero-noise chunk)
        zero_last_layer(learner.new_agent(env.observation_space, steering.latent_space, cfg.agent).policy)
    else:  # a new run, or one stopped before its first checkpoint: a new agent, keeping the recorded episodes
        learner.new_agent(env.observation_space, env.action_space, cfg.agent, cfg.residual if cfg.base_policy else None)
    if steering is not None:
        learner.replay_view = latent_episode  # the agent learns on (obs, latent action) transitions
    return learner


def set_threads_and_recipe(cfg: TrainConfig, env: gym.Env, env_id: str, run_dir: Path, fresh: bool) -> None:
    """torch's thread count (one for small state nets; all cores for image batches, whose GEMMs scale) and, for a
    new run, the agent recipe for its observations and rewards (recorded in the run's config)."""
    has_images = bool(image_keys(as_dict_space(env.observation_space)))
    threads = cfg.threads if cfg.threads is not None else (available_cores() if has_images else 1)
    if threads:
        torch.set_num_threads(threads)
    if fresh:
        success_reward = is_sim_task(env_id) or cfg.reward_classifier is not None  # 0/1 success rewards
        plain = not cfg.base_policy  # residual and noise-steering agents: their entropy recipe is not measured
        arm_dims = int(np.prod(env.action_space.shape)) - bool(cfg.agent.discrete_gripper) if plain else None
        cfg.agent, note = with_recipe(cfg.agent, has_images, success_reward, arm_dims)
        if note:
            say(note)
            cfg.save(run_dir / CONFIG_JSON)


def make_wandb_log(cfg: TrainConfig, run_dir: Path, ckpt: Path | None) -> WandbLog:
    """The run's wandb log ("disabled" without --wandb), continuing the checkpoint's wandb run on resume."""
    resume_id = RunCounters.from_json(ckpt / "progress.json").wandb_run_id if ckpt is not None else None
    mode = cfg.wandb_mode if cfg.wandb else "disabled"
    return WandbLog(run_dir, mode, cfg.wandb_project, run_dir.name, cfg.to_dict(), resume_id=resume_id)


def make_operator(cfg: TrainConfig, env: gym.Env, env_id: str, learner: Learner) -> tuple[SimOperator | None, int]:
    """(the simulated operator or None without --operator, the demo replay's rows reserved for its take-overs)."""
    if not cfg.operator:
        return None, 0
    operator = make_sim_operator(
        env,
        env_id,
        cfg.patience_steps,
        cfg.takeover_steps,
        cfg.max_interventions,
        cfg.max_fraction,
        cfg.max_episode_steps,
        cfg.end_lost_episodes,
    )
    if not cfg.intervention_to_demos:
        return operator, 0
    online_capacity = cfg.replay_capacity or sizing.auto_capacity(learner.agent.obs_spec)
    return operator, intervention_replay_rows(cfg.steps, operator.cfg.max_episode_steps, online_capacity)


def make_acting_cores(
    cfg: TrainConfig,
    env_id: str,
    env: gym.Env,
    learner: Learner,
    residual: ResidualBases | None,
    steering: SteeringBases | None,
    operator: SimOperator | None,
) -> tuple[Acting, Acting]:
    """(training, evaluation) acting cores. The agent's policy is trained in place (the learner never replaces it),
    so they act with it; in warm-up the warm-up policy acts, or with a base policy the base plus noise (from the
    same generator); evaluation acts with the policy's mean on the evaluation copy of the base."""
    action_dim = int(env.action_space.shape[0])
    warmup = None if residual or steering else make_warmup_policy(cfg, env_id, env, learner.np_rng)
    acting = Acting(
        action_dim,
        policy=learner.agent.policy,
        warmup=warmup,
        rng=learner.np_rng,
        base=residual.base if residual else None,
        base_noise=cfg.base_noise,
        arbiter=operator.arbiter if operator else None,
        steering=steering.steering if steering else None,
    )
    eval_acting = Acting(
        action_dim,
        policy=learner.agent.policy,
        base=residual.eval_base if residual else None,
        deterministic=True,
        steering=steering.eval_steering if steering else None,
    )
    return acting, eval_acting


def make_run(cfg: TrainConfig) -> TrainRun:
    """Everything the loop needs, built in the order the module docstring gives."""
    run_dir, ckpt = open_run(cfg)
    env_id = env_id_of(cfg.task, cfg.env_id)
    steer_noise = bool(cfg.base_policy) and cfg.steer == "noise"  # DSRL: demo actions have no latent to learn from
    train_base = is_base_kind(cfg.base_policy)  # --base-policy flow|mlp: a base cloned from the run's demos first
    demo_store = make_demo_store(cfg, env_id, run_dir) if train_base or not steer_noise else None
    env = make_env(env_id, cfg.obs, max_episode_steps=cfg.max_episode_steps, reward_classifier=cfg.reward_classifier)
    eval_env, video_episodes = make_eval_env(env_id, cfg.obs, cfg.video_episodes, cfg.max_episode_steps)
    set_threads_and_recipe(cfg, env, env_id, run_dir, fresh=ckpt is None)
    if train_base:  # before the learner seeds every generator; the run records the trained base's path
        cfg.base_policy = train_run_base(cfg, run_dir, demo_store, log=say)
        cfg.save(run_dir / CONFIG_JSON)
    if steer_noise:
        demo_store = None  # the base's demos only: DSRL has no demo replay
    log = make_wandb_log(cfg, run_dir, ckpt)  # first: nothing wandb does at start-up can touch the seeded streams
    # noise steering: the flow base, loaded first (the agent's action space is its noise's size)
    steering = make_noise_steering(cfg.base_policy, env, cfg.noise_bound, cfg.device) if steer_noise else None
    learner = make_learner(cfg, run_dir, ckpt, env, log, steering)
    # residual RL: the base policy acts every step, the agent learns a correction (robot_rl.training.residual)
    residual = (
        make_residual_bases(cfg.base_policy, learner.agent, cfg.device) if cfg.base_policy and not steering else None
    )
    operator, rows = make_operator(cfg, env, env_id, learner)
    if cfg.successes_to_demos:  # the policy's own successes join the demo replay: rows for a run of them
        episode_steps = cfg.max_episode_steps or getattr(env.spec, "max_episode_steps", None) or 1000
        online_capacity = cfg.replay_capacity or sizing.auto_capacity(learner.agent.obs_spec)
        rows = max(rows, intervention_replay_rows(cfg.steps, episode_steps, online_capacity))
    learner.open_replays(
        demo_store, relabel=residual.relabel if residual else None, intervention_rows=rows, checkpoint=ckpt
    )
    if ckpt is not None:
        curves.truncate_evals(run_dir, learner.env_steps)
        say(
            f"resumed from {ckpt}: {learner.env_steps} env steps, {learner.episodes} episodes, "
            f"{learner.agent.step} updates"
        )
    acting, eval_acting = make_acting_cores(cfg, env_id, env, learner, residual, steering, operator)
    title = f"{env_id} ({cfg.obs})" if is_sim_task(env_id) else env_id
    return TrainRun(
        cfg, run_dir, title, env, eval_env, video_episodes, learner, log, acting, eval_acting, operator, checkpoint=ckpt
    )
