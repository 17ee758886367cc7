"""`robot-rl failures RUN`: replay a sim run's failed training episodes and say how each one ended.

The in-process loop resets training episode i with seed `seed + i` and stores every action the robot executed (the
simulated operator's included), and the MuJoCo cell is deterministic, so a fresh env reset with that seed and stepped
through the stored actions is the episode again, exactly (the replayed tool positions are checked against the stored
proprioception), now with the simulator's truth the store never held: where the goal ended relative to the tool and
how far a held peg was pushed into the hand. Each failure is put in one of three kinds:

- `far`: it ended with the goal at least `FAR_MM` off the tool's axis (the policy went somewhere else);
- `pushed`: near the goal, with the peg pushed at least `PUSHED_MM` into the hand (the tip met the fixture's rim or
  top; then the fingers meet the fixture before the tip is deep enough, and neither the policy nor an operator can
  finish the episode);
- `near`: the rest (hovering or stuck near the goal with the grasp intact).

Only for runs of `robot-rl train` on a sim task; the ROS actor's episodes have no recorded reset seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from robot_rl import keys
from robot_rl.data.store import EpisodeStore
from robot_rl.teleop.operator import LOST_SLIP_M
from robot_rl.training.env_factory import env_id_of, is_sim_task, make_env, use_sim_contact
from robot_rl.training.evaluation import episode_record, where_it_ended

FAR_MM = 10.0  # a failure that ended with the goal this far off the tool's axis went elsewhere
# a peg pushed this far into the hand cannot reach the success depth before the fingers land
PUSHED_MM = LOST_SLIP_M * 1e3
DIVERGED_MM = 0.5  # a replay whose tool strays this far from the stored one is not the same episode
KINDS = ("far", "pushed", "near")


def classify(goal_offset_mm: list[float], grasp_slip_mm: float | None) -> str:
    """The kind of a failure from where it ended (see the module docstring)."""
    lateral = float(np.hypot(*goal_offset_mm[:2]))
    if lateral >= FAR_MM:
        return "far"
    return "pushed" if grasp_slip_mm is not None and grasp_slip_mm >= PUSHED_MM else "near"


def failed_episodes(run_dir: Path, from_step: int = 0) -> list[dict]:
    """The run's failed training episodes that ended at or after env step `from_step` (records of
    train_episodes.jsonl), from the in-process loop (actor "local")."""
    log = Path(run_dir) / "train_episodes.jsonl"
    if not log.is_file():
        raise FileNotFoundError(f"{log} is missing: not a run directory of `robot-rl train`")
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    foreign = {r.get("actor_id") for r in records} - {"local"}
    if foreign:
        raise ValueError(
            f"{run_dir} holds episodes of actors {sorted(foreign)}: only episodes of the in-process loop "
            "(`robot-rl train`) can be replayed (the ROS actor does not record each episode's reset seed)"
        )
    return [r for r in records if not r["success"] and r["env_steps"] >= from_step]


def replay(env, seed: int, actions: np.ndarray, stored_tool_m: np.ndarray) -> dict:
    """Step `env`, reset with `seed`, through `actions`; how the episode ended and how far the replayed tool
    strayed from `stored_tool_m` (N, 3: the tool position after each step, as stored)."""
    env.reset(seed=seed)
    task = env.unwrapped.task
    info, strayed, ret = {}, 0.0, 0.0
    for t, action in enumerate(actions):
        _, reward, terminated, truncated, info = env.step(action)
        ret += float(reward)
        if t < len(stored_tool_m):
            strayed = max(strayed, float(np.abs(task.robot.controller.tool_pose()[0] - stored_tool_m[t]).max()))
        if terminated or truncated:
            break
    record = episode_record(seed, bool(info["success"]), t + 1, ret, info)
    record["kind"] = classify(record["goal_offset_mm"], record.get("grasp_slip_mm"))
    record["replay_strayed_mm"] = round(strayed * 1e3, 3)
    return record


def replay_failures(run_dir: Path, from_step: int = 0) -> list[dict]:
    """Replay every failed training episode of a sim run from `from_step` on (see the module docstring): one record
    per episode with its index, env step, operator steps and `replay` fields."""
    from robot_rl.training.config import TrainConfig

    run_dir = Path(run_dir)
    cfg = TrainConfig.from_json(run_dir / "train_config.json")
    use_sim_contact(cfg.sim_contact)  # the physics the run trained on: else no replay is the same episode
    env_id = env_id_of(cfg.task, cfg.env_id)
    if not is_sim_task(env_id):
        raise ValueError(f"{run_dir} trained on {env_id}: only sim task runs can be replayed with the sim's truth")
    failures = failed_episodes(run_dir, from_step)
    out: list[dict] = []
    if not failures:
        return out
    store = EpisodeStore.open(run_dir / "episodes")
    env = make_env(env_id, "state", max_episode_steps=cfg.max_episode_steps)
    try:
        for r in failures:
            episode = store.get_episode(int(r["index"]))
            tool_after = episode[keys.STATE][1:, :3]  # the stored proprioception starts with the tool position
            record = replay(env, cfg.seed + int(r["index"]), episode[keys.ACTION], tool_after)
            out.append(
                {"index": r["index"], "env_steps": r["env_steps"], "interventions": r["interventions"], **record}
            )
    finally:
        env.close()
        store.close()
    return out


def format_failure(record: dict) -> str:
    """One line per replayed failure."""
    line = (
        f"episode {record['index']} (seed {record['seed']}, ended at env step {record['env_steps']}): "
        f"{record['kind']}, {record['length']} steps ({record['interventions']} by the operator)"
    ) + where_it_ended(record)
    if record["success"] or record["replay_strayed_mm"] > DIVERGED_MM:
        line += f" [replay differs: tool {record['replay_strayed_mm']:.2f} mm off, success {record['success']}]"
    return line


def summary(records: list[dict], from_step: int) -> str:
    """The count per kind, and the operator's steps in them."""
    counts = {k: sum(r["kind"] == k for r in records) for k in KINDS}
    steps = sum(r["length"] for r in records)
    driven = sum(r["interventions"] for r in records)
    diverged = sum(r["success"] or r["replay_strayed_mm"] > DIVERGED_MM for r in records)
    line = f"{len(records)} failed training episodes from env step {from_step}: " + ", ".join(
        f"{k} {counts[k]}" for k in KINDS
    )
    line += f"; {steps} steps, {driven} driven by the operator"
    if diverged:
        line += f"; {diverged} replays differ from the stored episode (run from another version of the sim?)"
    return line
