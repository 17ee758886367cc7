"""The live view of `robot-rl train --viz rerun`: the training loop's steps, episodes, learner status and
evaluations in the layout of `robot_rl.viz.rerun_log`, to `<run>/viz.rrd` (or a viewer at `--viz-connect`).

Row semantics are the store's: step t shows observation t (the cameras the action was chosen from), action t
(executed and proposed, and the base's with residual RL), and what followed it (reward, success, the reward
classifier's probability). `step` on the timeline is the run's env step, the row of `<run>/episodes` it is
stored at. `NoViz` stands in when the view is off, so the loop calls the same methods either way. Logging is
synchronous (about a millisecond a step with two 128 px cameras): the training loop has no deadline to keep.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl import keys
from robot_rl.viz import VIZ_MODES

VIZ_FILE = "viz.rrd"  # in the run directory


class NoViz:
    """The view when it is off: every call does nothing."""

    def start_episode(self, env_steps: int, episode: int) -> None: ...

    def step(self, env_steps: int, obs: Any, choice: Any, reward: float, info: Mapping[str, Any]) -> None: ...

    def end_episode(self, env_steps: int) -> None: ...

    def status(self, env_steps: int, metrics: Mapping[str, float]) -> None: ...

    def evaluation(self, env_steps: int, metrics: Mapping[str, float]) -> None: ...

    def close(self) -> None: ...


class TrainViz(NoViz):
    """Logs the loop's calls to a `RerunLog` (see the module docstring)."""

    def __init__(self, log: Any):
        self.log = log
        self._episode, self._length, self._return, self._success = 0, 0, 0.0, None
        self._last_eval_step: int | None = None

    def start_episode(self, env_steps: int, episode: int) -> None:
        self._episode, self._length, self._return, self._success = episode, 0, 0.0, None
        self.log.episode_start(env_steps, episode)

    def step(self, env_steps: int, obs: Any, choice: Any, reward: float, info: Mapping[str, Any]) -> None:
        """Step `env_steps` (the row being recorded): `obs` the action was chosen from, `choice` (the acting core's
        Choice: action, proposed, base_action, is_intervention), the reward and info that followed."""
        images = (
            {keys.camera_of(k): v for k, v in obs.items() if keys.is_image_key(k)} if isinstance(obs, Mapping) else {}
        )
        success = info.get("success")
        classifier = info.get("reward_classifier")
        self.log.step(
            env_steps,
            images=images,
            action=choice.action,
            policy_action=choice.proposed,
            base_action=choice.base_action,
            episode=self._episode,
            reward=float(reward),
            intervention=bool(choice.is_intervention),
            success=None if success is None else bool(np.asarray(success).any()),
            classifier_prob=classifier.get("prob") if isinstance(classifier, Mapping) else None,
        )
        self._length += 1
        self._return += float(reward)
        if success is not None:
            self._success = bool(self._success) or bool(np.asarray(success).any())

    def end_episode(self, env_steps: int) -> None:
        """After the episode's last step, `env_steps` being the row of that step."""
        self.log.episode_end(env_steps, self._episode, self._length, self._return, self._success)

    def status(self, env_steps: int, metrics: Mapping[str, float]) -> None:
        self.log.metrics(env_steps, "learner", metrics)

    def evaluation(self, env_steps: int, metrics: Mapping[str, float]) -> None:
        if env_steps != self._last_eval_step:  # the run's last evaluation may come twice (loop, then finish)
            self._last_eval_step = env_steps
            self.log.metrics(env_steps, "eval", metrics)

    def close(self) -> None:
        self.log.close()


def make_train_viz(
    mode: str, connect: str | None, run_dir: Path, store_meta: Mapping[str, Any], cameras: Sequence[str]
) -> NoViz:
    """`TrainViz` to `viz_file(run_dir)`, or to the viewer at `connect`; `NoViz` for mode "none"."""
    if mode not in VIZ_MODES:
        raise ValueError(f"unknown viz mode {mode!r}; choose one of {list(VIZ_MODES)}")
    if mode == "none":
        return NoViz()
    from robot_rl.viz.rerun_log import RerunLog

    save = None if connect else viz_file(Path(run_dir))
    names = list(store_meta.get("action_layout") or [])
    return TrainViz(RerunLog.open(save, connect, names, cameras, training=True, name=Path(run_dir).name))


def for_run(cfg: Any, run: Any) -> NoViz:
    """The view `cfg.viz` / `cfg.viz_connect` ask for, of a `robot_rl.training.run.TrainRun`."""
    if cfg.viz == "none":
        return NoViz()
    from robot_rl.spaces import as_dict_space, image_keys

    cameras = [keys.camera_of(k) for k in image_keys(as_dict_space(run.env.observation_space))]
    return make_train_viz(cfg.viz, cfg.viz_connect, run.run_dir, run.learner.store.meta, cameras)


def viz_file(run_dir: Path) -> Path:
    """`<run>/viz.rrd`; a resumed run keeps the earlier file and writes `viz-2.rrd`, `viz-3.rrd`, ... (an .rrd
    cannot be appended to; open the parts together: `rerun <run>/viz*.rrd`)."""
    path, n = run_dir / VIZ_FILE, 1
    while path.exists():
        n += 1
        path = run_dir / f"viz-{n}.rrd"
    return path
