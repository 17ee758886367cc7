"""The behaviour-cloned policy: observation encoder + MLP head predicting a chunk of K actions.

`BCPolicy` is the `mlp` kind; `robot_rl.bc.flow.FlowBCPolicy` (the `flow` kind) subclasses it and replaces only the
head (`make_head`), the loss (`chunk_loss`) and the prediction; `BCPolicy.load` / `from_bytes` open either kind.

    policy = BCPolicy(BCPolicyConfig(chunk_size=4), obs_spec, action_dim=4)
    policy.reset()                      # at every episode start
    action = policy.act(obs)            # (A,) in [-1, 1]; one chunk prediction per step with temporal ensembling

State inputs are normalised with the demos' mean and std (buffers, saved with the weights). The encoder is the
learner's `ObsEncoder` (state vectors as they are, one conv or ResNet-10 latent per camera). Saved like `Policy`:
safetensors weights + a JSON config, never pickle.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from robot_rl.agents.policy import PolicyPayloadError, bounds_of, config_json, from_payload, to_payload, within
from robot_rl.bc.config import BCPolicyConfig
from robot_rl.nets.fast_trunk import runtime_summary
from robot_rl.nets.mlp import mlp
from robot_rl.nets.modes import evaluating
from robot_rl.nets.obs_encoder import ObsEncoder
from robot_rl.nets.pretrained import load_resnet10_weights
from robot_rl.spaces import spec_image_keys

BC_FORMAT = "robot_rl.bc_policy/1"
BC_WEIGHTS = "bc_policy.safetensors"
BC_CONFIG = "bc_policy.json"


class ChunkExecution:
    """Turns one chunk prediction per step into one action per step (see BCPolicyConfig.execution)."""

    def __init__(self, chunk_size: int, mode: str, decay: float):
        self.chunk_size, self.mode, self.decay = chunk_size, mode, decay
        self.reset()

    def reset(self) -> None:
        self._chunks: list[tuple[int, np.ndarray]] = []  # (step predicted at, (K, A) chunk), oldest first
        self._t = 0

    def needs_prediction(self) -> bool:
        if self.mode == "ensemble":
            return True
        return not self._chunks or self._t - self._chunks[-1][0] >= self.chunk_size

    def step(self, chunk: np.ndarray | None) -> np.ndarray:
        """Give the chunk predicted now (when `needs_prediction()`), get this step's action (A,)."""
        if chunk is not None:
            self._chunks.append((self._t, chunk))
            self._chunks = [(t0, c) for t0, c in self._chunks if self._t - t0 < self.chunk_size]
        if self.mode == "replay":
            t0, c = self._chunks[-1]
            action = c[self._t - t0]
        else:  # this step's entry of every live chunk; the i-th newest weighs exp(-decay * i)
            preds = np.stack([c[self._t - t0] for t0, c in reversed(self._chunks)])  # (n, A), newest first
            w = np.exp(-self.decay * np.arange(len(preds)))
            action = (w[:, None] * preds).sum(0) / w.sum()
        self._t += 1
        return action.astype(np.float32)


class BCPolicy(nn.Module):
    def __init__(self, cfg: BCPolicyConfig, obs_spec: dict[str, list[int]], action_dim: int, meta: dict | None = None):
        super().__init__()
        if type(self) is not policy_class(cfg.kind):  # the saved kind must rebuild this very network
            raise ValueError(
                f"a {cfg.kind} BC policy is a {policy_class(cfg.kind).__name__}; build it with make_bc_policy(cfg, ...)"
            )
        self.cfg = cfg
        self.obs_spec = {k: list(v) for k, v in obs_spec.items()}
        self.action_dim = action_dim
        self.meta = dict(meta or {})  # where the policy came from: task, obs_mode, demos, ... (saved in the JSON)
        if cfg.encoder == "auto":  # resolved here, so a saved config names the encoder it was trained with
            cfg = dataclasses.replace(cfg, encoder="resnet10" if spec_image_keys(obs_spec) else "none")
            self.cfg = cfg
        frozen = cfg.freeze_encoder and cfg.encoder == "resnet10"
        self.encoder = ObsEncoder(
            obs_spec, cfg.encoder, cfg.latent_dim, frozen, cfg.image_aug_pad_px, cfg.image_aug_skip, cfg.encoder_stages
        )
        self.head = self.make_head(self.encoder.out_dim)
        state_dim = self.encoder.state_dim
        self.register_buffer("state_mean", torch.zeros(state_dim))  # normalisation of the concatenated state keys
        self.register_buffer("state_std", torch.ones(state_dim))
        self.execution = ChunkExecution(cfg.chunk_size, cfg.execution, cfg.ensemble_decay)

    def make_head(self, feat_dim: int) -> nn.Module:
        """features (B, F) -> flattened chunk (B, K * A)."""
        return mlp(feat_dim, self.cfg.hidden_dims, self.cfg.chunk_size * self.action_dim, self.cfg.layer_norm)

    @property
    def chunk_shape(self) -> tuple[int, int]:
        """(K, A): the shape of one predicted chunk."""
        return self.cfg.chunk_size, self.action_dim

    @property
    def device(self) -> torch.device:
        return self.state_mean.device

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Mean and std (D,) of the state keys concatenated in the encoder's order; std is floored at 1e-3."""
        with torch.no_grad():
            self.state_mean.copy_(mean)
            self.state_std.copy_(std.clamp_min(1e-3))

    def normalize(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out, start = dict(obs), 0
        for k in self.encoder.state_keys:
            d = self.obs_spec[k][0]
            x = obs[k].reshape(obs[k].shape[0], -1).float()
            out[k] = (x - self.state_mean[start : start + d]) / self.state_std[start : start + d]
            start += d
        return out

    def features(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Batched observations (B, ...) (or cached trunk features) -> encoder features (B, F)."""
        return self.encoder(self.normalize(obs))

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Batched observations (B, ...) -> action chunks (B, K, A), unclipped."""
        return self.head(self.features(obs)).view(-1, self.cfg.chunk_size, self.action_dim)

    def chunk_loss(
        self,
        obs: dict[str, torch.Tensor],
        target: torch.Tensor,
        mask: torch.Tensor,
        loss: str,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """Training loss of a batch: target chunks (B, K, A), mask (B, K) float (1: the step is inside the
        episode); `loss` "l1" or "mse" on the predicted chunk. (`generator` is for kinds that sample.)"""
        pred = self(obs)  # (B, K, A)
        err = (pred - target).abs() if loss == "l1" else (pred - target).pow(2)
        return masked_mean(err, mask)

    # --- acting (BasePolicy) ---------------------------------------------------------------------
    def reset(self) -> None:
        self.execution.reset()

    def batch_of(self, obs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """One unbatched observation dict -> a batch of one (1, ...) on the policy's device."""
        missing = [k for k in self.obs_spec if k not in obs]
        if missing:
            raise ValueError(f"observation lacks {missing}; the BC policy expects {list(self.obs_spec)}")
        return {k: torch.as_tensor(np.asarray(obs[k])[None]).to(self.device) for k in self.obs_spec}

    @torch.no_grad()
    def predict_chunk(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """One unbatched observation dict -> chunk (K, A) in [-1, 1]."""
        batch = self.batch_of(obs)
        with evaluating(self):
            return self(batch)[0].clamp(-1.0, 1.0).cpu().numpy()

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """This step's action (A,) float32 in [-1, 1]; call reset() at every episode start."""
        chunk = self.predict_chunk(obs) if self.execution.needs_prediction() else None
        return self.execution.step(chunk)

    def prepare_acting(self, runtime: str | None = None) -> str:
        """Build a frozen image trunk's acting pass now (`ObsEncoder.prepare_acting`: onnxruntime or TorchScript,
        ~1 s; where the base is loaded to act, not in its first step); returns what runs it per camera shape, "" for
        a policy without one. `Policy.prepare_acting`'s counterpart: flow and mlp bases act through it alike."""
        if not self.encoder.freeze_trunk:
            return ""
        return runtime_summary(self.encoder.prepare_acting(runtime))

    # --- persistence ----------------------------------------------------------------------------
    def config_dict(self) -> dict:
        return {
            "format": BC_FORMAT,
            "bc_config": self.cfg.to_dict(),
            "obs_spec": self.obs_spec,
            "action_dim": self.action_dim,
            "meta": self.meta,
        }

    @classmethod
    def from_config_dict(cls, d: dict, device: str | torch.device = "cpu") -> BCPolicy:
        """The policy (of the kind its config names, whichever subclass is asked) a config dict describes."""
        if d.get("format") != BC_FORMAT:
            raise ValueError(f"not a robot_rl BC policy (format {d.get('format')!r}, expected {BC_FORMAT!r})")
        bc_config = dict(d["bc_config"])
        if bc_config.get("encoder") == "auto" and "freeze_encoder" not in bc_config:
            # saved before "auto" was resolved at construction, when it meant a trained conv with images
            bc_config["encoder"] = "conv" if spec_image_keys(d["obs_spec"]) else "none"
        cfg = BCPolicyConfig.from_dict(bc_config)
        return policy_class(cfg.kind)(cfg, d["obs_spec"], int(d["action_dim"]), d.get("meta")).to(device)

    def _load_weights(self, tensors: dict[str, torch.Tensor]) -> None:
        own = self.state_dict()
        missing, unexpected = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
        if missing or unexpected:
            raise ValueError(
                f"BC policy weights do not match its config: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
        self.load_state_dict(tensors)

    def save(self, path_dir: str | Path) -> None:
        path = Path(path_dir)
        path.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(path / BC_WEIGHTS))
        (path / BC_CONFIG).write_text(json.dumps(self.config_dict(), indent=2))

    @classmethod
    def load(cls, path_dir: str | Path, device: str | torch.device = "cpu") -> BCPolicy:
        path = Path(path_dir)
        for name in (BC_WEIGHTS, BC_CONFIG):
            if not (path / name).is_file():
                raise FileNotFoundError(
                    f"{path / name} not found; a BC checkpoint holds {BC_WEIGHTS} and {BC_CONFIG} "
                    "(made by `robot-rl bc train`)"
                )
        policy = cls.from_config_dict(json.loads((path / BC_CONFIG).read_text()), device)
        policy._load_weights(load_file(str(path / BC_WEIGHTS), device=str(device)))
        policy.eval()
        return policy

    def to_bytes(self) -> bytes:
        """Checksummed safetensors bytes with the config JSON in the metadata (for sending the base policy over ROS)."""
        return to_payload(self)

    @classmethod
    def from_bytes(cls, data: bytes, device: str | torch.device = "cpu") -> BCPolicy:
        """`to_bytes` output -> policy; raises PolicyPayloadError (a ValueError) for anything else. The checks of
        `Policy.from_bytes`, in its order: header and checksum, the config's sizes, the network built on the meta
        device must have exactly the payload's tensor names, shapes and dtypes, then finite weights."""
        policy = from_payload(cls, data, device, _bc_payload_config, "BC policy")
        policy.eval()
        return policy


MAX_CHUNK_SIZE = 256  # actions predicted per observation
MAX_FLOW_STEPS = 1000  # Euler steps per prediction of the flow kind
MAX_FLOW_TIME_DIM = 1024  # size of the flow kind's time embedding


def masked_mean(err: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of err (B, K, A) over the chunk steps where mask (B, K) is 1 (steps past an episode's end are 0)."""
    m = mask[..., None]  # (B, K, 1)
    return (err * m).sum() / (m.sum() * err.shape[-1])


def policy_class(kind: str) -> type[BCPolicy]:
    """The BCPolicy class of a kind ("mlp" or "flow"; see BCPolicyConfig.kind)."""
    if kind == "flow":
        from robot_rl.bc.flow import FlowBCPolicy  # a subclass of BCPolicy: imported here, not at module import

        return FlowBCPolicy
    return BCPolicy


def _bc_payload_config(metadata: dict[str, str]) -> dict:
    """The config JSON of BC policy bytes, with every size it declares bounded (raises PolicyPayloadError)."""
    config = config_json(metadata, "bc_config", "BC policy")
    bc = config["bc_config"]
    # the same bounds as a learner policy's (agents.policy), with the BC head's chunk size
    bounds_of(bc.get("hidden_dims", []), bc.get("latent_dim", 1), config.get("action_dim"), config.get("obs_spec"))
    for name, high in (
        ("chunk_size", MAX_CHUNK_SIZE),
        ("flow_steps", MAX_FLOW_STEPS),
        ("flow_time_dim", MAX_FLOW_TIME_DIM),
    ):
        if not within(bc.get(name, 2), high):
            raise PolicyPayloadError(f"BC policy config declares {name} {str(bc.get(name))[:40]} (in [1, {high}])")
    return config


def make_bc_policy(
    cfg: BCPolicyConfig,
    obs_spec: dict[str, list[int]],
    action_dim: int,
    meta: dict | None = None,
    load_pretrained: bool = True,
) -> BCPolicy:
    """A fresh BC policy of the config's kind; loads ResNet-10 weights when the config names them."""
    policy = policy_class(cfg.kind)(cfg, obs_spec, action_dim, meta)
    if policy.cfg.encoder == "resnet10" and cfg.encoder_weights and load_pretrained:
        load_resnet10_weights(policy.encoder.trunk, cfg.encoder_weights)
    return policy


__all__ = ["BC_CONFIG", "BC_FORMAT", "BC_WEIGHTS", "BCPolicy", "ChunkExecution", "make_bc_policy", "policy_class"]
