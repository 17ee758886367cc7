"""LearnerConfig: every setting of the learner node, one typed dataclass (one ROS parameter per field).

The settings the learning core reads (seed, device, demo mix, replay size, corrections and their penalty,
checkpoints kept, wandb project) are inherited from `robot_rl.learner.core_config.LearnerCoreConfig`, declared
and checked there once for this node and `robot-rl train` alike.

The agent trains with the in-process trainer's state recipe (`robot_rl.learner.core_config.TUNED_AGENT`)
unless `agent_config` names a JSON or YAML file of AgentConfig fields; `utd_ratio`, `batch_size` and
`encoder` override single fields (0 / "" keep the file's or the recipe's value). ROS parameters cannot be
None, so "not set" is 0 or "" throughout.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from robot_rl.agents.config import AgentConfig
from robot_rl.cell import DEFAULT_JOINT_NAMES, ActorLayout, task_spec
from robot_rl.learner.core_config import TUNED_AGENT, LearnerCoreConfig
from robot_rl.learner.wandb_log import WANDB_MODES


@dataclass
class LearnerConfig(LearnerCoreConfig):
    """The learner node's parameters (see `robot_rl.nodes.learner`), after the core's (`LearnerCoreConfig`)."""

    out: str = ""  # run dir: episodes/, checkpoints/, train_episodes.jsonl, train_curve.png, wandb/ (required)
    demos: str = ""  # episode store of demonstrations mixed into every batch ("" = none)
    agent_config: str = ""  # JSON/YAML file of AgentConfig fields ("" = TUNED_AGENT, the trainer's state recipe)
    utd_ratio: int = 0  # critic updates per received env step (0 = the agent config's utd_ratio)
    batch_size: int = 0  # transitions per update (0 = the agent config's batch_size)
    encoder: str = ""  # image encoder: none, conv, resnet10 ("" = the agent config's)
    intervention_replay_capacity: int = (
        0  # demo-replay rows kept for intervened transitions (0 = a quarter of the online replay)
    )
    base_policy: str = (
        ""  # residual RL: the actors' base policy dir; the learner trains a residual on it and relabels the demos
    )
    residual_scale: float = 0.5  # residual RL: bound of the correction per action dim (normalised units)
    critic_only_steps: int = 1000  # residual RL: critic updates before the residual actor's first update
    steer: str = "residual"  # with base_policy: residual (train a residual on the base) or noise (DSRL: a plain agent
    # whose action is the flow base's latent noise, trained on the episodes' noise_action; no demos)
    noise_bound: float = 1.5  # steer:=noise: the latent action's noise spans [-this, this] per entry (N(0, 1) units)
    min_steps_to_train: int = 1000  # online + demo transitions in replay before the first update
    max_updates_per_spin: int = 0  # updates between two looks at the executor (0 = 10 * utd_ratio)
    publish_every_updates: int = 100  # broadcast the policy after this many updates (and once at start)
    checkpoint_every_episodes: int = (
        20  # checkpoint (and redraw train_curve.png) after this many ingested episodes, and on a clean stop
    )
    log_every_episodes: int = 10  # log line and wandb train scalars every this many episodes
    success_window: int = 20  # episodes in the rolling success rate
    ack_period_s: float = 1.0  # republish the acks this often (the actors' learner heartbeat)
    # The episode layout the learner accepts (see robot_rl.learner.episode_layout): with `task` set, the one an actor with
    # these settings sends; "" = the demos' layout (or a resumed run's), else the first episode that passes every check.
    task: str = ""  # the actors' task (robot_rl.cell.TASKS), e.g. pick_cube
    obs_mode: str = "state"  # the actors' obs_mode: state or pixels (with task)
    cameras: tuple[str, ...] = ("front", "wrist")  # the actors' cameras in pixels mode (with task)
    image_size: int = 128  # the actors' square image side in px (with task)
    use_rotation: bool = False  # the actors' actions carry (drx, dry, drz) (with task)
    joint_names: tuple[str, ...] = DEFAULT_JOINT_NAMES  # the actors' arm joints (their count sets the state size)
    max_episode_steps: int = 10000  # longest episode accepted; longer ones (and larger payloads) are refused
    threads: int = 1  # torch intra-op CPU threads (0 = torch's default)
    wandb_mode: str = "offline"  # offline (files under <out>/wandb), online, auto or disabled

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.wandb_mode not in WANDB_MODES:
            raise ValueError(f"wandb_mode {self.wandb_mode!r} is not valid; choose one of {list(WANDB_MODES)}")
        for name in (
            "publish_every_updates",
            "checkpoint_every_episodes",
            "log_every_episodes",
            "success_window",
            "max_episode_steps",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "intervention_replay_capacity",
            "utd_ratio",
            "batch_size",
            "min_steps_to_train",
            "max_updates_per_spin",
            "threads",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.steer not in ("residual", "noise"):
            raise ValueError(f"steer {self.steer!r} is not valid; choose one of ['residual', 'noise']")
        if self.steer == "noise" and not (self.base_policy and 0.0 < self.noise_bound < 10.0 and not self.demos):
            raise ValueError(
                "steer:=noise trains in a flow base's noise space: it needs base_policy:=DIR, 0 < noise_bound < 10 "
                f"and no demos (demo actions have no latent; got demos={self.demos!r}, noise_bound={self.noise_bound})"
            )
        if self.ack_period_s <= 0:
            raise ValueError(f"ack_period_s must be > 0, got {self.ack_period_s}")
        self.actor_layout()  # an unknown task, obs_mode or image size: refused at start, not per episode

    def actor_layout(self) -> ActorLayout | None:
        """The layout an actor with the configured task settings acts in (None without `task`)."""
        if not self.task:
            return None
        return ActorLayout(
            task_spec(self.task),
            self.obs_mode,
            tuple(self.cameras),
            self.image_size,
            10.0,
            self.max_episode_steps,
            self.use_rotation,
            tuple(self.joint_names),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def agent(self) -> AgentConfig:
        """The AgentConfig to train with: recipe or file, then the single-field overrides."""
        fields: dict[str, Any] = dict(TUNED_AGENT)
        if self.agent_config:
            fields = load_agent_fields(Path(self.agent_config))
        overrides = {"utd_ratio": self.utd_ratio, "batch_size": self.batch_size, "encoder": self.encoder}
        fields.update({k: v for k, v in overrides.items() if v})
        return AgentConfig.from_dict(fields)

    def residual(self):
        """The ResidualConfig of a residual learner (base_policy set)."""
        from robot_rl.agents.residual import ResidualConfig

        return ResidualConfig(residual_scale=self.residual_scale, critic_only_steps=self.critic_only_steps)

    def updates_per_spin(self, utd_ratio: int) -> int:
        return self.max_updates_per_spin or 10 * utd_ratio


def load_agent_fields(path: Path) -> dict[str, Any]:
    """AgentConfig fields from a .json, .yaml or .yml file (a mapping; an `agent:` section is also accepted)."""
    if not path.is_file():
        raise ValueError(f"agent_config {path} does not exist; give a JSON or YAML file of AgentConfig fields")
    text = path.read_text()
    if path.suffix == ".json":
        data = json.loads(text)
    elif path.suffix in (".yaml", ".yml"):
        data = yaml.safe_load(text)
    else:
        raise ValueError(f"agent_config {path}: unknown suffix {path.suffix!r}; use .json, .yaml or .yml")
    if isinstance(data, dict) and isinstance(data.get("agent"), dict):
        data = data["agent"]  # a saved TrainConfig / train_config.json holds the agent under "agent"
    if not isinstance(data, dict):
        raise ValueError(f"agent_config {path} must hold a mapping of AgentConfig fields, got {type(data).__name__}")
    return data
