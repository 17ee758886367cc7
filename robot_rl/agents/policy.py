"""The deployable policy: observation encoder + actor (+ grasp critic with a discrete gripper).

Everything an actor process needs and nothing else (no critics, targets, temperature or optimisers).
Actions are normalised to [-1, 1]; with `discrete_gripper` the last dim is one of GRIPPER_VALUES.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load, load_file, save, save_file
from torch import nn

from robot_rl.agents.config import AgentConfig
from robot_rl.nets.fast_trunk import runtime_summary
from robot_rl.nets.mlp import mlp
from robot_rl.nets.modes import evaluating
from robot_rl.nets.obs_encoder import ObsEncoder
from robot_rl.wire import CHECKSUM_KEY, CHECKSUM_PLACEHOLDER, Header, WireError, read_header, stamp_checksum

GRIPPER_VALUES = (-1.0, 0.0, 1.0)  # the grasp critic's 3 actions, as values of the action's last dim
POLICY_FORMAT = "robot_rl.policy/1"
POLICY_WEIGHTS = "policy.safetensors"
POLICY_CONFIG = "policy.json"


# Bounds on what a policy payload's config may declare, checked before any network is built
MAX_POLICY_TENSORS = 512
MAX_LAYER_WIDTH = 8192  # hidden and latent widths
MAX_HIDDEN_LAYERS = 16
MAX_OBS_DIM = 4096  # any one dim of an observation spec entry (state length, image H/W/C)
MAX_OBS_KEYS = 64
MAX_ACTION_DIM = 64
SAFETENSORS_DTYPE = {
    torch.float32: "F32",
    torch.float64: "F64",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


class PolicyPayloadError(WireError):
    """Policy bytes that must not be loaded: malformed, damaged, over bounds, mismatched or non-finite weights."""


def safetensors_metadata(data: bytes) -> dict[str, str]:
    """The `__metadata__` of safetensors bytes, from a bound-checked header (raises PolicyPayloadError)."""
    try:
        return read_header(data, max_tensors=MAX_POLICY_TENSORS, require_checksum=False).metadata
    except WireError as e:
        raise PolicyPayloadError(f"bytes are not a readable policy payload: {e}") from None


def payload_config(data: bytes) -> dict:
    """The bounded config of checked, checksummed policy bytes (raises PolicyPayloadError); see `from_bytes`."""
    try:
        return _payload_config(read_header(data, max_tensors=MAX_POLICY_TENSORS).metadata)
    except PolicyPayloadError:
        raise
    except WireError as e:
        raise PolicyPayloadError(f"policy bytes are not a readable safetensors policy payload: {e}") from None


def config_json(metadata: dict[str, str], section: str, what: str) -> dict:
    """The config JSON of policy bytes: an object holding a `section` object (raises PolicyPayloadError)."""
    if "config" not in metadata:
        raise PolicyPayloadError(f"{what} bytes carry no config in their safetensors metadata; make them with to_bytes")
    try:
        config = json.loads(metadata["config"])
    except (ValueError, RecursionError) as e:
        raise PolicyPayloadError(f"{what} config is not JSON: {str(e)[:200]}") from None
    if not isinstance(config, dict) or not isinstance(config.get(section), dict):
        raise PolicyPayloadError(f"{what} config is not a JSON object with a {section} object")
    return config


def _payload_config(metadata: dict[str, str]) -> dict:
    """The config JSON of a policy payload, with every declared size bounded (raises PolicyPayloadError)."""
    config = config_json(metadata, "agent_config", "policy")
    agent = config["agent_config"]
    bounds_of(
        agent.get("hidden_dims", []), agent.get("latent_dim", 1), config.get("action_dim"), config.get("obs_spec")
    )
    return config


def bounds_of(hidden, latent_dim, action_dim, spec) -> None:
    """Raises PolicyPayloadError unless a payload config's declared sizes are within the bounds above (also BC's)."""
    problems = []
    if (
        not isinstance(hidden, list)
        or len(hidden) > MAX_HIDDEN_LAYERS
        or not all(within(h, MAX_LAYER_WIDTH) for h in hidden)
    ):
        problems.append(
            f"hidden_dims {str(hidden)[:80]} (at most {MAX_HIDDEN_LAYERS} widths in [1, {MAX_LAYER_WIDTH}])"
        )
    if not within(latent_dim, MAX_LAYER_WIDTH):
        problems.append(f"latent_dim {str(latent_dim)[:40]} (in [1, {MAX_LAYER_WIDTH}])")
    if not within(action_dim, MAX_ACTION_DIM):
        problems.append(f"action_dim {str(action_dim)[:40]} (in [1, {MAX_ACTION_DIM}])")
    if (
        not isinstance(spec, dict)
        or not 0 < len(spec) <= MAX_OBS_KEYS
        or not all(
            isinstance(v, list) and 1 <= len(v) <= 3 and all(within(d, MAX_OBS_DIM) for d in v) for v in spec.values()
        )
    ):
        problems.append(f"obs_spec {str(spec)[:80]} (at most {MAX_OBS_KEYS} entries of 1-3 dims in [1, {MAX_OBS_DIM}])")
    if problems:
        raise PolicyPayloadError("policy config declares sizes out of bounds: " + "; ".join(problems))


def within(value, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= high


def checked_weights(data: bytes, expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors of checksummed policy bytes whose names, shapes and dtypes equal `expected` (a state dict),
    all finite; raises PolicyPayloadError. For copying new weights into a policy of the same config."""
    try:
        header = read_header(data, max_tensors=MAX_POLICY_TENSORS)
    except WireError as e:
        raise PolicyPayloadError(f"policy bytes are not a readable safetensors policy payload: {e}") from None
    return checked_tensors(data, header, expected)


def checked_tensors(data: bytes, header: Header, expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors of bytes with a checked `header`, if they match `expected` exactly and are finite (else raises)."""
    _check_tensors_match(header, expected)
    tensors = load(data)  # sizes were checked against `expected`: nothing here is larger than the network
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise PolicyPayloadError(f"policy weights {bad[:5]} hold NaN or infinite values")
    return tensors


def _check_tensors_match(header: Header, expected: dict[str, torch.Tensor]) -> None:
    """The payload's tensor names, shapes and dtypes must equal those of the network its config builds."""
    missing, unexpected = sorted(set(expected) - set(header.tensors)), sorted(set(header.tensors) - set(expected))
    if missing or unexpected:
        raise PolicyPayloadError(
            f"policy weights do not match its config: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    for name, want in expected.items():
        got = header.tensors[name]
        if got.shape != tuple(want.shape) or got.dtype != SAFETENSORS_DTYPE.get(want.dtype):
            raise PolicyPayloadError(
                f"policy weight {name!r} is {got.dtype}{list(got.shape)}, its config builds "
                f"{SAFETENSORS_DTYPE.get(want.dtype)}{list(want.shape)}"
            )


class ActionHead(nn.Module):
    """features (B, F) -> action (B, A) in [-1, 1]. SAC: tanh-squashed Gaussian; TD3: tanh of a deterministic output."""

    def __init__(self, in_dim: int, action_dim: int, cfg: AgentConfig):
        super().__init__()
        self.stochastic = cfg.algo == "sac"
        self.net = mlp(in_dim, cfg.hidden_dims, 2 * action_dim if self.stochastic else action_dim, cfg.actor_layer_norm)
        self.log_std_min, self.log_std_max = cfg.log_std_range
        self.action_dim = action_dim

    def forward(self, feats: torch.Tensor, noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """noise (B, A) standard normal, or None for the mean action. Returns (action (B, A), log_prob (B,) or None).

        TD3 ignores `noise` here (its exploration and smoothing noise are added by the caller).
        """
        action, log_prob, _ = self.forward_with_mean(feats, noise)
        return action, log_prob

    def _log_std(self, raw: torch.Tensor) -> torch.Tensor:
        """The network's raw log-std outputs mapped smoothly into log_std_range."""
        return self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (torch.tanh(raw) + 1.0)

    @staticmethod
    def entropy_of(log_std: torch.Tensor) -> torch.Tensor:
        """(B,) entropy of a diagonal Gaussian with these log stds (B, A): sum of log std + log(2 pi e) / 2."""
        return ActionHead.entropy_per_dim(log_std).sum(-1)

    @staticmethod
    def entropy_per_dim(log_std: torch.Tensor) -> torch.Tensor:
        """(B, A) entropy of each dim of a diagonal Gaussian with these log stds: log std + log(2 pi e) / 2."""
        return log_std + 0.5 * math.log(2 * math.pi * math.e)

    def gaussian_entropy(self, feats: torch.Tensor) -> torch.Tensor:
        """(B,) entropy of the Gaussian before the tanh; SAC only."""
        return self.entropy_of(self._log_std(self.net(feats).chunk(2, dim=-1)[1]))

    def forward_with_mean(
        self, feats: torch.Tensor, noise: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """`forward`'s (action, log_prob) plus the mean action (B, A), all from one pass of the network."""
        return self.sample(feats, noise)[:3]

    def sample(
        self, feats: torch.Tensor, noise: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        """(action, log_prob, mean action, log std (B, A) or None) from one pass of the network; the log std is
        there for a sampled SAC action only (the Gaussian's entropy, AgentConfig.entropy_measure)."""
        out = self.net(feats)
        if not self.stochastic:
            action = torch.tanh(out)
            return action, None, action, None
        mean, log_std = out.chunk(2, dim=-1)
        mean_action = torch.tanh(mean)
        if noise is None:
            return mean_action, None, mean_action, None
        log_std = self._log_std(log_std)
        pre_tanh = mean + log_std.exp() * noise
        # log N(pre; mean, std) - log |d tanh / d pre|, with log(1 - tanh(x)^2) = 2 (log 2 - x - softplus(-2x))
        log_prob = (-0.5 * noise.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))).sum(-1)
        return torch.tanh(pre_tanh), log_prob, mean_action, log_std


class Policy(nn.Module):
    def __init__(self, cfg: AgentConfig, obs_spec: dict[str, list[int]], action_dim: int):
        super().__init__()
        if cfg.discrete_gripper and action_dim < 2:
            raise ValueError(
                f"discrete_gripper needs at least one arm dim besides the gripper; action_dim={action_dim}"
            )
        self.cfg = cfg
        self.obs_spec = {k: list(v) for k, v in obs_spec.items()}
        self.action_dim = action_dim
        self.arm_dim = action_dim - 1 if cfg.discrete_gripper else action_dim
        self.encoder = ObsEncoder(
            obs_spec,
            cfg.encoder,
            cfg.latent_dim,
            cfg.freeze_encoder,
            cfg.image_aug_pad_px,
            cfg.image_aug_skip,
            cfg.encoder_stages,
        )
        self.actor = ActionHead(self.encoder.out_dim, self.arm_dim, cfg)
        self.grasp_critic = (
            mlp(self.encoder.out_dim, cfg.hidden_dims, len(GRIPPER_VALUES), cfg.layer_norm)
            if cfg.discrete_gripper
            else None
        )
        self.register_buffer("gripper_values", torch.tensor(GRIPPER_VALUES), persistent=False)

    @property
    def device(self) -> torch.device:
        return self.gripper_values.device

    @property
    def feature_dim(self) -> int:
        """Width of what the actor and the critics read (the encoder's features)."""
        return self.encoder.out_dim

    def action_from_features(
        self, feats: torch.Tensor, deterministic: bool, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """features (B, F) -> full action (B, A): actor arm dims (+ the grasp critic's greedy gripper value)."""
        noise = None
        if not deterministic and self.actor.stochastic:
            noise = torch.randn(feats.shape[0], self.arm_dim, device=feats.device, generator=generator)
        arm, _ = self.actor(feats, noise)
        if not deterministic and not self.actor.stochastic:
            explore = torch.randn(arm.shape, device=arm.device, generator=generator) * self.cfg.td3_exploration_noise
            arm = (arm + explore).clamp(-1.0, 1.0)
        if self.grasp_critic is None:
            return arm
        grip = self.gripper_values[self.grasp_critic(feats).argmax(dim=-1)]  # (B,)
        return torch.cat([arm, grip[:, None]], dim=-1)

    def prepare_acting(self, runtime: str | None = None) -> str:
        """Build a frozen image trunk's acting pass now (`ObsEncoder.prepare_acting`: ~1 s; where the policy is
        loaded, not in a control tick); returns what runs it per camera shape, "" for a policy without one."""
        if not self.encoder.freeze_trunk:
            return ""
        return runtime_summary(self.encoder.prepare_acting(runtime))

    @torch.no_grad()
    def act_batch(self, obs: dict[str, torch.Tensor], deterministic: bool = False) -> torch.Tensor:
        """Batched observations (B, ...) on the policy's device -> actions (B, A) in [-1, 1]."""
        with evaluating(self):
            return self.action_from_features(self.encoder(obs), deterministic)

    def act(self, obs: dict[str, np.ndarray], deterministic: bool = False) -> np.ndarray:
        """One unbatched observation dict -> action (A,) float32 in [-1, 1]."""
        missing = [k for k in self.obs_spec if k not in obs]
        if missing:
            raise ValueError(f"observation lacks {missing}; the policy expects {list(self.obs_spec)}")
        batch = {k: torch.as_tensor(np.asarray(obs[k])[None]).to(self.device) for k in self.obs_spec}
        return self.act_batch(batch, deterministic)[0].cpu().numpy().astype(np.float32)

    # --- persistence: safetensors weights + JSON config, never pickle ----------------------------
    def config_dict(self) -> dict:
        return {
            "format": POLICY_FORMAT,
            "agent_config": self.cfg.to_dict(),
            "obs_spec": self.obs_spec,
            "action_dim": self.action_dim,
        }

    @classmethod
    def from_config_dict(cls, d: dict, device: str | torch.device = "cpu") -> Policy:
        if d.get("format") != POLICY_FORMAT:
            raise ValueError(f"not a robot_rl policy (format {d.get('format')!r}, expected {POLICY_FORMAT!r})")
        return cls(AgentConfig.from_dict(d["agent_config"]), d["obs_spec"], int(d["action_dim"])).to(device)

    def _load_weights(self, tensors: dict[str, torch.Tensor]) -> None:
        own = self.state_dict()
        missing, unexpected = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
        if missing or unexpected:
            raise ValueError(
                f"policy weights do not match its config: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
        self.load_state_dict(tensors)

    def save(self, path_dir: str | Path) -> None:
        path = Path(path_dir)
        path.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(path / POLICY_WEIGHTS))
        (path / POLICY_CONFIG).write_text(json.dumps(self.config_dict(), indent=2))

    @classmethod
    def load(cls, path_dir: str | Path, device: str | torch.device = "cpu") -> Policy:
        path = Path(path_dir)
        for name in (POLICY_WEIGHTS, POLICY_CONFIG):
            if not (path / name).is_file():
                raise FileNotFoundError(
                    f"{path / name} not found; a saved policy directory holds {POLICY_WEIGHTS} and {POLICY_CONFIG}"
                )
        policy = cls.from_config_dict(json.loads((path / POLICY_CONFIG).read_text()), device)
        policy._load_weights(load_file(str(path / POLICY_WEIGHTS), device=str(device)))
        return policy

    def to_bytes(self) -> bytes:
        """Checksummed safetensors bytes with the config JSON in the metadata (for sending weights over ROS)."""
        return to_payload(self)

    @classmethod
    def from_bytes(cls, data: bytes, device: str | torch.device = "cpu") -> Policy:
        """`to_bytes` output -> policy; raises PolicyPayloadError (a ValueError) for anything else.

        Nothing is allocated from what the payload declares before it is checked: the header and checksum
        first, then the config's sizes, then the network built on the meta device (no memory) must have
        exactly the payload's tensor names, shapes and dtypes; only then are weights read, and non-finite
        ones refused.
        """
        return from_payload(cls, data, device, _payload_config, "policy")


def to_payload(policy: nn.Module) -> bytes:
    """A policy module (with `config_dict()`) as checksummed safetensors bytes, its config JSON in the metadata."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in policy.state_dict().items()}
    return stamp_checksum(
        save(tensors, metadata={"config": json.dumps(policy.config_dict()), CHECKSUM_KEY: CHECKSUM_PLACEHOLDER})
    )


def from_payload(cls, data: bytes, device: str | torch.device, read_config, what: str):
    """`to_payload` bytes -> a `cls` policy (built with `cls.from_config_dict`), or PolicyPayloadError.

    Nothing is allocated from what the payload declares before it is checked: the header and checksum first, then
    the config's sizes (`read_config(metadata)` bounds them), then the network built on the meta device (no memory)
    must have exactly the payload's tensor names, shapes and dtypes; only then are weights read, non-finite ones
    refused.
    """
    data = bytes(data)
    try:
        header = read_header(data, max_tensors=MAX_POLICY_TENSORS)
    except WireError as e:
        raise PolicyPayloadError(f"{what} bytes are not a readable safetensors policy payload: {e}") from None
    config = read_config(header.metadata)
    try:
        with torch.device("meta"):  # shapes only: a declared 8192x8192 layer costs no memory here
            skeleton = cls.from_config_dict(config, "meta")
    except Exception as e:  # an untrusted config: any failure to build is a refusal, not a crash
        raise PolicyPayloadError(
            f"{what} config does not build a network: {type(e).__name__}: {str(e)[:200]}"
        ) from None
    tensors = checked_tensors(data, header, skeleton.state_dict())
    policy = cls.from_config_dict(config, device)
    policy._load_weights({k: v.to(device) for k, v in tensors.items()})
    return policy
