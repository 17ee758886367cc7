"""TrainConfig: every setting of a training run, one typed dataclass (the agent's config nested inside).

It is the single source of the `robot-rl train` options (see `robot_rl.training.cli_args`) and is saved
as JSON in the run dir and next to each checkpoint. The learning core's settings (seed, device, demo mix, replay
size, corrections and their penalty, checkpoints kept, wandb project) are inherited from
`robot_rl.learner.core_config.LearnerCoreConfig`, shared with the learner node. The update-to-data ratio is the agent's `utd_ratio`
(`--utd`, alias of `--utd-ratio`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from robot_rl.agents.config import AgentConfig
from robot_rl.agents.residual_config import ResidualConfig
from robot_rl.bc.config import BCTrainConfig
from robot_rl.cell import TASKS
from robot_rl.learner.core_config import TUNED_AGENT, LearnerCoreConfig
from robot_rl.teleop.operator import OperatorConfig
from robot_rl.training.cli_args import from_dict

CONFIG_JSON = "train_config.json"

DEFAULT_SCRIPTED_DEMOS = 20  # scripted demos a run records when given none (TaskSpec.pixel_demos from pixels)


@dataclass
class TrainConfig(LearnerCoreConfig):
    """One training run: env, data, loop schedule, evaluation, checkpoints, logging, and the agent (after the
    learning core's settings, `LearnerCoreConfig`)."""

    task: str | None = "pick_cube"  # sim task (see robot_rl.envs.TASK_ENV_IDS); ignored when --env-id is given
    env_id: str | None = None  # any gymnasium id with Box or Dict(Box) observations and Box actions (replaces --task)
    obs: Literal["state", "pixels"] = "state"  # sim observation mode: state vector, or cameras + proprioception
    max_episode_steps: int | None = None  # override the env's time limit (None: the env's own)
    demos: str | None = None  # episode store of demonstrations (e.g. from `robot-rl demos record`)
    scripted_demos: int | None = (
        None  # no --demos on a sim task: record this many scripted demos to <out>/demos (0: none; unset: 20, 40 for peg_insert from pixels: robot_rl.cell)
    )
    demo_layout: Literal["random", "spread"] = "spread"  # scripted demos' goals: spread over the range, or random
    # (spread: farthest-point over 10x candidate reset seeds, a block of its own per --seed; random: seeds in a row,
    # shared by neighbouring --seed values; robot_rl.data.demos. Spread since session 21: docs/benchmarks.md)
    demo_noise: float = 0.1  # the scripted expert's action noise in demos and scripted warm-up (std, normalised units)
    sim_contact: Literal["auto", "stiff", "bounded"] = "auto"  # sim contact profile (auto: as ROBOT_RL_SIM_CONTACT)
    # (robot_rl_sim.contact; unset: stiff. The run records the one it used; eval, failures and --resume take it)
    out: str | None = None  # run directory (None: runs/<env>-<obs>-<time>)
    steps: int = 10_000  # online env steps to train for (total, counting those before a resume)
    threads: int | None = (
        None  # torch intra-op CPU threads (None: 1 for state, all cores with images; 0: torch's default)
    )
    warmup_steps: int = 500  # env steps before learning starts, acting with the warm-up policy
    warmup_policy: Literal["random", "scripted"] = "random"  # warm-up actions: uniform random, or the sim task's expert
    eval_every: int = 1_000  # env steps between evaluations (and a last one at the end)
    eval_episodes: int = 20  # episodes per evaluation, deterministic policy, seeds 10**6 + seed + i
    video_episodes: int = 2  # evaluation episodes recorded to <out>/videos/eval_<step>.mp4 (0: none)
    checkpoint_every: int = 1_000  # env steps between checkpoints (taken at the next episode end)
    resume: str | None = None  # run dir to continue: restores agent, counters and RNGs, refills replay from the stores
    log_every: int = 500  # env steps between train-metric logs and status-line refreshes
    wandb: bool = True  # log to wandb (offline files under <out>/wandb unless logged in)
    wandb_mode: Literal["auto", "online", "offline", "disabled"] = "auto"  # auto: online if logged in, else offline
    progress_bar: bool = True  # show the tqdm progress bar with the status line
    viz: Literal["none", "rerun"] = "none"  # rerun: a live view of steps, episodes, learner and evals in <out>/viz.rrd
    viz_connect: str | None = None  # with --viz rerun: stream to the Rerun viewer at this address instead of the file
    agent: AgentConfig = field(default_factory=lambda: AgentConfig(**TUNED_AGENT))  # the learner (see TUNED_AGENT)
    reward_classifier: str | None = (
        None  # learned reward: a `robot-rl reward train` dir; its success replaces the env's reward and ends episodes (pixels; evaluation stays on the env's own success)
    )
    # --- residual RL (robot_rl.training.residual): on when base_policy is given ---
    base_policy: str | None = (
        None  # the base to learn a residual on (or steer): a dir (`robot-rl bc train` output, a saved policy), a TorchScript/ONNX file, module:factory; or flow / mlp: train that BC kind on this run's demos into <out>/base first (an existing path of that name wins)
    )
    base_steps: int = BCTrainConfig.steps  # --base-policy flow|mlp: BC gradient steps of the base (bc train's default)
    base_eval_episodes: int = 0  # --base-policy flow|mlp: episodes to evaluate the trained base alone (0: none)
    base_noise: float = (
        0.1  # residual RL warm-up: std of the Gaussian noise added to the base action (replaces --warmup-policy)
    )
    residual: ResidualConfig = field(default_factory=ResidualConfig)  # the residual's bound and critic-only phase
    steer: Literal["residual", "noise"] = (
        "residual"  # with --base-policy: residual (learn a bounded correction) or noise (DSRL: pick a flow base's noise)
    )
    noise_bound: float = 1.5  # --steer noise: the latent action's noise spans [-this, this] per entry (N(0,1) units)
    # --- simulated operator (robot_rl.training.intervention): on with --operator ---
    operator: bool = False  # a scripted operator takes over when the policy strays (after warm-up; sim tasks only)
    patience_steps: int = 10  # operator: steps without progress before it takes over
    takeover_steps: int = 15  # operator: steps it drives per take-over
    max_interventions: int = 3  # operator budget: take-overs per episode
    max_fraction: float = 0.3  # operator budget: fraction of the episode's time limit it may drive
    end_lost_episodes: bool = True  # operator: ends a lost episode (a peg pushed into the hand) with a failure verdict
    # as a person watching would, instead of taking over in it; the step is stored terminated with reward 0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("steps", "eval_every", "eval_episodes", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.base_steps < 1:
            raise ValueError(f"base_steps must be >= 1, got {self.base_steps}")
        if self.demo_layout not in ("random", "spread"):
            raise ValueError(f"demo_layout must be random or spread, got {self.demo_layout!r}")
        for name in ("warmup_steps", "scripted_demos", "video_episodes", "threads", "base_eval_episodes"):
            if (getattr(self, name) or 0) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("base_noise", "demo_noise"):
            if not 0 <= getattr(self, name) < math.inf:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.base_policy and self.agent.discrete_gripper:
            raise ValueError(
                "residual RL (--base-policy) corrects every action dim continuously; drop --discrete-gripper"
            )
        if self.operator:  # the operator's own checks (the episode length is the env's, known later)
            OperatorConfig(
                patience_steps=self.patience_steps,
                takeover_steps=self.takeover_steps,
                max_interventions=self.max_interventions,
                max_fraction=self.max_fraction,
            )
        if self.steer == "noise" and not self.base_policy:
            raise ValueError(
                "--steer noise steers a flow base's noise: give it with --base-policy DIR (or --base-policy flow)"
            )
        if self.steer == "noise" and self.operator:
            raise ValueError(
                "--steer noise learns on latent actions, which a person's take-over lacks; drop --operator"
            )
        if not 0.0 < self.noise_bound < 10.0:
            raise ValueError(f"noise_bound must be in (0, 10), got {self.noise_bound}")
        if not (self.task or self.env_id):
            raise ValueError("give a sim task (--task) or a gymnasium id (--env-id)")

    def scripted_demo_count(self) -> int:
        """The scripted demos this run records when given no --demos: --scripted-demos, else the task's count."""
        if self.scripted_demos is not None:
            return self.scripted_demos
        if self.obs == "pixels" and self.task in TASKS and not self.env_id:
            return TASKS[self.task].pixel_demos
        return DEFAULT_SCRIPTED_DEMOS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: Path) -> None:
        path = Path(path)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))
        tmp.replace(path)

    @classmethod
    def from_json(cls, path: Path) -> TrainConfig:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"cannot read a TrainConfig from {path}: {e}") from e
        if not isinstance(data, dict):
            raise ValueError(
                f"cannot read a TrainConfig from {path}: it holds a JSON {type(data).__name__}, not an "
                "object of options"
            )
        try:
            return from_dict(cls, data)
        except (TypeError, AttributeError) as e:  # a value of the wrong type (edited by hand): its check cannot run
            raise ValueError(f"cannot read a TrainConfig from {path}: a value has the wrong type ({e})") from e


def config_for_resume(run_dir: Path, overrides: dict[str, Any]) -> TrainConfig:
    """The saved config of `run_dir` with `overrides` (e.g. {"steps": 20000}) applied, set to resume there.

    Overrides of fixed options (robot_rl.training.resume: the env, seed, network shapes, ...) that differ from the
    record are refused with a UsageError before anything is written; the others are applied.
    """
    from robot_rl.errors import UsageError
    from robot_rl.training.cli_args import replace_nested
    from robot_rl.training.resume import check_resume_options

    path = Path(run_dir) / CONFIG_JSON
    if not path.exists():
        raise UsageError(f"cannot resume {run_dir}: no {CONFIG_JSON} there (expected a run dir made by robot-rl train)")
    recorded = TrainConfig.from_json(path)
    out = overrides.get("out")
    if out is not None and Path(out).resolve() != Path(run_dir).resolve():
        raise UsageError(
            f"--out {out} differs from --resume {run_dir}: a resumed run continues in its own dir; drop --out"
        )
    if "base_policy" in overrides:  # `--base-policy flow` again names the base this run trained
        from robot_rl.training.base_setup import resumed_base_policy

        given = resumed_base_policy(run_dir, recorded.base_policy, overrides["base_policy"])
        overrides = {**overrides, "base_policy": given}
    wanted = replace_nested(recorded, {**overrides, "resume": str(run_dir), "out": str(run_dir)})
    check_resume_options(run_dir, replace_nested(recorded, {"out": str(run_dir)}), wanted)
    return wanted
