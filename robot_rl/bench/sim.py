"""`robot-rl bench sim`: env steps/s of our PickCube against gym-hil's PandaPickCubeBase-v0, in one run.

Both sides run the same loop (`timing.time_env_steps`): uniformly random actions, a reset whenever an
episode ends (each env's own length: 100 steps for both), warm-up excluded. Ours runs in this process;
gym-hil runs in the peer's Python (`peer_gym_hil.py`) right after, on the same cores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from robot_rl.bench.peer import check_peer_python, run_peer_script
from robot_rl.bench.timing import available_cores, progress, time_env_steps

OUR_ENV_ID = "robot_rl/PickCube-v0"
PEER_ENV_ID = "gym_hil/PandaPickCubeBase-v0"
OBS_MODES = ("pixels", "state")  # ours: 2 cameras 128x128 + 18-d state, or 18-d state + object state
PEER_IMAGE_OBS = {"pixels": True, "state": False}  # gym-hil's image_obs flag for each of our modes
GOAL_PIXELS_RATIO = 50.0  # issue goal: ours pixels >= 50x gym-hil pixels


@dataclass
class SimBenchConfig:
    steps: int = 1000  # timed env steps per mode on our side (10 episodes of 100)
    warmup_steps: int = 20  # untimed steps before each timing (renderer start-up, caches)
    peer_steps: int = 100  # timed env steps per mode on the peer side (gym-hil pixels runs at ~1-3 steps/s)
    peer_python: str | None = None  # the peers venv's interpreter; None = ours only
    obs_modes: tuple[str, ...] = OBS_MODES  # which of OBS_MODES to time
    seed: int = 0  # seeds the action sampler and the first reset

    def __post_init__(self) -> None:
        unknown = [m for m in self.obs_modes if m not in OBS_MODES]
        if unknown or not self.obs_modes:
            raise ValueError(f"--obs-mode {' '.join(self.obs_modes)!r}: choose one or more of {OBS_MODES}")
        for name, least in (("steps", 1), ("peer_steps", 1), ("warmup_steps", 0)):  # named as `bench sim`'s options
            if getattr(self, name) < least:
                raise ValueError(f"--{name.replace('_', '-')} must be >= {least}, got {getattr(self, name)}")
        if self.peer_python is not None:
            check_peer_python(self.peer_python)


@dataclass
class SimResult:
    env: str
    obs_mode: str  # "pixels" | "state"
    steps_per_s: float  # ours
    steps: int  # timed steps (ours)
    episodes: int  # episodes those steps spanned (each paid one reset)
    cores: int  # CPU cores available to the run
    peer_env: str | None = None
    peer_steps_per_s: float | None = None
    ratio: float | None = None  # ours / peer

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def time_our_env(obs_mode: str, steps: int, warmup_steps: int, seed: int):
    import gymnasium as gym

    import robot_rl.envs  # noqa: F401  (registers robot_rl/ ids)

    env = gym.make(OUR_ENV_ID, obs_mode=obs_mode)
    try:
        return time_env_steps(env, steps=steps, warmup_steps=warmup_steps, seed=seed)
    finally:
        env.close()


def run_sim_bench(cfg: SimBenchConfig) -> list[SimResult]:
    results = []
    for mode in cfg.obs_modes:
        progress(f"[ours] {OUR_ENV_ID} obs_mode={mode}: {cfg.steps} steps after {cfg.warmup_steps} warm-up")
        t = time_our_env(mode, cfg.steps, cfg.warmup_steps, cfg.seed)
        results.append(SimResult(OUR_ENV_ID, mode, t.steps_per_s, t.steps, t.episodes, available_cores()))
        progress(f"[ours] {mode}: {t.steps_per_s:.1f} steps/s")
    if cfg.peer_python is None:
        return results

    flags = ["true" if PEER_IMAGE_OBS[m] else "false" for m in cfg.obs_modes]
    args = [
        "--steps",
        str(cfg.peer_steps),
        "--warmup-steps",
        str(cfg.warmup_steps),
        "--seed",
        str(cfg.seed),
        "--image-obs",
        *flags,
    ]
    peer = {bool(r["image_obs"]): r for r in run_peer_script(cfg.peer_python, "peer_gym_hil.py", args)}
    for r in results:
        p = peer[PEER_IMAGE_OBS[r.obs_mode]]
        r.peer_env, r.peer_steps_per_s = p["env"], p["steps_per_s"]
        r.ratio = r.steps_per_s / r.peer_steps_per_s
    return results


def format_sim_table(results: list[SimResult]) -> str:
    lines = [
        f"bench sim: env steps/s, random actions, resets included, {results[0].cores} CPU cores "
        "(shared machine: timings are noisy)",
        f"{'env':24} {'obs_mode':8} {'ours':>10} {'peer env':30} {'peer':>9} {'ratio':>9}",
    ]
    for r in results:
        peer = f"{r.peer_steps_per_s:9.2f}" if r.peer_steps_per_s is not None else f"{'-':>9}"
        ratio = f"{r.ratio:8.1f}x" if r.ratio is not None else f"{'-':>9}"
        lines.append(f"{r.env:24} {r.obs_mode:8} {r.steps_per_s:10.1f} {r.peer_env or '-':30} {peer} {ratio}")
    for r in results:
        if r.obs_mode == "pixels" and r.ratio is not None:
            verdict = "met" if r.ratio >= GOAL_PIXELS_RATIO else "NOT met"
            lines.append(f"goal ours pixels >= {GOAL_PIXELS_RATIO:.0f}x gym-hil pixels: {verdict} ({r.ratio:.1f}x)")
    return "\n".join(lines)
