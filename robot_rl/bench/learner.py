"""`robot-rl bench learner`: critic updates/s of our agent against LeRobot 0.4.4's SAC learner, in one run.

Both sides are built from one `LearnerBenchSpec` (the peer script receives it as JSON), fill a replay
with synthetic transitions of those shapes, and time whole UTD steps after warm-up: ours
`agent.update_many(replay, utd)`, LeRobot the body of its learner loop (see peer_lerobot_sac.py).
Critic updates/s = timed UTD steps x utd / seconds.

On a shared machine one run's figures move by +-15 % within minutes, on both sides. `rounds` > 1 times the
two sides alternately (ours, peer, ours, peer, ...) and reports the median of each figure, the ratios being
the median of the per-round ratios (each round's two sides measured minutes apart, not a whole run apart).

Our frozen ResNet-10 runs once per frame when the frame enters replay (cached features), never in an
update; LeRobot runs it on every sampled batch. So ours also reports the insert cost per env step
(one row = one frame per camera, measured while filling) and the rate with that cost spread over the
`utd` updates each env step pays for: 1 / (update_s + insert_s_per_env_step / utd).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from robot_rl.bench.peer import check_peer_python, run_peer_script
from robot_rl.bench.timing import available_cores, progress, time_calls

GOAL_IMAGE_RATIO = 100.0  # DESIGN.md target: >= 100x LeRobot at the HIL-SERL image configuration
EPISODE_STEPS = 100  # synthetic episodes are this long (the pick-cube tasks' length)


@dataclass(frozen=True)
class LearnerBenchSpec:
    """Shapes and settings both learners are built with (the peer script reads this as JSON)."""

    name: str  # "image" (HIL-SERL) or "state"
    batch_size: int = 256  # transitions per critic update
    state_dim: int = 18  # proprioception
    object_state_dim: int = (
        0  # object state: ours appends it to the state vector, LeRobot gets observation.environment_state
    )
    cameras: tuple[str, ...] = ()  # one 128x128 RGB image per camera
    image_hw: tuple[int, int] = (128, 128)  # (H, W) of every camera
    n_critics: int = 2  # critic ensemble size (both members in every target)
    utd: int = 2  # critic updates per UTD step; the actor and temperature update once per UTD step
    continuous_action_dim: int = 3  # xyz deltas; the gripper is the 3-way discrete critic's, stored as one more dim
    discrete_gripper: bool = True  # 3-action grasp critic (close/stay/open), as in HIL-SERL
    freeze_encoder: bool = True  # ResNet-10 trunk frozen (random init: nothing is downloaded)
    latent_dim: int = 256  # per-input latent after the encoder (LeRobot's default)
    hidden_dims: tuple[int, ...] = (256, 256)  # actor and critic MLP widths (both sides' defaults)

    def to_json(self) -> str:
        return json.dumps(asdict(self))


SPECS = {
    "image": LearnerBenchSpec("image", cameras=("front", "wrist")),  # HIL-SERL: 2 cameras + 18-d state
    "state": LearnerBenchSpec("state", object_state_dim=10),  # 18-d state + 10-d object state
}


@dataclass
class LearnerBenchConfig:
    configs: tuple[str, ...] = ("image", "state")  # keys of SPECS to run
    updates: int = 120  # critic updates timed on our side (rounded up to whole UTD steps): ~15 s at the image config
    warmup_steps: int = 3  # untimed UTD steps on our side
    peer_updates: int = 2  # critic updates timed on the peer side (it runs at ~0.02-0.3 updates/s on CPU)
    peer_warmup_steps: int = 1  # untimed UTD steps on the peer side (torch.compile happens here)
    capacity: int = 500  # replay rows (both sides); small: the update cost does not depend on it
    device: str = "cpu"  # our learner's and the peer's torch device
    peer_python: str | None = None  # the peers venv's interpreter; None = ours only
    peer_torch_compile: bool = True  # LeRobot's SACConfig.use_torch_compile (its default: on)
    seed: int = 0
    rounds: int = 1  # ours then the peer, this many times alternately; the figures reported are the medians
    latent_dim: int | None = (
        None  # overrides every spec's latent_dim on both sides; None = the specs' (256, HIL-SERL's)
    )
    specs: dict[str, LearnerBenchSpec] = field(default_factory=lambda: dict(SPECS))  # name -> spec (tests shrink them)

    def __post_init__(self) -> None:
        unknown = [c for c in self.configs if c not in self.specs]
        if unknown or not self.configs:
            raise ValueError(f"configs={self.configs!r}; choose one or more of {tuple(self.specs)}")
        if self.updates < 1 or self.peer_updates < 1 or self.warmup_steps < 0 or self.peer_warmup_steps < 0:
            raise ValueError("updates and peer_updates must be >= 1, warm-up steps >= 0")
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        if self.capacity < 2 * EPISODE_STEPS:
            raise ValueError(f"capacity must be at least {2 * EPISODE_STEPS} rows, got {self.capacity}")
        if self.latent_dim is not None:
            if self.latent_dim < 1:
                raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
            self.specs = {name: replace(spec, latent_dim=self.latent_dim) for name, spec in self.specs.items()}
        if self.peer_python is not None:
            check_peer_python(self.peer_python)


@dataclass
class LearnerResult:
    config: str
    critic_updates_per_s: float  # ours, updates only
    critic_updates: int  # timed
    insert_s_per_env_step: float  # ours: writing one row (encoding its frames when the trunk is frozen)
    critic_updates_per_s_incl_insert: float  # ours, with the insert cost of 1/utd env step per update
    latent_dim: int  # per-input latent size both learners were built with
    device: str
    cores: int
    peer_critic_updates_per_s: float | None = None
    peer_torch_compile: bool | None = None
    ratio: float | None = None  # ours / peer, updates only
    ratio_incl_insert: float | None = None  # ours incl. insert / peer
    rounds: int = 1  # > 1: every figure above is the median over the rounds (see `per_round`)
    per_round: list[dict] | None = None  # with rounds > 1: each round's figures, in the order measured

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


_ROUND_FIELDS = (
    "critic_updates_per_s",
    "insert_s_per_env_step",
    "critic_updates_per_s_incl_insert",
    "peer_critic_updates_per_s",
    "ratio",
    "ratio_incl_insert",
)


def median_of_rounds(rounds: list[LearnerResult]) -> LearnerResult:
    """One result whose figures are the medians of `rounds` (one configuration), with each round kept in `per_round`."""
    if len(rounds) == 1:
        return rounds[0]
    per_round = [{f: getattr(r, f) for f in _ROUND_FIELDS if getattr(r, f) is not None} for r in rounds]
    medians = {
        f: statistics.median(vals)
        for f in _ROUND_FIELDS
        if len(vals := [getattr(r, f) for r in rounds if getattr(r, f) is not None]) == len(rounds)
    }
    return replace(
        rounds[0],
        **medians,
        critic_updates=sum(r.critic_updates for r in rounds),
        rounds=len(rounds),
        per_round=per_round,
    )


# --- our side ---------------------------------------------------------------------------------
def our_agent_config(spec: LearnerBenchSpec):
    from robot_rl.agents import AgentConfig

    return AgentConfig(
        hidden_dims=spec.hidden_dims,
        n_critics=spec.n_critics,
        critic_subsample=spec.n_critics,
        batch_size=spec.batch_size,
        utd_ratio=spec.utd,
        discrete_gripper=spec.discrete_gripper,
        encoder="resnet10" if spec.cameras else "none",
        encoder_weights=None,
        freeze_encoder=spec.freeze_encoder,
        latent_dim=spec.latent_dim,
    )


def our_spaces(spec: LearnerBenchSpec):
    import gymnasium as gym

    from robot_rl import keys

    boxes = {keys.STATE: gym.spaces.Box(-np.inf, np.inf, (spec.state_dim + spec.object_state_dim,), np.float32)}
    for cam in spec.cameras:
        boxes[keys.image_key(cam)] = gym.spaces.Box(0, 255, (*spec.image_hw, 3), np.uint8)
    action_dim = spec.continuous_action_dim + (1 if spec.discrete_gripper else 0)
    return gym.spaces.Dict(boxes), gym.spaces.Box(-1.0, 1.0, (action_dim,), np.float32)


def synthetic_episode(
    spec: LearnerBenchSpec, rng: np.random.Generator, steps: int = EPISODE_STEPS
) -> dict[str, np.ndarray]:
    """An episode-store-shaped episode of random data: row t = obs_t, action_t, reward_t, flags_t."""
    from robot_rl import keys
    from robot_rl.agents import GRIPPER_VALUES

    ep = {keys.STATE: rng.standard_normal((steps, spec.state_dim + spec.object_state_dim), dtype=np.float32)}
    for cam in spec.cameras:
        ep[keys.image_key(cam)] = rng.integers(0, 256, (steps, *spec.image_hw, 3), dtype=np.uint8)
    action = rng.uniform(-1, 1, (steps, spec.continuous_action_dim)).astype(np.float32)
    if spec.discrete_gripper:
        action = np.concatenate([action, rng.choice(GRIPPER_VALUES, (steps, 1)).astype(np.float32)], axis=1)
    ep[keys.ACTION] = action
    ep[keys.REWARD] = (rng.random(steps) < 0.1).astype(np.float32)
    ep[keys.TERMINATED] = np.zeros(steps, bool)
    ep[keys.TRUNCATED] = np.zeros(steps, bool)
    ep[keys.TRUNCATED][-1] = True
    return ep


def time_our_learner(spec: LearnerBenchSpec, cfg: LearnerBenchConfig) -> LearnerResult:
    import torch

    from robot_rl.agents import make_agent

    torch.manual_seed(cfg.seed)
    obs_space, action_space = our_spaces(spec)
    agent = make_agent(our_agent_config(spec), obs_space, action_space, device=cfg.device, seed=cfg.seed)
    replay = agent.make_replay(cfg.capacity, seed=cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    episodes = [synthetic_episode(spec, rng) for _ in range(cfg.capacity // EPISODE_STEPS)]
    progress(f"[ours] filling a {cfg.capacity}-row replay ({spec.name})")
    t0 = time.perf_counter()
    for ep in episodes:
        replay.add_episode(ep)
    insert_s = (time.perf_counter() - t0) / (len(episodes) * EPISODE_STEPS)

    steps = math.ceil(cfg.updates / spec.utd)
    timing = time_calls(
        lambda: agent.update_many(replay, spec.utd),
        calls=steps,
        warmup_calls=cfg.warmup_steps,
        label=f"[ours {spec.name}]",
    )
    update_s = timing.elapsed_s / (steps * spec.utd)
    return LearnerResult(
        config=spec.name,
        critic_updates_per_s=1.0 / update_s,
        critic_updates=steps * spec.utd,
        insert_s_per_env_step=insert_s,
        critic_updates_per_s_incl_insert=1.0 / (update_s + insert_s / spec.utd),
        latent_dim=spec.latent_dim,
        device=cfg.device,
        cores=available_cores(),
    )


# --- both sides -------------------------------------------------------------------------------
def run_learner_bench(cfg: LearnerBenchConfig) -> list[LearnerResult]:
    """Ours, then the peer, per configuration (`cfg.rounds` times alternately, medians reported).

    Torch's thread count is the caller's (the CLI sets all cores)."""
    results = []
    for name in cfg.configs:
        rounds = []
        for i in range(cfg.rounds):
            if cfg.rounds > 1:
                progress(f"--- {name}: round {i + 1}/{cfg.rounds}")
            rounds.append(_one_round(cfg.specs[name], cfg))
        results.append(median_of_rounds(rounds))
    return results


def _one_round(spec: LearnerBenchSpec, cfg: LearnerBenchConfig) -> LearnerResult:
    r = time_our_learner(spec, cfg)
    progress(
        f"[ours] {spec.name}: {r.critic_updates_per_s:.1f} critic updates/s "
        f"({r.critic_updates_per_s_incl_insert:.1f} incl. insert)"
    )
    if cfg.peer_python is not None:
        args = [
            "--spec",
            spec.to_json(),
            "--updates",
            str(cfg.peer_updates),
            "--warmup-steps",
            str(cfg.peer_warmup_steps),
            "--buffer-capacity",
            str(cfg.capacity),
            "--device",
            cfg.device,
            "--torch-compile",
            "on" if cfg.peer_torch_compile else "off",
            "--seed",
            str(cfg.seed),
        ]
        (peer,) = run_peer_script(cfg.peer_python, "peer_lerobot_sac.py", args)
        r.peer_critic_updates_per_s = peer["critic_updates_per_s"]
        r.peer_torch_compile = peer["torch_compile"]
        r.ratio = r.critic_updates_per_s / r.peer_critic_updates_per_s
        r.ratio_incl_insert = r.critic_updates_per_s_incl_insert / r.peer_critic_updates_per_s
    return r


def format_learner_table(results: list[LearnerResult], specs: dict[str, LearnerBenchSpec]) -> str:
    def row(label: str, f: dict) -> str:
        peer, ratio, ratio_i = (f.get(k) for k in ("peer_critic_updates_per_s", "ratio", "ratio_incl_insert"))
        return (
            f"{label:12} {f['critic_updates_per_s']:9.2f} {f['critic_updates_per_s_incl_insert']:12.2f} "
            + (f"{peer:9.3f}" if peer is not None else f"{'-':>9}")
            + (f" {ratio:8.1f}x" if ratio is not None else f" {'-':>9}")
            + (f" {ratio_i:12.1f}x" if ratio_i is not None else f" {'-':>13}")
        )

    lines = [
        f"bench learner: critic updates/s on {results[0].device}, {results[0].cores} CPU cores "
        "(shared machine: timings are noisy)",
        f"{'config':12} {'ours':>9} {'ours+insert':>12} {'LeRobot':>9} {'ratio':>9} {'ratio+insert':>13}",
    ]
    for r in results:
        for i, f in enumerate(r.per_round or []):
            lines.append(row(f"{r.config} #{i + 1}", f))
        lines.append(row(r.config if r.rounds == 1 else f"{r.config} median", asdict(r)))
    for r in results:
        s = specs[r.config]
        cams = f"{len(s.cameras)} cameras {s.image_hw[0]}x{s.image_hw[1]} + " if s.cameras else ""
        lines.append(
            f"  {r.config}: batch {s.batch_size}, {cams}{s.state_dim}-d state"
            f"{f' + {s.object_state_dim}-d object state' if s.object_state_dim else ''}, "
            f"{s.n_critics} critics, UTD {s.utd}, latent {s.latent_dim}"
            f"{', 3-way gripper critic' if s.discrete_gripper else ''}"
            f"{', frozen random-init ResNet-10' if s.cameras and s.freeze_encoder else ''}"
        )
    for r in results:
        if r.config == "image" and r.ratio is not None:
            verdict = "met" if r.ratio_incl_insert >= GOAL_IMAGE_RATIO else "NOT met"
            spread = ""
            if r.per_round:
                per = [f["ratio_incl_insert"] for f in r.per_round]
                spread = f", median of {r.rounds} rounds, {min(per):.1f}-{max(per):.1f}x"
            lines.append(
                f"goal ours >= {GOAL_IMAGE_RATIO:.0f}x LeRobot at the image config (incl. insert): "
                f"{verdict} ({r.ratio_incl_insert:.1f}x{spread})"
            )
    return "\n".join(lines)
