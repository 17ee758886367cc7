"""What `robot-rl train --resume RUN` may change, and how a resumed run takes the changes.

Every train option is one of two kinds:

* fixed: what the saved agent's tensors, the recorded episodes or the run's seeds mean -- the env (`--task`,
  `--env-id`, `--obs`, `--reward-classifier`), `--seed`, `--base-policy` and the residual's bound, `--out`,
  and every agent option that shapes the networks or is only read when they are built (`--hidden-dims`,
  `--algo`, `--encoder`, `--n-critics`, `--init-temperature`, ...). Giving one with a different value than the
  run recorded is refused (`UsageError`, one line naming option, recorded and given value) before anything
  is written.
* changeable: everything else -- the loop's schedule (`--steps`, `--eval-every`, `--checkpoint-every`, ...), the
  data mix, the operator, `--device`, `--threads`, and the agent options read at every update
  (`RESUME_CHANGEABLE_AGENT`: batch size, learning rates, UTD, n-step, gamma, tau, bc weight, ...). They are applied
  (`apply_agent_settings` also sets the optimisers' learning rates) and train_config.json records them.

Options not typed keep the recorded value (cli_args gives only typed options as overrides). A run stopped before
its first checkpoint resumes as a new agent that keeps the recorded episodes (`resume_checkpoint` returns None).
Loading the agent, counting episodes recorded after the checkpoint and refilling replay is the learner core's
(`robot_rl.learner.core.Learner.resume_agent` / `open_replays`).
Heavy modules (torch, the agents) are imported inside the functions, so the CLI checks options quickly.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from robot_rl.errors import UsageError

# TrainConfig fields a resume cannot change (the rest of TrainConfig can; see the module docstring)
RESUME_FIXED = (
    "task",
    "env_id",
    "obs",
    "seed",
    "reward_classifier",
    "base_policy",
    "steer",
    "noise_bound",
    "out",
    "sim_contact",
)
RESUME_FIXED_RESIDUAL = ("residual_scale",)  # the residual policy's output bound is in its saved tensors' meaning
# AgentConfig fields a resume can change: read from agent.cfg at every update (or by the replay, rebuilt on start)
RESUME_CHANGEABLE_AGENT = (
    "batch_size",
    "utd_ratio",
    "actor_lr",
    "critic_lr",
    "temp_lr",
    "grasp_critic_lr",
    "target_entropy",
    "target_entropy_final",
    "target_entropy_ratchet",
    "entropy_measure",
    "backup_entropy",
    "actor_update_every",
    "tau",
    "bc_weight",
    "bc_encoder_weight",
    "td3_policy_noise",
    "td3_noise_clip",
    "critic_subsample",
    "n_step",
    "gamma",
)


def fixed_changes(recorded, wanted) -> list[tuple[str, Any, Any]]:
    """[(field path, recorded value, wanted value)] for every fixed option that differs between two TrainConfigs;
    paths are "task", "agent.hidden_dims", "residual.residual_scale"."""
    changes = [(name, getattr(recorded, name), getattr(wanted, name)) for name in RESUME_FIXED]
    changes += [
        (f"residual.{name}", getattr(recorded.residual, name), getattr(wanted.residual, name))
        for name in RESUME_FIXED_RESIDUAL
    ]
    changes += [
        (f"agent.{f.name}", getattr(recorded.agent, f.name), getattr(wanted.agent, f.name))
        for f in dataclasses.fields(recorded.agent)
        if f.name not in RESUME_CHANGEABLE_AGENT
    ]
    return [(path, old, new) for path, old, new in changes if _norm(old) != _norm(new)]


def _norm(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def check_resume_options(run_dir: Path, recorded, wanted) -> None:
    """UsageError naming each fixed option whose value `wanted` changes from the run's record."""
    from robot_rl.training.cli_args import option_names
    from robot_rl.training.config import TrainConfig

    changes = fixed_changes(recorded, wanted)
    if not changes:
        return
    options = option_names(TrainConfig)
    named = "; ".join(f"{options.get(path, path)} was {_show(old)}, given {_show(new)}" for path, old, new in changes)
    raise UsageError(
        f"cannot change on resume: {named} (the saved agent and episodes of {run_dir} depend on it); "
        f"drop the option to continue the run, or train a new run with --out NEW_DIR"
    )


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return " ".join(str(v) for v in value)
    return str(value)


def adopt_checkpoint_record(cfg, ckpt: Path) -> list[str]:
    """Set `cfg`'s fixed options to those `ckpt` was trained with where train_config.json says otherwise (a record
    rewritten by an older robot_rl's refused resume); one note per option taken from the checkpoint."""
    from robot_rl.training.cli_args import from_dict
    from robot_rl.training.config import TrainConfig

    path = Path(ckpt) / "train_config.json"
    saved = from_dict(TrainConfig, json.loads(path.read_text()))
    notes = []
    for field, old, new in fixed_changes(saved, cfg):
        if field == "out":
            continue
        *parents, name = field.split(".")
        owner = getattr(cfg, parents[0]) if parents else cfg
        setattr(owner, name, old)
        notes.append(
            f"train_config.json said {field} {_show(new)} but checkpoint {Path(ckpt).name} was trained "
            f"with {_show(old)}: using and recording {_show(old)}"
        )
    return notes


def apply_agent_settings(agent, cfg) -> list[str]:
    """Give a loaded agent the changeable settings of `cfg.agent` (learning rates into its optimisers), and the
    residual's critic-only phase; the notes of what changed ("batch_size 128 -> 64")."""
    old = agent.cfg
    agent.cfg = dataclasses.replace(old, **{name: getattr(cfg.agent, name) for name in RESUME_CHANGEABLE_AGENT})
    notes = [
        f"{name} {_show(getattr(old, name))} -> {_show(getattr(agent.cfg, name))}"
        for name in RESUME_CHANGEABLE_AGENT
        if getattr(old, name) != getattr(agent.cfg, name)
    ]
    for opt, lr in (
        (agent.critic_opt, agent.cfg.critic_lr),
        (agent.actor_opt, agent.cfg.actor_lr),
        (agent.temp_opt, agent.cfg.temp_lr),
        (agent.grasp_opt, agent.cfg.grasp_critic_lr),
    ):
        for group in opt.param_groups if opt is not None else []:
            group["lr"] = lr
    agent.set_autonomous_success(None)  # the learner sets it again from the refilled episode log
    residual = getattr(agent, "residual", None)
    if residual is not None and residual.critic_only_steps != cfg.residual.critic_only_steps:
        notes.append(f"critic_only_steps {residual.critic_only_steps} -> {cfg.residual.critic_only_steps}")
        agent.residual = dataclasses.replace(residual, critic_only_steps=cfg.residual.critic_only_steps)
    return notes


def resume_checkpoint(run_dir: Path, cfg) -> Path | None:
    """The newest complete checkpoint to resume from (each damaged newer one reported in one line), with `cfg`'s
    fixed options made the checkpoint's; None for a run killed before its first checkpoint."""
    from robot_rl.learner.checkpoint import find_checkpoint

    try:
        ckpt = find_checkpoint(run_dir, warn=lambda line: print(f"[train] {line}", flush=True))
    except FileNotFoundError:
        print(
            f"[train] {run_dir} has no checkpoint (stopped before its first): restarting from step 0 with a new "
            "agent; its recorded episodes stay and go back into replay"
        )
        return None
    for note in adopt_checkpoint_record(cfg, ckpt):
        print(f"[train] {note}")
    return ckpt


def check_new_out(run_dir: Path) -> None:
    """UsageError, before anything is written, when a run without --resume would start in a dir holding a run."""
    from robot_rl.data.store import EpisodeStore
    from robot_rl.learner.checkpoint import CHECKPOINTS, checkpoint_dirs

    run_dir = Path(run_dir)
    episodes = run_dir / "episodes"
    n_episodes = EpisodeStore.open(episodes, mode="r").n_episodes if (episodes / "zarr.json").is_file() else 0
    has_checkpoints = bool(checkpoint_dirs(run_dir / CHECKPOINTS))
    if not (n_episodes or has_checkpoints):
        return
    what = f"{n_episodes} episodes" + ("" if has_checkpoints else ", no checkpoint yet")
    how = "" if has_checkpoints else " (it restarts from step 0 keeping its episodes)"
    raise UsageError(
        f"{run_dir} already holds a run ({what}): continue it with `robot-rl train --resume "
        f"{run_dir}`{how}, or pass a new --out"
    )
