"""gymnasium registration of the simulated tasks (entry points are resolved lazily)."""

from __future__ import annotations

import gymnasium as gym

# task name (as used by `--task`) -> gymnasium id
TASK_ENV_IDS = {
    "pick_cube": "robot_rl/PickCube-v0",
    "peg_insert": "robot_rl/PegInsert-v0",
}


def env_id_for_task(task: str) -> str:
    try:
        return TASK_ENV_IDS[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(TASK_ENV_IDS)}") from None


def _register() -> None:
    for task, env_id in TASK_ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point="robot_rl_sim.env:make_task_env", kwargs={"task": task})


_register()
