"""`robot-rl bench learning`: a multi-seed learning benchmark, every (variant, seed) its own process.

A variant is a name plus `robot-rl train` options (`--variant residual="--base-policy runs/bc5"`); every variant
runs for every seed with the same task, observation mode, step budget and evaluation schedule. Runs go to
`<out>/<variant>/seed_<S>` as ordinary training runs (so `robot-rl eval`, `compare` and `--resume` work on them),
each with one torch thread, as many at once as `--jobs` (default: the machine's cores, as many as fit in the
memory available: `robot_rl.bench.learning_memory`). The grid is resumable:
run the same command again after a stop and finished runs are kept, runs with a checkpoint continue from it
(`--resume`), and runs killed before their first checkpoint start again. When every run is done the report
(`robot_rl.bench.learning_report`) is written: `results.md` (per-seed first env step at the threshold, median and
spread per variant, no-collapse check, wall-clock, operator share), `results.json` and `results.png`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from robot_rl.errors import UsageError

RUN_LOG = "train.log"  # each run's stdout and stderr, beside (not inside) its run directory


@dataclass(frozen=True)
class Variant:
    name: str  # directory name and label
    train_args: tuple[str, ...] = ()  # extra `robot-rl train` options

    @classmethod
    def parse(cls, text: str) -> Variant:
        """`NAME` or `NAME=OPTIONS` (options as on the command line, e.g. `op=--operator --utd 4`)."""
        name, _, options = text.partition("=")
        name = name.strip()
        if not name or not all(c.isalnum() or c in "-_." for c in name):
            raise UsageError(
                f"variant name {name!r} must be non-empty letters, digits, '-', '_' or '.' "
                '(write NAME or NAME="--option value ...")'
            )
        try:
            args = tuple(shlex.split(options))
        except ValueError as e:
            raise UsageError(f"variant {name!r}: cannot split its options {options!r}: {e}") from None
        owned = sorted(a for a in args if a.split("=")[0] in _GRID_OPTIONS)
        if owned:
            raise UsageError(
                f"variant {name!r} sets {', '.join(owned)}, which the benchmark sets for every run; "
                "give them to `bench learning` itself"
            )
        return cls(name, args)


# Options the grid sets for every run; a variant may not set them.
_GRID_OPTIONS = {
    "--task",
    "--env-id",
    "--obs",
    "--steps",
    "--seed",
    "--out",
    "--resume",
    "--threads",
    "--eval-every",
    "--eval-episodes",
}


@dataclass
class LearningBenchConfig:
    out: Path  # the grid's directory
    task: str = "pick_cube"  # sim task
    obs: str = "state"  # state or pixels
    variants: list[Variant] = field(default_factory=lambda: [Variant("default")])
    seeds: list[int] = field(default_factory=lambda: list(range(5)))
    steps: int = 10_000  # env steps per run
    eval_every: int = 1_000  # env steps between evaluations
    eval_episodes: int = 10  # deterministic episodes per evaluation
    threshold: float = 0.9  # success rate whose first env step is reported
    jobs: int = 0  # runs at once (0: one per CPU core, as many as fit in memory)
    train_args: tuple[str, ...] = ()  # options given to every run (before the variant's)

    def __post_init__(self) -> None:
        for name in ("steps", "eval_every", "eval_episodes"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.threshold <= 1:
            raise UsageError(f"--threshold must be in (0, 1], got {self.threshold}")
        if self.jobs < 0:
            raise UsageError(f"--jobs must be >= 0 (0: one per core), got {self.jobs}")
        if not self.seeds:
            raise UsageError("no seeds: give --seeds N (seeds 0..N-1) or --seed-list S ...")
        bad = sorted(
            {s for s in self.seeds if not 0 <= s <= 2**32 - 1} | {s for s in self.seeds if self.seeds.count(s) > 1}
        )
        if bad:
            raise UsageError(f"--seed-list must hold distinct seeds in [0, 2**32 - 1]; got {bad} among {self.seeds}")
        from robot_rl.cli.checks import check_task

        check_task(self.task, env_id_hint=False)  # every run would fail on it, after the grid dir was made
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise UsageError(f"variant names must differ, got {names}")

    def command(self) -> str:
        """The command line that reproduces this grid (and resumes it)."""
        seeds = (
            ["--seeds", str(len(self.seeds))]
            if self.seeds == list(range(len(self.seeds)))
            else ["--seed-list", *map(str, self.seeds)]
        )
        args = [
            "robot-rl",
            "bench",
            "learning",
            "--task",
            self.task,
            "--obs",
            self.obs,
            *seeds,
            "--steps",
            str(self.steps),
            "--eval-every",
            str(self.eval_every),
            "--eval-episodes",
            str(self.eval_episodes),
        ]
        if self.threshold != 0.9:
            args += ["--threshold", f"{self.threshold:g}"]
        if self.train_args:
            args += [f"--train-args={shlex.join(self.train_args)}"]  # "=": the value starts with "--"
        for v in self.variants:
            args += ["--variant", v.name + (f"={shlex.join(v.train_args)}" if v.train_args else "")]
        return shlex.join([*args, "--out", str(self.out)])

    def jobs_and_why(self) -> tuple[int, str]:
        """(runs at once, one line saying why): `--jobs`, or with 0 one per core, as many as fit in the memory
        available now (robot_rl.bench.learning_memory)."""
        from robot_rl.bench import learning_memory as mem

        cores = max(1, len(os.sched_getaffinity(0)))
        per_run, how = max(
            mem.run_bytes(self.task, self.obs, self.steps, (*self.train_args, *v.train_args)) for v in self.variants
        )
        available = mem.available_bytes()
        fit = mem.memory_jobs(per_run, available)
        jobs = self.jobs or min(cores, fit or cores)
        return jobs, mem.jobs_line(cores, jobs, fit, per_run, how, available)


@dataclass
class Run:
    variant: Variant
    seed: int
    run_dir: Path

    @property
    def label(self) -> str:
        return f"{self.variant.name}/seed_{self.seed}"

    @property
    def log_path(self) -> Path:
        return self.run_dir.with_name(f"{self.run_dir.name}.{RUN_LOG}")


GRID_JSON = "grid.json"  # what every run of the grid shares; a later command on the same --out must agree


def check_grid(cfg: LearningBenchConfig, report_only: bool = False) -> None:
    """Record the grid's settings in <out>/grid.json, or refuse a command that disagrees with the recorded ones
    (or, `report_only`, a directory that holds no grid: nothing is written there).

    Steps, seeds and new variants may change between commands (runs are extended or added); the settings every run
    was started with may not, or the seeds' curves would no longer be comparable.
    """
    import json

    shared = {
        "task": cfg.task,
        "obs": cfg.obs,
        "eval_every": cfg.eval_every,
        "eval_episodes": cfg.eval_episodes,
        "train_args": list(cfg.train_args),
    }
    variants = {v.name: list(v.train_args) for v in cfg.variants}
    path = cfg.out / GRID_JSON
    if report_only and not path.is_file():
        raise UsageError(f"--report-only: {cfg.out} holds no grid ({GRID_JSON}); run the grid there first")
    if path.is_file():
        try:
            recorded = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise UsageError(
                f"{path} is unreadable ({e}); remove it only if the runs under {cfg.out} match this command"
            ) from None
        for key, value in shared.items():
            if recorded.get(key) != value:
                raise UsageError(
                    f"{cfg.out} holds a grid with {key} = {recorded.get(key)!r}, this command has "
                    f"{value!r}; use another --out or the recorded setting"
                )
        for name, args in variants.items():
            if name in recorded.get("variants", {}) and recorded["variants"][name] != args:
                raise UsageError(
                    f"variant {name!r} in {cfg.out} ran with {shlex.join(recorded['variants'][name])!r}, "
                    f"this command gives {shlex.join(args)!r}; give it another name"
                )
        variants = {**recorded.get("variants", {}), **variants}
    cfg.out.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**shared, "variants": variants}, indent=1) + "\n")
    tmp.replace(path)


def recorded_variants(out: Path) -> list[str]:
    """The variants a grid in `out` ran, as `--variant` texts (empty when there is no readable grid there)."""
    import json

    try:
        recorded = json.loads((Path(out) / GRID_JSON).read_text())["variants"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [name + (f"={shlex.join(args)}" if args else "") for name, args in recorded.items()]


def plan(cfg: LearningBenchConfig) -> list[Run]:
    # seed-major: a grid stopped halfway has every variant on the same seeds, so they can be compared
    return [Run(v, s, cfg.out / v.name / f"seed_{s}") for s in cfg.seeds for v in cfg.variants]


def env_steps_done(run_dir: Path) -> int:
    """Env steps of the run's last evaluation (0 when it has none)."""
    from robot_rl.training.curves import read_evals

    if not (run_dir / "eval.jsonl").is_file():
        return 0
    evals = read_evals(run_dir)
    return int(evals[-1]["env_steps"]) if evals else 0


def _has_checkpoint(run_dir: Path) -> bool:
    return any((run_dir / "checkpoints").glob("step_*"))


def train_command(cfg: LearningBenchConfig, run: Run) -> list[str]:
    """The `robot-rl train` command line that starts or continues this run."""
    exe = [sys.executable, "-m", "robot_rl", "train"]
    common = ["--steps", str(cfg.steps), "--threads", "1", "--no-progress-bar"]
    if _has_checkpoint(run.run_dir):
        return [*exe, "--resume", str(run.run_dir), *common]
    return [
        *exe,
        "--task",
        cfg.task,
        "--obs",
        cfg.obs,
        "--seed",
        str(run.seed),
        "--out",
        str(run.run_dir),
        "--eval-every",
        str(cfg.eval_every),
        "--eval-episodes",
        str(cfg.eval_episodes),
        "--no-wandb",
        "--video-episodes",
        "0",
        *common,
        *cfg.train_args,
        *run.variant.train_args,
    ]


def _start(cfg: LearningBenchConfig, run: Run) -> subprocess.Popen:
    if run.run_dir.exists() and not _has_checkpoint(run.run_dir):
        shutil.rmtree(run.run_dir)  # killed before its first checkpoint: nothing to keep, start it again
    run.run_dir.parent.mkdir(parents=True, exist_ok=True)
    cmd = train_command(cfg, run)
    log = open(run.log_path, "a")
    log.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(cmd)}\n")
    log.flush()
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", WANDB_MODE=os.environ.get("WANDB_MODE", "offline"))
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)


def exit_reason(returncode: int) -> str:
    """Why a run stopped, in words: a killed run names its signal (SIGKILL: most often the kernel's out-of-memory
    killer) and that the same command resumes it."""
    if returncode >= 0:
        return f"failed (exit {returncode})"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    oom = " -- most often the kernel's out-of-memory killer (dmesg says); fewer --jobs" if name == "SIGKILL" else ""
    return f"was killed by {name}{oom}; the same command resumes it from its last checkpoint"


def run_grid(cfg: LearningBenchConfig, poll_s: float = 2.0) -> list[Run]:
    """Run every unfinished (variant, seed), as many at once as `cfg.jobs_and_why` says (cores and memory);
    returns the runs that failed."""
    from tqdm import tqdm

    check_grid(cfg)
    runs = plan(cfg)
    pending = [r for r in runs if env_steps_done(r.run_dir) < cfg.steps]
    done_before = len(runs) - len(pending)
    if done_before:
        print(
            f"bench learning: {done_before} of {len(runs)} runs already finished in {cfg.out}; "
            f"running the other {len(pending)}",
            file=sys.stderr,
        )
    active: dict[str, tuple[Run, subprocess.Popen]] = {}
    failed: list[Run] = []
    if not pending:
        return []
    n_jobs, why = cfg.jobs_and_why()
    print(why, file=sys.stderr)
    bar = tqdm(
        total=len(runs) * cfg.steps,
        unit="step",
        desc="bench learning",
        dynamic_ncols=True,
        initial=sum(min(env_steps_done(r.run_dir), cfg.steps) for r in runs),
    )
    try:
        while pending or active:
            while pending and len(active) < n_jobs:
                run = pending.pop(0)
                active[run.label] = (run, _start(cfg, run))
            time.sleep(poll_s)
            for label, (run, proc) in list(active.items()):
                if proc.poll() is None:
                    continue
                del active[label]
                if proc.returncode != 0 or env_steps_done(run.run_dir) < cfg.steps:
                    failed.append(run)
                    tqdm.write(f"bench learning: {label} {exit_reason(proc.returncode)}; its log: {run.log_path}")
            bar.n = sum(min(env_steps_done(r.run_dir), cfg.steps) for r in runs)
            bar.set_postfix_str(f"running {len(active)}, queued {len(pending)}, failed {len(failed)}")
            bar.refresh()
    except KeyboardInterrupt:
        for _, proc in active.values():
            proc.terminate()
        for _, proc in active.values():
            proc.wait()
        raise
    finally:
        bar.close()
    return failed
