"""Everything around `robot-rl train`'s main loop (`robot_rl.training.loop`) besides set-up: evaluation, the status
line and the end of a run (`TrainRun`). The set-up (`make_run`, the order the random streams depend on):
robot_rl.training.run_setup.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import torch
from tqdm import tqdm

from robot_rl.acting.core import Acting
from robot_rl.data.recorder import EpisodeRecorder
from robot_rl.learner.checkpoint import RunCounters
from robot_rl.learner.core import Learner
from robot_rl.learner.wandb_log import WandbLog
from robot_rl.training import curves
from robot_rl.training.config import TrainConfig
from robot_rl.training.evaluation import EVAL_SEED_OFFSET, EvalResult, acting_fns, evaluate, write_episodes_mp4
from robot_rl.training.intervention import SimOperator


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
