"""`robot-rl train --base-policy flow|mlp`: train the run's BC base on the run's own demos, then RL on it.

A `--base-policy` value that is a BC kind (`robot_rl.bc.config.KINDS`) and no existing path means "clone this run's
demos (the `--demos` store, or the scripted demos the run records) into a base of that kind first": `train_run_base`
runs `robot-rl bc train`'s training (`robot_rl.bc.train.train_bc` with `BCTrainConfig`'s defaults, the run's seed,
device and thread count; from pixels the frozen-trunk feature path) into `<run>/base/`, and the run records that
directory's absolute path as its `base_policy`, so `--resume`, `robot-rl eval` and the ROS actor load exactly that
base. A resume finds the trained base there and never retrains it; given `--base-policy flow` again, it reads it as
"the base this run trained" (`resumed_base_policy`). An existing path named `flow` or `mlp` wins over the kind names.
Heavy modules (torch, the BC trainer) are imported inside the functions, so the CLI checks options quickly.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from robot_rl.bc.config import KINDS
from robot_rl.errors import RunError, UsageError

BASE_DIR = "base"  # <run>/base: the BC base a `--base-policy KIND` run trains


def is_base_kind(base_policy: str | None) -> bool:
    """`base_policy` names a BC kind to train (flow, mlp), not a base to load: no file or directory of that name."""
    return bool(base_policy) and base_policy in KINDS and not Path(str(base_policy)).exists()


def run_base_dir(run_dir: str | Path) -> Path:
    """Where a run trains its base: `<run>/base`, absolute (the run's config names it from any working dir)."""
    return Path(run_dir).resolve() / BASE_DIR


def trained_kind(base_dir: str | Path) -> str | None:
    """The BC kind of a base `train_run_base` finished in `base_dir` (its bc_train_config.json, written last, is
    there), else None."""
    from robot_rl.bc.train import BC_TRAIN_CONFIG

    path = Path(base_dir) / BC_TRAIN_CONFIG
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())["policy"]["kind"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_base_kind(cfg) -> None:
    """UsageError, before anything is recorded, when a `--base-policy KIND` run has no demos to clone or asks noise
    steering of a kind that has no noise."""
    kind = cfg.base_policy
    if cfg.steer == "noise" and kind != "flow":
        raise UsageError(
            f"--steer noise steers a flow base's initial noise; --base-policy {kind} trains an MLP base: "
            "use --base-policy flow"
        )
    from robot_rl.training.env_factory import env_id_of, is_sim_task

    if not cfg.demos and (cfg.scripted_demo_count() == 0 or not is_sim_task(env_id_of(cfg.task, cfg.env_id))):
        raise UsageError(
            f"--base-policy {kind} trains a {kind} BC base on this run's demos, and it has none: give --demos DIR"
            + (", or --scripted-demos N > 0" if cfg.task and not cfg.env_id else "")
            + ", or a trained base's path"
        )


def resumed_base_policy(run_dir: str | Path, recorded: str | None, given: str | None) -> str | None:
    """The `--base-policy` a resume of `run_dir` is given, read as the run's record: the kind the run trained its
    base as (`--base-policy flow` again) means that base's path; anything else is returned as given."""
    if given is None or not is_base_kind(given) or not recorded:
        return given
    base_dir = run_base_dir(run_dir)
    if Path(recorded).resolve() == base_dir and trained_kind(base_dir) == given:
        return recorded
    return given


def train_run_base(cfg, run_dir: Path, demo_store, log=print) -> str:
    """Train a BC base of kind `cfg.base_policy` on `demo_store` into `<run>/base` (unless a finished one is already
    there: a resumed run never retrains it); its absolute path, which the run records as its base policy."""
    kind, out = cfg.base_policy, run_base_dir(run_dir)
    done = trained_kind(out)
    if done == kind:
        log(f"base policy: the {kind} base this run trained, {out} (not retrained)")
        return str(out)
    if done is not None:
        raise RunError(
            f"{out} holds a {done} base, --base-policy asks for {kind}: pass --base-policy {out}, or a new --out"
        )
    if demo_store is None or demo_store.n_episodes == 0:
        raise RunError(f"--base-policy {kind}: no demos to train the base on; give --demos DIR")
    from robot_rl.bc.config import BCPolicyConfig, BCTrainConfig
    from robot_rl.bc.train import train_bc

    bc_cfg = BCTrainConfig(
        demos=str(demo_store.path),
        out=str(out),
        steps=cfg.base_steps,
        seed=cfg.seed,
        device=cfg.device,
        threads=0,  # the run's thread count, set before (robot_rl.training.run_setup.set_threads_and_recipe)
        task=None if cfg.env_id else cfg.task,
        eval_episodes=0,  # evaluated below, on the run's own evaluation env (its episode length)
        progress_bar=cfg.progress_bar,
        policy=BCPolicyConfig(kind=kind),
    )
    log(
        f"--base-policy {kind}: training a {kind} BC base on the {demo_store.n_episodes} demos of {demo_store.path} "
        f"({cfg.base_steps} steps) into {out}"
    )
    t0 = time.perf_counter()
    policy = train_bc(bc_cfg, store=demo_store).policy
    line = f"base policy: trained {out} in {time.perf_counter() - t0:.0f} s"
    if cfg.base_eval_episodes and not cfg.env_id:
        line += f"; alone: {evaluate_run_base(policy, cfg, out)}"
    log(line + "; RL runs on it")
    return str(out)


def evaluate_run_base(policy, cfg, out: Path) -> str:
    """Evaluate the trained base alone as the run evaluates (its task, observations, episode length and evaluation
    seeds), written to <out>/bc_eval.json as `robot-rl bc train` writes it; "success S %, return R over N episodes"."""
    from robot_rl.bc.train import BC_EVAL, evaluate_base

    result = evaluate_base(
        policy, cfg.task, cfg.obs, cfg.base_eval_episodes, seed=cfg.seed, max_episode_steps=cfg.max_episode_steps
    )
    metrics = {"task": cfg.task, "obs_mode": cfg.obs, **result.metrics()}
    (out / BC_EVAL).write_text(json.dumps(metrics, indent=2))
    rate = "" if result.success_rate is None else f"success {result.success_rate:.0%}, "
    return f"{rate}return {result.return_mean:.2f} over {result.episodes} episodes"
