"""Serving a trained classifier: timed batched inference, and a gymnasium wrapper that replaces the env's reward.

    predictor = RewardPredictor.load("runs/reward")           # or any directory `robot-rl reward train` wrote
    p = predictor.probs({"image_front": img, "image_wrist": img2})   # (B,) or a single frame -> (1,)
    env = ClassifierReward(make_task_env("pick_cube", obs_mode="pixels", terminate_on_success=False), predictor)

The wrapper's reward is 1.0 when the classifier says success (probability >= threshold, and the optional
state check holds), else 0.0; with `terminate_on_success` the episode ends there. The env's own reward and
termination are dropped (in the sim both come from ground-truth success). Ground truth, when the env reports
it (`info["success"]`), is kept in info and compared: info["reward_classifier"] holds this step's probability
and decision, and counts of false positives / negatives so far (per episode and in total).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from robot_rl import keys
from robot_rl.reward.classifier import SuccessClassifier, load_classifier

StateCheck = Callable[[Any], bool]


class RewardPredictor:
    """A loaded classifier with its threshold; times every call (`latencies_ms`)."""

    def __init__(self, model: SuccessClassifier, threshold: float, device: str = "cpu"):
        self.model = model.to(device).eval()
        self.threshold = float(threshold)
        self.device = device
        self.image_keys = model.cfg.image_keys
        self.latencies_ms: list[float] = []

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", threshold: float | None = None) -> RewardPredictor:
        model, saved = load_classifier(path, device)
        return cls(model, saved.threshold if threshold is None else threshold, device)

    @torch.inference_mode()
    def probs(self, images: dict[str, np.ndarray]) -> np.ndarray:
        """{image_<cam>: uint8 (H, W, 3) or (B, H, W, 3)} -> success probabilities (B,)."""
        t0 = time.perf_counter()
        batch = {}
        for key in self.image_keys:
            if key not in images:
                raise KeyError(
                    f"the classifier reads {list(self.image_keys)}; missing {key!r} (given {sorted(images)})"
                )
            x = torch.from_numpy(np.ascontiguousarray(images[key]))
            batch[key] = (x[None] if x.dim() == 3 else x).to(self.device)
        out = torch.sigmoid(self.model(batch)).cpu().numpy()
        self.latencies_ms.append(1e3 * (time.perf_counter() - t0))
        return out

    def success(self, images: dict[str, np.ndarray]) -> tuple[bool, float]:
        """One frame -> (success, probability)."""
        p = float(self.probs(images)[0])
        return p >= self.threshold, p


def latency_stats(latencies_ms: list[float]) -> dict[str, float]:
    a = np.asarray(latencies_ms, np.float64)
    return {
        "n": len(a),
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
        "mean_ms": float(a.mean()),
    }


def time_inference(
    predictor: RewardPredictor, images: dict[str, np.ndarray], batch_size: int = 1, n: int = 200, warmup: int = 10
) -> dict[str, float]:
    """Latency of `n` calls on batches of `batch_size` frames cycled from `images` ({key: (N, H, W, 3)})."""
    total = len(next(iter(images.values())))
    predictor.latencies_ms.clear()
    for i in range(warmup + n):
        rows = np.arange(i * batch_size, (i + 1) * batch_size) % total
        predictor.probs({k: v[rows] for k, v in images.items()})
    stats = latency_stats(predictor.latencies_ms[warmup:])
    return stats | {"batch_size": batch_size, "threads": torch.get_num_threads()}


def gripper_width_below(max_width_m: float, index: int = 10) -> StateCheck:
    """A state check: the gripper width (the sim's proprio field 10, `gripper_width`) is below `max_width_m`."""

    def check(obs: Any) -> bool:
        state = obs[keys.STATE] if isinstance(obs, dict) else obs
        return float(np.asarray(state)[index]) < max_width_m

    return check


class ClassifierReward(gym.Wrapper):
    """Reward (and optionally termination) from a success classifier instead of the env (see the module docstring)."""

    def __init__(
        self,
        env: gym.Env,
        predictor: RewardPredictor,
        terminate_on_success: bool = True,
        state_check: StateCheck | None = None,
    ):
        super().__init__(env)
        self.predictor = predictor
        self.terminate_on_success = terminate_on_success
        self.state_check = state_check
        self.totals = {"steps": 0, "predicted": 0, "true": 0, "false_positives": 0, "false_negatives": 0}
        self._episode = dict(self.totals)

    def reset(self, **kw):
        obs, info = self.env.reset(**kw)
        self._episode = {k: 0 for k in self.totals}
        return obs, info

    def step(self, action):
        obs, _, _, truncated, info = self.env.step(action)  # the env's reward and termination are replaced
        if not isinstance(obs, dict):
            raise TypeError(
                f"ClassifierReward needs dict observations with {list(self.predictor.image_keys)}; "
                f"got {type(obs).__name__} (use obs_mode='pixels')"
            )
        prob = float(self.predictor.probs({k: obs[k] for k in self.predictor.image_keys})[0])
        predicted = prob >= self.predictor.threshold and (self.state_check is None or bool(self.state_check(obs)))
        truth = info.get("success")
        counts = {"steps": 1, "predicted": int(predicted)}
        if truth is not None:
            counts |= {
                "true": int(bool(truth)),
                "false_positives": int(predicted and not truth),
                "false_negatives": int(truth and not predicted),
            }
        for k, v in counts.items():
            self.totals[k] += v
            self._episode[k] += v
        info = dict(info)
        info["reward_classifier"] = {
            "prob": prob,
            "success": predicted,
            "ground_truth": truth,
            "episode": dict(self._episode),
            "total": dict(self.totals),
        }
        terminated = predicted and self.terminate_on_success
        return obs, float(predicted), terminated, truncated, info
