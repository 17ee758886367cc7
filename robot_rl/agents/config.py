"""The learner's configuration: one typed dataclass, saved as JSON next to every agent and policy."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

ALGOS = ("sac", "td3")
CRITIC_LOSSES = ("mse", "hl_gauss")
ENCODERS = ("none", "conv", "resnet10")
ENTROPY_MEASURES = ("action", "gaussian")  # see AgentConfig.entropy_measure


@dataclass
class AgentConfig:
    """SAC/RLPD defaults for sparse manipulation from demos on a small CPU budget.

    Ensemble: RLPD's default is 10 critics with a random subset of 2 for the target; on 2 CPU cores that is
    ~5x the critic cost, so the default is 2 critics (clipped double Q, as HIL-SERL runs on real robots) with
    LayerNorm, which RLPD found to be the ingredient that matters most at a high update-to-data ratio.
    UTD 2 (HIL-SERL's image setting) rather than RLPD's 20, for the same reason; temperature and entropy
    backup follow HIL-SERL, which learns sparse 0/1-reward manipulation tasks.
    """

    algo: str = "sac"  # "sac" (stochastic actor, learned temperature) or "td3" (deterministic actor, smoothed targets)
    hidden_dims: tuple[int, ...] = (256, 256)  # widths of the actor's and each critic's hidden layers
    n_critics: int = 2  # critic ensemble size
    critic_subsample: int = 2  # members drawn at random for the min in the target (RLPD: 2 of 10)
    layer_norm: bool = True  # LayerNorm after every hidden layer of the critics (RLPD)
    actor_layer_norm: bool = False  # LayerNorm in the actor's hidden layers
    gamma: float = 0.99  # discount per env step
    tau: float = 0.005  # Polyak rate of the target critics and the target grasp critic
    actor_lr: float = 3e-4  # Adam learning rate of the actor
    critic_lr: float = (
        3e-4  # Adam learning rate of the critics and the trainable encoder parts (trained via the critic)
    )
    temp_lr: float = 3e-4  # Adam learning rate of log(temperature)
    init_temperature: float = 0.01  # initial SAC temperature (HIL-SERL: 0.01; RLPD: 1.0)
    target_entropy: float | None = None  # SAC entropy target; None = -(continuous action dims) / 2 (RLPD)
    target_entropy_final: float | None = (
        None  # target reached as recent episodes succeed without take-overs; None: fixed
    )
    target_entropy_ratchet: bool = False  # the target follows the best autonomous success so far, never back up
    # (off: it follows the recent rate both ways, so a dip in success raises the exploration noise, which can deepen it)
    entropy_measure: str | None = None  # entropy kept at the target: action (>= it) or gaussian (= it); unset: recipe's
    # "action": the temperature keeps the squashed action's entropy at or above the target. A dim held at +-1 (a gripper
    # kept open) has a very negative entropy that the other dims make up, and where the critic is flat the std drifts up
    # unchecked: pick_cube's motion dims sample with a std of ~0.5 while the mean succeeds every time. "gaussian": the
    # entropy of the Gaussian before the tanh, every dim alike, held at the target from both sides (the temperature
    # raises it, a penalty on the excess lowers it).
    actor_ema: float | None = None  # deployed actor = moving average of the trained one, this rate per step; 0 off
    # (its weights move this share of the way after every actor step; the average is what acts, is evaluated, saved and
    # pushed); unset: the recipe's (0.005 for plain SAC from state, else 0)
    encoder_ema: bool = False  # with actor_ema, the deployed image necks average the trained ones too
    # (at the same rate, so the averaged actor reads averaged features, not the newest necks; robot_rl.agents.averaged)
    backup_entropy: bool = False  # subtract temperature * log-prob of the next action in the critic target; off
    # (HIL-SERL) because an entropy bonus per step makes ending an episode on success look costly
    batch_size: int = 256  # transitions per gradient step (the loop samples this many)
    utd_ratio: int = 2  # critic updates per env step; the loop passes it to update_many (RLPD uses up to 20)
    n_step: int = 3  # rewards summed per target (replay computes them); 3 carries a sparse success reward back
    # through a grasp sooner (robot_rl/training/config.py: pick_cube 90 % at 5k steps with 3, 0 % with RLPD's 1)
    actor_update_every: int = 1  # actor (and temperature) step every k-th critic step (TD3: 2)
    critic_loss: str | None = (
        None  # "mse" regression, or "hl_gauss" (categorical cross-entropy on a Gaussian histogram); unset: the recipe's (hl_gauss from state, mse with images; mse where no recipe is applied)
    )
    hl_gauss_bins: int = 51  # number of bins of the categorical critic
    hl_gauss_range: tuple[float, float] = (-1.0, 2.0)  # (min, max) return the bins cover; set it to the task's
    # returns (the default suits a sparse 0/1 success reward that ends the episode: returns in [0, 1])
    hl_gauss_sigma_ratio: float = 0.75  # Gaussian width in bin widths (Farebrother et al. 2024)
    td3_policy_noise: float = 0.2  # std of the target policy smoothing noise (actions in [-1, 1])
    td3_noise_clip: float = 0.5  # clip of the target policy smoothing noise
    td3_exploration_noise: float = 0.1  # std of the Gaussian noise act(deterministic=False) adds
    discrete_gripper: bool = False  # last action dim comes from a 3-way grasp critic (values -1, 0, +1), as in HIL-SERL
    grasp_critic_lr: float = 3e-4  # Adam learning rate of the grasp critic
    encoder: str = "none"  # image encoder: "none" (state only), "conv" (trained via the critic), "resnet10"
    encoder_weights: str | None = (
        None  # ResNet-10 weights: local .safetensors file/dir or HF cache id; None = random init
    )
    freeze_encoder: bool = False  # keep the trunk fixed (features then cached per stored frame by replay)
    encoder_stages: int = 4  # resnet10 stages kept: 3 ends at stride 16 (256 x H/16 x W/16 features, a finer grid)
    image_aug_pad_px: int = 4  # random shift of up to this many pixels per axis (0 = no augmentation)
    image_aug_skip: tuple[str, ...] = ()  # cameras whose frames are never shifted (e.g. wrist: it moves with the tool)
    feature_cache_augs: int = 2  # with a frozen trunk: shifted views cached per frame (first unshifted)
    latent_dim: int = 64  # per-camera latent size after the encoder neck
    log_std_range: tuple[float, float] = (-5.0, 2.0)  # bounds of the SAC actor's log std
    bc_weight: float | None = (
        None  # actor loss += this x squared error of the mean action to the demonstrated one on demo/intervention rows (0: pure RLPD; unset: the recipe's, 5 from state and 1 with images; 0 where no recipe is applied)
    )
    bc_encoder_weight: float = 0.0  # critic loss += this x the BC term's error with the encoder's features undetached:
    # the demonstrated actions also train the image necks (the actor reads detached features; 0: off). Opt-in and
    # scale-sensitive: at 1 it swamped the critic's ~1e-3 loss on pixel peg_insert (Q ~0.9 at 0 % success, no
    # success by 4 k env steps in 2 seeds; session 17)
    success_pose_weight: float | None = None  # critic loss += this x an auxiliary head's error at the tool's offset
    # to success (robot_rl.agents.success_pose: from the encoder's features a head predicts where the tool will be when
    # the episode succeeds, which teaches image necks where the goal is; labels from successful episodes' own
    # proprioception; 0: off; unset: the recipe's, PIXEL_SUCCESS_POSE for plain SAC from pixels, else 0)
    success_pose_slice: tuple[int, int] = (0, 3)  # the state's dims the head predicts (the cell's tool position)
    success_pose_symlog: float | None = None  # > 0: the head's error taken on symlog(offset / this), in the state's
    # units (metres: at 0.002 an error of 2 mm at the goal counts as one of 12 mm 1 cm away); 0: offsets scaled by
    # their RMS; unset: the recipe's (with the weight)

    def __post_init__(self) -> None:
        self.hidden_dims = tuple(self.hidden_dims)
        self.image_aug_skip = camera_names(self.image_aug_skip, "image_aug_skip")
        self.hl_gauss_range = tuple(self.hl_gauss_range)  # type: ignore[assignment]
        self.log_std_range = tuple(self.log_std_range)  # type: ignore[assignment]
        self.success_pose_slice = tuple(self.success_pose_slice)  # type: ignore[assignment]
        for name, value, choices in (
            ("algo", self.algo, ALGOS),
            ("critic_loss", self.critic_loss or "mse", CRITIC_LOSSES),
            ("encoder", self.encoder, ENCODERS),
            ("entropy_measure", self.entropy_measure or "action", ENTROPY_MEASURES),
        ):
            if value not in choices:
                raise ValueError(f"{name}={value!r} is not valid; choose one of {choices}")
        if not 1 <= self.critic_subsample <= self.n_critics:
            raise ValueError(f"critic_subsample={self.critic_subsample} must be in [1, n_critics={self.n_critics}]")
        if self.n_step < 1 or self.actor_update_every < 1 or self.utd_ratio < 1 or self.feature_cache_augs < 1:
            raise ValueError("n_step, actor_update_every, utd_ratio and feature_cache_augs must all be >= 1")
        if self.hl_gauss_range[0] >= self.hl_gauss_range[1] or self.hl_gauss_bins < 2:
            raise ValueError(f"hl_gauss_range {self.hl_gauss_range} must be increasing and hl_gauss_bins >= 2")
        self._check_numbers()

    def _check_numbers(self) -> None:
        """Sizes >= 1 and rates finite and in range: a NaN, negative or zero here would otherwise surface as a
        torch error or NaN actions deep inside training (e.g. `--actor-lr -1`, `--gamma nan`, `--batch-size 0`)."""
        for name in ("batch_size", "n_critics", "latent_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.hidden_dims or min(self.hidden_dims) < 1:
            raise ValueError(f"hidden_dims must be one or more widths >= 1, got {list(self.hidden_dims)}")
        if self.image_aug_pad_px < 0:
            raise ValueError(f"image_aug_pad_px must be >= 0, got {self.image_aug_pad_px}")
        check_encoder_stages(self.encoder_stages)
        for name in ("actor_lr", "critic_lr", "temp_lr", "grasp_critic_lr", "init_temperature", "hl_gauss_sigma_ratio"):
            if not 0 < getattr(self, name) < math.inf:
                raise ValueError(f"{name} must be a finite number > 0, got {getattr(self, name)}")
        for name in (
            "td3_policy_noise",
            "td3_noise_clip",
            "td3_exploration_noise",
            "bc_weight",
            "bc_encoder_weight",
            "success_pose_weight",
            "success_pose_symlog",
        ):
            value = getattr(self, name)
            if value is not None and not 0 <= value < math.inf:
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if not 0 <= self.gamma <= 1:
            raise ValueError(f"gamma must be a discount in [0, 1], got {self.gamma}")
        if self.actor_ema is not None and not 0 <= self.actor_ema < 1:
            raise ValueError(f"actor_ema must be a rate in [0, 1) (0: off), got {self.actor_ema}")
        if not 0 < self.tau <= 1:
            raise ValueError(f"tau must be a Polyak rate in (0, 1], got {self.tau}")
        for name in ("target_entropy", "target_entropy_final"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        low, high = self.log_std_range
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"log_std_range must be two finite numbers, low < high, got {low} {high}")
        if not all(math.isfinite(v) for v in self.hl_gauss_range):
            raise ValueError(f"hl_gauss_range must be finite, got {self.hl_gauss_range}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AgentConfig:
        return config_from_dict(cls, d)


PIXEL_BC_WEIGHT = 1.0  # the pixel recipe's BC term (see with_recipe)
PIXEL_SUCCESS_POSE = (0.02, 0.002)  # the pixel recipe's success-pose head: (weight, symlog scale in metres)
STATE_BC_WEIGHT = 5.0  # the state recipe's BC term
STATE_CRITIC_LOSS = "hl_gauss"  # the state recipe's critic
FINAL_ENTROPY_PER_DIM = -3.0  # plain SAC's entropy target per continuous action dim once it succeeds (both recipes)
ACTOR_EMA = 0.005  # plain SAC's averaging rate of the deployed actor (both recipes)


def with_recipe(
    cfg: AgentConfig, has_images: bool, success_reward: bool = True, arm_dims: int | None = None
) -> tuple[AgentConfig, str]:
    """The agent config with the recipe for its observations filled in where it was left unset, and a note of it.

    Pixels (images and encoder "none"): a frozen ResNet-10 trunk whose features replay caches once per frame (no
    conv in any update) and a BC term on demo rows (bc_weight 1), for plain and residual agents alike. Measured
    on pick_cube from pixels (2 cameras 128 px, 20 scripted demos, 2 CPU cores, random-init trunk): without the
    BC term 0 % success after 4k env steps (the critic stays flat in the action); with it 80 % at 2k. Residual RL
    on a 40 % BC base first reaches 90 % at 5k, 6k, 3k, 2k, 2k env steps (seeds 0-4) with the term, at 5k, 5k, 5k
    (seeds 0-2) without it. A conv encoder trained through the critic (--encoder conv) costs ~3 s per env step
    at UTD 2 on 2 CPU cores: a GPU's job.

    State: a BC term of weight 5 and an HL-Gauss critic. Measured with `robot-rl bench learning` (docs/benchmarks.md,
    20 scripted demos, 5 seeds each): peg_insert from state never reached 90 % within 10k env steps
    without the BC term (best evaluations .3-.6), and reaches it in 5 of 5 seeds with this recipe (first at 3k-6k,
    median 4k; 20k steps); pick_cube from state reaches 90 % at a median 2k env steps (1k-2k) instead of 5k.
    The HL-Gauss critic's bins cover returns in `hl_gauss_range` ([-1, 2]: a 0/1 success reward that ends the
    episode), so it is chosen only where `success_reward` says the reward is of that kind (sim tasks, a reward
    classifier, the robot's success signal); any other gymnasium env keeps the regression critic.
    Given `arm_dims` (the agent's continuous action dims; callers pass it for plain SAC, not for residual or
    steering agents, where it is not measured), the state recipe also holds the pre-tanh Gaussian's entropy at the
    target (`entropy_measure` "gaussian") and moves the target to -3 per dim as recent episodes succeed without a
    take-over. Measured (docs/benchmarks.md, 20 scripted demos, 20-episode evaluations): without an operator no
    worse than before (pick_cube 90 % at 2k in 5 of 5 seeds, as before; peg_insert at 8k, 6k, 4k, 4k, 5k against
    4k, 6k, 5k, 3k, 4k); with the simulated operator peg_insert reaches 90 % at 5k and 5k instead of 10k-13k and
    the operator's share of steps falls to 0.02-0.07 per 1k steps, pick_cube's to 0-0.05 (it stayed at 0.2-0.3):
    with SAC's measure a gripper held at -1 has a very negative squashed entropy that the motion dims make up with
    a std of ~0.5, so the sampled policy dithers where its mean succeeds. And the deployed actor is an exponential
    moving average of the trained one (`actor_ema` 0.005): a peg_insert policy at 95 % fell to 45 % for under 600
    env steps (26 updates later it was at 80 %, 560 later at 100 %); averaged, and with the entropy capped per dim,
    after the first 90 % no seed of 5 fell below 80 % on peg_insert or 90 % on pick_cube (before: 2 and 1 of 5 fell to
    .45-.5); pick_cube reaches 90 % as fast (2k), peg_insert at 12k, 7k, 3k, 4k, 7k (before 8k, 6k, 4k, 4k, 5k).
    Plain SAC from pixels (`arm_dims` given) gets the same entropy handling and averaged actor. Measured on
    pick_cube from pixels (5 seeds, 10-episode evaluations, docs/benchmarks.md): 90 % at 4k, 5k, 5k, 3k env steps
    (seeds 1-4; seed 0 at .7-.8 from 3k to 6k), never below .8 after, against 6k, 6k, not by 6k, 5k and 2k without them
    (earlier in 4 seeds of 5, later in seed 0; seed 0 fell to .3 after its 90 %).
    Plain SAC from pixels on a success reward also trains a success-pose head with the critic (PIXEL_SUCCESS_POSE:
    weight 0.02, offsets compared as symlog(offset / 2 mm); robot_rl.agents.success_pose), which teaches the necks
    where the goal is from the robot's own successes. Measured (docs/benchmarks.md, 10-episode evaluations): pixel
    pick_cube 90 % at 2k, 2k, not by 6k, 1k, 2k env steps (seeds 0-4) against not by 6k, 4k, 5k, 5k, 3k without it;
    pixel peg_insert (2 seeds, 16k steps) first 90 % at 4k and 16k against 18k and not by 30k, its evaluations
    .5-.9 from 2k where without it they were .1-.8.
    Given values (bc_weight 0 turns the term off; --critic-loss mse; --entropy-measure) are kept.
    """
    if has_images:
        if cfg.encoder != "none":
            return cfg, ""
        changes: dict[str, Any] = dict(encoder="resnet10", freeze_encoder=True)
        if cfg.bc_weight is None:
            changes["bc_weight"] = PIXEL_BC_WEIGHT
        note = (
            f"image observations: frozen ResNet-10 trunk with cached features ({cfg.encoder_weights or 'random init'}"
            "; --encoder-weights PATH for pretrained ones)"
            + (f", BC term on demo rows (bc_weight {PIXEL_BC_WEIGHT})" if "bc_weight" in changes else "")
            + "; --encoder conv trains a conv encoder through the critic instead (a GPU's job)"
        )
        changes.update(_plain_sac_changes(cfg, arm_dims))
        if arm_dims and success_reward:
            changes.update(_success_pose_changes(cfg))
        extra = _plain_sac_notes(changes)
        return dataclasses.replace(cfg, **changes), note + ("; " + ", ".join(extra) if extra else "")
    changes = {}
    if cfg.bc_weight is None:
        changes["bc_weight"] = STATE_BC_WEIGHT
    if cfg.critic_loss is None and success_reward:
        changes["critic_loss"] = STATE_CRITIC_LOSS
    changes.update(_plain_sac_changes(cfg, arm_dims))
    if not changes:
        return cfg, ""
    parts = (
        [f"BC term on demo rows (bc_weight {STATE_BC_WEIGHT:g}; --bc-weight 0 turns it off)"]
        if "bc_weight" in changes
        else []
    ) + ([f"{STATE_CRITIC_LOSS} critic (--critic-loss mse for regression)"] if "critic_loss" in changes else [])
    return dataclasses.replace(cfg, **changes), "state observations: " + ", ".join(parts + _plain_sac_notes(changes))


def _plain_sac_changes(cfg: AgentConfig, arm_dims: int | None) -> dict[str, Any]:
    """Both recipes' entropy handling and averaged actor, for plain SAC (`arm_dims` given), where left unset."""
    changes: dict[str, Any] = {}
    if arm_dims and cfg.entropy_measure is None:
        changes["entropy_measure"] = "gaussian"
    if arm_dims and cfg.target_entropy_final is None:
        changes["target_entropy_final"] = FINAL_ENTROPY_PER_DIM * arm_dims
    if arm_dims and cfg.actor_ema is None:
        changes["actor_ema"] = ACTOR_EMA
    return changes


def _success_pose_changes(cfg: AgentConfig) -> dict[str, Any]:
    """The pixel recipe's success-pose head (weight and symlog scale), where left unset."""
    changes: dict[str, Any] = {}
    if cfg.success_pose_weight is None:
        changes["success_pose_weight"] = PIXEL_SUCCESS_POSE[0]
    if cfg.success_pose_symlog is None:
        changes["success_pose_symlog"] = PIXEL_SUCCESS_POSE[1]
    return changes


def _plain_sac_notes(changes: dict[str, Any]) -> list[str]:
    parts = []
    if "entropy_measure" in changes:
        parts.append("the Gaussian's entropy held at the target (--entropy-measure action for SAC's)")
    if "target_entropy_final" in changes:
        parts.append(f"the target moving to {changes['target_entropy_final']:g} as the policy succeeds on its own")
    if "actor_ema" in changes:
        parts.append(f"the deployed actor averaging the trained one (actor_ema {ACTOR_EMA:g}; --actor-ema 0 off)")
    if "success_pose_weight" in changes:
        parts.append(
            f"a head learning the tool's offset to success poses (success_pose_weight {PIXEL_SUCCESS_POSE[0]:g}; "
            "--success-pose-weight 0 off)"
        )
    return parts


def camera_names(value, name: str) -> tuple[str, ...]:
    """A config's list of camera names as a tuple (one name alone, or a config file's list); ValueError otherwise."""
    names = (value,) if isinstance(value, str) else tuple(value)
    if not all(isinstance(c, str) and c for c in names):
        raise ValueError(f"{name} must name cameras (e.g. ['wrist']), got {list(names)}")
    return names


def check_encoder_stages(stages: int) -> None:
    if stages not in (3, 4):
        raise ValueError(f"encoder_stages must be 3 or 4 (ResNet-10 stages kept), got {stages}")


def config_from_dict(cls, d: dict[str, Any]):
    """`cls(**d)` for a config dataclass, refusing unknown keys with the valid ones named."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {sorted(unknown)}; valid fields: {sorted(names)}")
    return cls(**d)
