"""The in-process training loop behind `robot-rl train`: one env, one learner, one main loop (`train`).

Per env step: choose the action (`run.acting`: the acting core robot_rl.acting.core.Acting, the actor node's too:
warm-up policy, base + residual, or the stochastic policy; the simulated operator's while it drives) -> step the
env -> record the step -> `learner.update()` (utd_ratio updates on batches mixing online data and demos at a fixed
fraction) once warm-up is over. At an episode end the recorder hands the episode to `learner.add_episode` --
durable in `<out>/episodes`, into replay (with the take-over penalty, if set), one line of `train_episodes.jsonl`
-- the same core (`robot_rl.learner.core.Learner`) the learner node runs, and the one a resumed run refills replay
from, so an interrupted and resumed run holds exactly the data of an uninterrupted one; then a checkpoint when due. Every `eval_every` steps: a deterministic evaluation,
`<out>/eval.jsonl`, `<out>/curve.png`, a video. A run stops at the first episode end at or after `steps`, so
checkpoints always fall between episodes and a resume continues exactly where the run stood.

Set-up lives in `robot_rl.training.run_setup` (`make_run`); evaluation, the status line and the end of a run in
`robot_rl.training.run` (`TrainRun`).
Residual RL (`base_policy`): robot_rl.training.residual. Simulated operator (`operator`):
robot_rl.training.intervention.

Run directory:
    train_config.json   eval.jsonl   curve.png   train_episodes.jsonl   videos/eval_<step>.mp4   wandb/
    viz.rrd             with --viz rerun: every step, episode, learner status and evaluation (robot_rl.viz.training)
    episodes/           every online episode (zarr EpisodeStore, raw rewards)
    demos/              scripted demos recorded for this run (when no --demos store was given)
    checkpoints/step_<N>/, checkpoints/latest
"""

from __future__ import annotations

from robot_rl.training.config import TrainConfig
from robot_rl.training.run import TrainResult
from robot_rl.training.run_setup import make_run
from robot_rl.viz.training import for_run


def train(cfg: TrainConfig) -> TrainResult:
    """Train until `cfg.steps` env steps (finishing the episode in flight); see the module docstring."""
    run = make_run(cfg)
    learner, env, timers, operator = run.learner, run.env, run.learner.timers, run.operator
    env_steps = learner.env_steps  # stored steps + the episode in flight
    if env_steps >= cfg.steps:
        print(f"[train] {run.run_dir} already has {env_steps} of {cfg.steps} env steps; raise --steps to train on")
        return run.finish(env_steps, evaluate=False)
    viz = for_run(cfg, run)  # --viz rerun: the live view (robot_rl.viz.training); else calls that do nothing
    if env_steps == 0:
        viz.evaluation(env_steps, run.evaluate(env_steps).metrics())
    next_eval = (env_steps // cfg.eval_every + 1) * cfg.eval_every
    next_checkpoint = (env_steps // cfg.checkpoint_every + 1) * cfg.checkpoint_every
    obs = run.start_episode(env_steps)
    viz.start_episode(env_steps, learner.episodes)
    while True:
        with timers("act"):  # the operator's command, while it drives, replaces the proposal
            choice = run.acting.choose(
                obs, warmup=env_steps < cfg.warmup_steps, cmd=operator.command if operator is not None else None
            )
        with timers("env"):
            next_obs, reward, terminated, truncated, info = env.step(choice.action)
        if operator is not None and not (terminated or truncated):
            with timers("act"):  # the operator sees the new state and decides whether it drives the next step
                operator.observe(active=env_steps + 1 >= cfg.warmup_steps)
            if operator.verdict == "failure":  # it judged the episode lost: the step ends it, as the actor node's does
                reward, terminated, info = 0.0, True, {**info, "success": False, "verdict": "failure"}
        with timers("record"):
            run.recorder.step(
                choice.action,
                next_obs,
                float(reward),
                bool(terminated),
                bool(truncated),
                info,
                base_action=choice.base_action,
                policy_action=choice.proposed,
                is_intervention=choice.is_intervention,
                noise_action=choice.latent_action,
            )
        viz.step(env_steps, obs, choice, float(reward), info)
        env_steps += 1
        run.bar.update(1)
        obs = next_obs

        if env_steps >= cfg.warmup_steps and learner.can_update:
            learner.update(cfg.agent.utd_ratio)
        if env_steps >= next_eval:
            next_eval += cfg.eval_every
            viz.evaluation(env_steps, run.evaluate(env_steps).metrics())
        if env_steps % cfg.log_every == 0:
            run.log_status(env_steps)
            viz.status(env_steps, learner.metrics)
        if not (terminated or truncated):
            continue

        # --- episode end: into the learner (durable, replay, log), checkpoint if due, stop or start the next ----
        with timers("record"):
            run.recorder.end()  # -> learner.add_episode(episode), the recorder's sink
        viz.end_episode(env_steps - 1)
        if env_steps >= next_checkpoint or env_steps >= cfg.steps:
            next_checkpoint = (env_steps // cfg.checkpoint_every + 1) * cfg.checkpoint_every
            run.checkpoint = learner.checkpoint(cfg.to_dict())
        if env_steps >= cfg.steps:
            result = run.finish(env_steps)
            viz.evaluation(env_steps, result.evals[-1] if result.evals else {})
            viz.close()
            return result
        obs = run.start_episode(env_steps)
        viz.start_episode(env_steps, learner.episodes)
