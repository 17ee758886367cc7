"""Behaviour cloning: fit a BCPolicy's action chunks to the demos of an episode store, then evaluate it in sim.

Sample t of an episode of length T: its observation and the chunk of actions t .. t + K - 1; steps past the end
of the episode are masked out of the loss (ACT). The loss (L1 or MSE; the flow kind's flow-matching MSE,
`robot_rl.bc.flow`) is averaged over the unmasked steps.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from robot_rl import keys
from robot_rl.bc.config import BCTrainConfig
from robot_rl.bc.policy import BCPolicy, make_bc_policy
from robot_rl.envs import TASK_ENV_IDS
from robot_rl.nets.obs_encoder import FrameFeatures
from robot_rl.replay.buffer import encode_chunk

BC_TRAIN_CONFIG = "bc_train_config.json"
BC_EVAL = "bc_eval.json"
EVAL_SEED_OFFSET = 1_000_000  # as robot-rl train: evaluation episode i resets with seed + EVAL_SEED_OFFSET + i


@dataclass
class ChunkDataset:
    """Every step of the demos as a BC sample."""

    obs: dict[str, torch.Tensor]  # per observation key (N, ...): states float32 (N, D), images uint8 (N, H, W, C)
    actions: torch.Tensor  # (N, K, A) float32: the actions of steps t .. t + K - 1 (the last one repeated past the end)
    mask: torch.Tensor  # (N, K) bool: the chunk step lies inside the episode

    def __len__(self) -> int:
        return int(self.actions.shape[0])


@dataclass
class BCResult:
    policy: BCPolicy  # the trained policy (eval mode)
    final_loss: float  # mean loss over the last 100 steps
    train_s: float  # seconds of training
    eval: dict[str, Any] | None  # evaluation metrics (success_rate, return_mean, ...) or None without one


def obs_keys_of(store) -> list[str]:
    """The observation keys of an episode store: everything but the step keys and capture times."""
    bookkeeping = (*keys.STEP_KEYS, *keys.OPTIONAL_STEP_KEYS)
    return [k for k in store.keys if k not in bookkeeping and not k.startswith(keys.T_CAPTURE)]


def obs_spec_of(store) -> dict[str, list[int]]:
    """{key: shape}: images (H, W, C) uint8, state vectors flattened to (D,)."""
    spec = {}
    for k in obs_keys_of(store):
        s = store.spec[k]
        is_image = s.dtype == np.uint8 and len(s.step_shape) == 3
        spec[k] = list(s.step_shape) if is_image else [int(np.prod(s.step_shape))]
    return spec


def chunk_dataset(store, obs_spec: dict[str, list[int]], chunk_size: int, max_episodes: int = 0) -> ChunkDataset:
    n_eps = store.n_episodes if max_episodes == 0 else min(max_episodes, store.n_episodes)
    if n_eps == 0:
        raise ValueError(f"the demo store {store.path} holds no episodes; record some with `robot-rl demos record`")
    obs: dict[str, list[np.ndarray]] = {k: [] for k in obs_spec}
    actions, masks = [], []
    for i in range(n_eps):
        ep = store.get_episode(i)
        a = np.asarray(ep[keys.ACTION], np.float32)  # (T, A)
        t = len(a)
        idx = np.arange(t)[:, None] + np.arange(chunk_size)[None, :]  # (T, K)
        masks.append(idx < t)
        actions.append(a[np.minimum(idx, t - 1)])
        for k, shape in obs_spec.items():
            obs[k].append(np.asarray(ep[k]).reshape(t, *shape))
    return ChunkDataset(
        obs={k: torch.as_tensor(np.concatenate(v)) for k, v in obs.items()},
        actions=torch.as_tensor(np.concatenate(actions)),
        mask=torch.as_tensor(np.concatenate(masks)),
    )


def task_of(meta: dict[str, Any], given: str | None) -> str | None:
    """The sim task to evaluate on: `given`, else the store's `task`, else the task of its `env_id`."""
    if given:
        if given not in TASK_ENV_IDS:
            raise ValueError(f"unknown task {given!r}; choose one of {sorted(TASK_ENV_IDS)}")
        return given
    if meta.get("task") in TASK_ENV_IDS:
        return meta["task"]
    by_id = {v: k for k, v in TASK_ENV_IDS.items()}
    return by_id.get(meta.get("env_id"))


def obs_mode_of(meta: dict[str, Any], obs_spec: dict[str, list[int]]) -> str:
    mode = meta.get("obs_mode") or meta.get("obs")
    if mode in ("state", "pixels"):
        return mode
    return "pixels" if any(len(s) == 3 for s in obs_spec.values()) else "state"


def fit(policy: BCPolicy, data: ChunkDataset, cfg: BCTrainConfig) -> list[float]:
    """`cfg.steps` AdamW steps on random batches; returns the loss of every step."""
    device = policy.device
    g = torch.Generator().manual_seed(cfg.seed)
    aug_g = torch.Generator(device).manual_seed(cfg.seed + 1)
    obs = {k: v.to(device) for k, v in data.obs.items()}
    actions, mask = data.actions.to(device), data.mask.to(device).float()
    states = [obs[k].float() for k in policy.encoder.state_keys]
    if states:
        flat = torch.cat(states, dim=-1)
        policy.set_normalization(flat.mean(0), flat.std(0, unbiased=False))
    cached = (
        cache_trunk_features(policy, obs, cfg.feature_cache_augs, cfg.seed + 2) if policy.encoder.freeze_trunk else {}
    )
    obs = {k: v for k, v in obs.items() if k not in cached}
    opt = torch.optim.AdamW(
        [p for p in policy.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps, eta_min=0.1 * cfg.lr)
    policy.train()
    losses: list[float] = []
    bar = tqdm(
        range(cfg.steps),
        desc="bc train",
        unit="step",
        disable=not cfg.progress_bar,
        dynamic_ncols=True,
        mininterval=0.5,
    )
    for step in bar:
        idx = torch.randint(0, len(data), (cfg.batch_size,), generator=g).to(device)
        batch = {k: v[idx] for k, v in obs.items()}
        if cached:
            view = torch.randint(0, cfg.feature_cache_augs, (cfg.batch_size,), generator=g).to(device)
            batch.update({k: f[idx, view].float() for k, f in cached.items()})
        batch = policy.encoder.augment(batch, aug_g)  # shifts uint8 images; cached features are already shifted
        loss = policy.chunk_loss(batch, actions[idx], mask[idx], cfg.loss, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if step % 100 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-100:]):.4f}", refresh=False)
    policy.eval()
    return losses


def cache_trunk_features(
    policy: BCPolicy, obs: dict[str, torch.Tensor], n_augs: int, seed: int, chunk: int | None = None
) -> dict[str, torch.Tensor]:
    """Per camera, the frozen trunk's features of `n_augs` shifted views of every demo frame (N, n_augs, C', h, w),
    computed once, so training runs only the necks and the head (as the RL learner's replay does). On the CPU that is
    the trunk's prepared pass (onnxruntime: ~5.5 against ~7 ms per 128x128 frame and view eager) over `chunk` frames
    per call, the replay's 16 (its memory arena then stays small); 256 on a GPU."""
    chunk = chunk or encode_chunk(policy.device)
    feats = FrameFeatures(policy.encoder, n_augs, torch.Generator(policy.device).manual_seed(seed))
    out = {}
    t0 = time.perf_counter()
    for key in policy.encoder.image_keys:
        frames = obs[key]
        out[key] = torch.cat([feats(key, frames[i : i + chunk]) for i in range(0, len(frames), chunk)])
    n = len(next(iter(out.values()))) if out else 0
    print(
        f"[bc] frozen {policy.cfg.encoder} trunk: cached {n_augs} views of {n} frames x {len(out)} cameras "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    return out


def evaluate_base(policy, task: str, obs_mode: str, episodes: int, seed: int = 0, max_episode_steps: int | None = None):
    """Success rate and returns of a BasePolicy on a sim task (the sim is imported here, not at module import); a
    base whose declared layout does not fit the env is refused (BasePolicyError)."""
    from robot_rl.bc.base import check_layout
    from robot_rl.spaces import as_dict_space, obs_spec
    from robot_rl.training.env_factory import make_env
    from robot_rl.training.evaluation import evaluate

    env = make_env(TASK_ENV_IDS[task], obs_mode, max_episode_steps=max_episode_steps)
    try:
        check_layout(
            policy,
            obs_spec(as_dict_space(env.observation_space)),
            int(np.prod(env.action_space.shape)),
            f"(evaluated on {task}, {obs_mode})",
        )
        with torch.no_grad():
            return evaluate(policy.act, env, episodes, seed=seed + EVAL_SEED_OFFSET, reset=policy.reset)
    finally:
        env.close()


def train_bc(cfg: BCTrainConfig, store=None) -> BCResult:
    """Train on `cfg.demos` (or the given store), save to `cfg.out` (if set), evaluate on the sim task."""
    from robot_rl.data.store import EpisodeStore

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if store is None:
        if not cfg.demos:
            raise ValueError("give the demonstrations to clone: --demos DIR (an episode store)")
        store = EpisodeStore.open(cfg.demos, mode="r")
    meta = store.meta
    obs_spec = obs_spec_of(store)
    if not obs_spec:
        raise ValueError(f"the demo store {store.path} has no observation keys (keys: {list(store.keys)})")
    action_dim = int(store.spec[keys.ACTION].step_shape[0])
    task = task_of(meta, cfg.task)
    obs_mode = obs_mode_of(meta, obs_spec)
    torch.manual_seed(cfg.seed)
    data = chunk_dataset(store, obs_spec, cfg.policy.chunk_size, cfg.max_episodes)
    n_eps = store.n_episodes if cfg.max_episodes == 0 else min(cfg.max_episodes, store.n_episodes)
    policy_meta = {
        "task": task,
        "obs_mode": obs_mode,
        "demos": str(store.path),
        "demo_episodes": n_eps,
        "demo_steps": len(data),
    }
    policy = make_bc_policy(cfg.policy, obs_spec, action_dim, policy_meta).to(cfg.device)
    print(
        f"[bc] cloning {n_eps} episodes ({len(data)} steps) of {store.path} ({cfg.policy.kind}): obs {obs_spec}, "
        f"encoder {policy.cfg.encoder}{' (frozen)' if policy.encoder.freeze_trunk else ''}, "
        f"chunks of {cfg.policy.chunk_size} x {action_dim}, {cfg.steps} steps"
    )
    t0 = time.perf_counter()
    losses = fit(policy, data, cfg)
    train_s = time.perf_counter() - t0
    final_loss = float(np.mean(losses[-100:]))
    out = Path(cfg.out) if cfg.out else None
    if out is not None:
        policy.save(out)
        (out / BC_TRAIN_CONFIG).write_text(json.dumps(cfg.to_dict(), indent=2))
    loss_name = "flow-matching (MSE)" if cfg.policy.kind == "flow" else cfg.loss
    print(f"[bc] trained in {train_s:.1f} s, final {loss_name} loss {final_loss:.4f}" + (f" -> {out}" if out else ""))
    metrics = None
    if cfg.eval_episodes and task is None:
        print("[bc] no evaluation: the demo store names no sim task; pass --task to evaluate")
    elif cfg.eval_episodes:
        result = evaluate_base(policy, task, obs_mode, cfg.eval_episodes, seed=cfg.seed)
        metrics = {"task": task, "obs_mode": obs_mode, **result.metrics()}
        if out is not None:
            (out / BC_EVAL).write_text(json.dumps(metrics, indent=2))
        print(f"[bc] eval on {task} ({obs_mode}): " + eval_line(metrics))
    return BCResult(policy, final_loss, train_s, metrics)


def eval_line(m: dict[str, Any]) -> str:
    line = f"return {m['return_mean']:.2f}, length {m['length_mean']:.1f}, {m['eval_episodes']} episodes"
    if m.get("success_rate") is not None:
        line = f"success rate {m['success_rate']:.2f} ({m['success_rate']:.0%}), " + line
    return line
