"""Everything around `robot-rl train`'s main loop (`robot_rl.training.loop`): set-up (`make_run`), evaluation,
the status line and the end of a run (`TrainRun`).

`make_run` builds, in an order the random streams depend on (a resumed run must continue exactly as an
uninterrupted one would): run dir and checkpoint -> demos -> envs and episode store -> the recipe -> wandb ->
the learner core (seeds every generator) and its agent -> the residual base and the operator -> the replays
(refilled from the store, the checkpoint's random states restored) -> the warm-up policy and the acting cores
(robot_rl.acting.core.Acting: one for training, a deterministic one for evaluation).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from robot_rl.acting.core import Acting, RandomWarmup, WarmupPolicy
from robot_rl.agents.config import with_recipe
from robot_rl.bc.steering import latent_episode, zero_last_layer
from robot_rl.bench.timing import available_cores
from robot_rl.data.demos import DemoConfig, record_scripted_demos
from robot_rl.data.recorder import EpisodeRecorder
from robot_rl.data.store import EpisodeStore
from robot_rl.learner.checkpoint import RunCounters
from robot_rl.learner.core import Learner
from robot_rl.learner.wandb_log import WandbLog
from robot_rl.replay import sizing
from robot_rl.spaces import as_dict_space, image_keys
from robot_rl.training import curves
from robot_rl.training.config import CONFIG_JSON, TrainConfig
from robot_rl.training.env_factory import env_id_of, is_sim_task, make_env, make_eval_env, run_store_meta
from robot_rl.training.evaluation import EVAL_SEED_OFFSET, EvalResult, acting_fns, evaluate, write_episodes_mp4
from robot_rl.training.intervention import SimOperator, intervention_replay_rows, make_sim_operator
from robot_rl.training.residual import SteeringBases, make_noise_steering, make_residual_bases
from robot_rl.training.resume import apply_agent_settings, check_new_out, resume_checkpoint

DEMO_SEED_OFFSET = 2_000_000  # scripted demo attempt j resets with seed + DEMO_SEED_OFFSET + j
SCRIPTED_DEMO_NOISE = 0.1  # the scripted expert's action noise (normalised units) for diverse demos and warm-up
RECENT_EPISODES = 20  # the status line's success rate is over this many latest training episodes


@dataclass
class TrainResult:
    """What a finished `train` call hands back."""

    run_dir: Path  # the run directory
    progress: RunCounters  # final counters
    evals: list[dict] = field(default_factory=list)  # every record of eval.jsonl
    checkpoint: Path | None = None  # the last checkpoint written
    replay_transitions: dict[str, int] = field(default_factory=dict)  # {"online": N, "demos": M} at the end


def say(line: str) -> None:
    print(f"[train] {line}", flush=True)


# --- set-up ---------------------------------------------------------------------------------------
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
        say(
            f"no --demos given: recording {cfg.scripted_demos - have} scripted demos of {cfg.task} into "
            f"{path} (--scripted-demos 0 trains from scratch)"
        )
        record_scripted_demos(
            DemoConfig(
                task=cfg.task,
                episodes=cfg.scripted_demos - have,
                out=path,
                obs_mode=cfg.obs,
                seed=cfg.seed + DEMO_SEED_OFFSET + have,
                noise=SCRIPTED_DEMO_NOISE,
                progress=cfg.progress_bar,
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

        return make_expert(env, noise=SCRIPTED_DEMO_NOISE, seed=cfg.seed)
    return RandomWarmup(env.action_space.low, env.action_space.high, np_rng)


def open_run(cfg: TrainConfig) -> tuple[Path, Path | None]:
    """(run dir, checkpoint to resume from or None): checked and created, the config recorded."""
    env_id = env_id_of(cfg.task, cfg.env_id)
    if cfg.operator and not is_sim_task(env_id):
        raise ValueError(
            f"--operator needs a sim task (its scripted operator reads the simulator's ground truth); "
            f"{env_id} is not one: use --task pick_cube or peg_insert, or drop --operator"
        )
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


def make_run(cfg: TrainConfig) -> TrainRun:
    """Everything the loop needs, built in the order the module docstring gives."""
    run_dir, ckpt = open_run(cfg)
    env_id = env_id_of(cfg.task, cfg.env_id)
    steer_noise = bool(cfg.base_policy) and cfg.steer == "noise"  # DSRL: demo actions have no latent to learn from
    demo_store = None if steer_noise else make_demo_store(cfg, env_id, run_dir)
    env = make_env(env_id, cfg.obs, max_episode_steps=cfg.max_episode_steps, reward_classifier=cfg.reward_classifier)
    eval_env, video_episodes = make_eval_env(env_id, cfg.obs, cfg.video_episodes, cfg.max_episode_steps)
    has_images = bool(image_keys(as_dict_space(env.observation_space)))
    threads = cfg.threads if cfg.threads is not None else (available_cores() if has_images else 1)
    if threads:  # small state nets run best on one thread; image batches' GEMMs scale with cores
        torch.set_num_threads(threads)
    if ckpt is None:
        success_reward = is_sim_task(env_id) or cfg.reward_classifier is not None  # 0/1 success rewards
        cfg.agent, note = with_recipe(cfg.agent, has_images, success_reward)
        if note:
            say(note)
            cfg.save(run_dir / CONFIG_JSON)
    # wandb first: nothing it does at start-up can then touch the random streams the learner seeds
    resume_id = RunCounters.from_json(ckpt / "progress.json").wandb_run_id if ckpt is not None else None
    log = WandbLog(
        run_dir,
        cfg.wandb_mode if cfg.wandb else "disabled",
        cfg.wandb_project,
        run_dir.name,
        cfg.to_dict(),
        resume_id=resume_id,
    )
    # noise steering: the flow base, loaded first (the agent's action space is its noise's size)
    steering = make_noise_steering(cfg.base_policy, env, cfg.noise_bound, cfg.device) if steer_noise else None
    learner = make_learner(cfg, run_dir, ckpt, env, log, steering)
    # residual RL: the base policy acts every step, the agent learns a correction (robot_rl.training.residual)
    residual = (
        make_residual_bases(cfg.base_policy, learner.agent, cfg.device) if cfg.base_policy and not steering else None
    )
    operator = (
        None
        if not cfg.operator
        else make_sim_operator(
            env,
            env_id,
            cfg.patience_steps,
            cfg.takeover_steps,
            cfg.max_interventions,
            cfg.max_fraction,
            cfg.max_episode_steps,
        )
    )
    rows = (
        0
        if operator is None or not cfg.intervention_to_demos
        else intervention_replay_rows(
            cfg.steps,
            operator.cfg.max_episode_steps,
            cfg.replay_capacity or sizing.auto_capacity(learner.agent.obs_spec),
        )
    )
    learner.open_replays(
        demo_store, relabel=residual.relabel if residual else None, intervention_rows=rows, checkpoint=ckpt
    )
    if ckpt is not None:
        curves.truncate_evals(run_dir, learner.env_steps)
        say(
            f"resumed from {ckpt}: {learner.env_steps} env steps, {learner.episodes} episodes, "
            f"{learner.agent.step} updates"
        )
    # the acting cores: the agent's policy is trained in place (the learner never replaces it), so they act with it;
    # in warm-up the warm-up policy acts, or with a base policy the base plus noise (from the same generator)
    agent, action_dim = learner.agent, int(env.action_space.shape[0])
    warmup = None if residual or steering else make_warmup_policy(cfg, env_id, env, learner.np_rng)
    acting = Acting(
        action_dim,
        policy=agent.policy,
        warmup=warmup,
        rng=learner.np_rng,
        base=residual.base if residual else None,
        base_noise=cfg.base_noise,
        arbiter=operator.arbiter if operator else None,
        steering=steering.steering if steering else None,
    )
    eval_acting = Acting(
        action_dim,
        policy=agent.policy,
        base=residual.eval_base if residual else None,
        deterministic=True,
        steering=steering.eval_steering if steering else None,
    )
    title = f"{env_id} ({cfg.obs})" if is_sim_task(env_id) else env_id
    return TrainRun(
        cfg, run_dir, title, env, eval_env, video_episodes, learner, log, acting, eval_acting, operator, checkpoint=ckpt
    )


# --- the run around the loop ----------------------------------------------------------------------
@dataclass
class TrainRun:
    """The parts of one training run and what the loop does besides stepping: evaluate, log, finish."""

    cfg: TrainConfig
    run_dir: Path
    title: str  # of the curves
    env: gym.Env
    eval_env: gym.Env
    video_episodes: int
    learner: Learner
    log: WandbLog
    acting: Acting  # chooses every training action: warm-up or policy, on the base (residual RL), the operator's
    eval_acting: Acting  # chooses every evaluation action: the policy's mean, on the evaluation copy of the base
    operator: SimOperator | None  # the simulated operator (--operator); its arbiter is `acting`'s
    checkpoint: Path | None = None  # the last checkpoint written (or resumed from)
    last_eval: EvalResult | None = None
    recorder: EpisodeRecorder = field(init=False)
    bar: tqdm = field(init=False)

    def __post_init__(self) -> None:
        self.recorder = EpisodeRecorder(self.learner)  # end() hands each episode to learner.add_episode
        cfg, steps = self.cfg, self.learner.env_steps
        print(
            f"[train] {self.title}: online replay {len(self.learner.online)} transitions, demos "
            f"{len(self.learner.demos) if self.learner.demos is not None else 0} transitions -> {self.run_dir}"
        )
        self.bar = tqdm(
            total=cfg.steps,
            initial=steps,
            unit="step",
            desc="train",
            disable=not cfg.progress_bar,
            dynamic_ncols=True,
            mininterval=0.5,
        )
        self._window = {"t": time.perf_counter(), "steps": steps, "updates": self.learner.agent.step}
        self.learner.start_clock()  # wall_s: training time, set-up excluded

    def start_episode(self, env_steps: int):
        """Reset the env (episode i with seed + i) and every acting part; the first observation."""
        obs, info = self.env.reset(seed=self.cfg.seed + self.learner.episodes)
        self.acting.reset()
        if self.operator is not None:
            self.operator.reset()
            self.operator.observe(active=env_steps >= self.cfg.warmup_steps)
        self.recorder.start(obs, info)
        return obs

    def _intervention_extra(self) -> dict | None:
        """Eval rows of operator runs carry the recent training episodes' intervention rate."""
        if self.operator is None:
            return None
        rate = self.learner.intervention_rate_recent()
        return {"intervention_rate_recent": round(rate, 6) if rate is not None else 0.0}

    def evaluate(self, env_steps: int) -> EvalResult:
        """Evaluate the deterministic policy (on the base, with residual RL); append to eval.jsonl, redraw
        curve.png, write the video, log."""
        cfg, agent = self.cfg, self.learner.agent
        act, reset = acting_fns(self.eval_acting)
        wall_s = self.learner.wall_s()  # training time up to this evaluation
        with self.learner.timers("eval"), torch.no_grad():
            result = evaluate(
                act,
                self.eval_env,
                cfg.eval_episodes,
                seed=cfg.seed + EVAL_SEED_OFFSET,
                video_episodes=self.video_episodes,
                reset=reset,
            )
            record = {
                "env_steps": env_steps,
                "episodes": self.learner.episodes,
                "updates": agent.step,
                "wall_s": round(wall_s, 2),
                **result.metrics(),
                **(self._intervention_extra() or {}),
            }
            curves.append_eval(self.run_dir, record)
            curves.plot_curve(curves.read_evals(self.run_dir), self.run_dir / curves.CURVE_PNG, self.title)
            self.log.log({f"eval/{k}": v for k, v in result.metrics().items()}, env_steps)
            if result.frames:
                fps = self.eval_env.metadata.get("render_fps") or 10
                video = write_episodes_mp4(result.frames, self.run_dir / "videos" / f"eval_{env_steps}.mp4", fps)
                self.log.log_video(video, env_steps)
        self.last_eval = result
        return result

    def log_status(self, env_steps: int) -> None:
        """The status line (progress bar, or one printed line) and the train scalars to wandb."""
        learner, w = self.learner, self._window
        dt = time.perf_counter() - w["t"]
        steps_per_s, updates_per_s = (env_steps - w["steps"]) / dt, (learner.agent.step - w["updates"]) / dt
        self._window = {"t": time.perf_counter(), "steps": env_steps, "updates": learner.agent.step}
        success, interventions = learner.success_rate_recent(), learner.intervention_rate_recent()
        line = f"ep {learner.episodes} | train success {'-' if success is None else f'{success:.0%}'}"
        if self.operator is not None:
            line += f" | intervention rate {'-' if interventions is None else f'{interventions:.1%}'}"
        line += f" | {updates_per_s:.0f} upd/s | {steps_per_s:.0f} steps/s"
        if self.last_eval is not None and self.last_eval.success_rate is not None:
            line += f" | eval success {self.last_eval.success_rate:.0%}"
        elif self.last_eval is not None:
            line += f" | eval return {self.last_eval.return_mean:.1f}"
        if self.cfg.progress_bar:
            self.bar.set_postfix_str(line, refresh=False)
        else:  # logs and CI: one plain line with the learner's numbers
            numbers = " ".join(f"{k} {v:.3g}" for k, v in sorted(learner.metrics.items()))
            print(f"[train] step {env_steps} | {line} | {numbers}", flush=True)
        self.log.log(
            {
                **{f"train/{k}": v for k, v in learner.metrics.items()},
                **learner.timers.metrics(),
                "perf/env_steps_per_s": steps_per_s,
                "perf/updates_per_s": updates_per_s,
                "train/success_rate_recent": success or 0.0,
                **({"train/intervention_rate_recent": interventions or 0.0} if self.operator is not None else {}),
                "train/episodes": learner.episodes,
                "train/updates": learner.agent.step,
            },
            env_steps,
        )

    def finish(self, env_steps: int, evaluate: bool = True) -> TrainResult:
        """A last evaluation at the final step (unless one was taken there), the summary lines, everything closed."""
        self.bar.close()
        learner = self.learner
        evals = curves.read_evals(self.run_dir)
        if evaluate and (not evals or evals[-1]["env_steps"] != env_steps):
            self.evaluate(env_steps)
            evals = curves.read_evals(self.run_dir)
        if evaluate:
            say(
                f"done: {env_steps} env steps, {learner.episodes} episodes, {learner.agent.step} updates in "
                f"{learner.wall_s():.0f} s; last eval: {_eval_line(evals[-1])}"
            )
            say(f"time: {learner.timers.summary()}")
        progress = RunCounters(env_steps, learner.episodes, learner.wall_s(), self.log.run_id)
        replay = {"online": len(learner.online), "demos": len(learner.demos) if learner.demos is not None else 0}
        learner.close()
        self.env.close()
        self.eval_env.close()
        return TrainResult(self.run_dir, progress, evals, self.checkpoint, replay)


def _eval_line(record: dict) -> str:
    parts = [f"return {record['return_mean']:.1f}"]
    if record.get("success_rate") is not None:
        parts.insert(0, f"success {record['success_rate']:.0%}")
    return ", ".join(parts)
