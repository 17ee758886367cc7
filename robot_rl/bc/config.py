"""Configs of behaviour cloning: the policy's (saved with it) and the run's (the `robot-rl bc train` options)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from robot_rl.agents.config import camera_names, check_encoder_stages, config_from_dict

EXECUTIONS = ("ensemble", "replay")
KINDS = ("mlp", "flow")


@dataclass
class BCPolicyConfig:
    """What a BC policy is: its network and how its action chunks are executed."""

    kind: Literal["mlp", "flow"] = "mlp"  # mlp: an MLP head regresses the chunk; flow: flow matching, noise -> chunk
    # (flow: a velocity field on obs features + time, Euler-integrated from Gaussian noise; robot_rl.bc.flow)
    chunk_size: int = 4  # K: actions predicted per observation (the current one and K - 1 after it)
    execution: Literal["ensemble", "replay"] = "ensemble"  # ensemble: predict every step and average the predictions
    # for this step of the last K chunks (ACT's temporal ensembling); replay: execute a chunk open loop, then predict
    ensemble_decay: float = 0.1  # temporal ensembling weight exp(-decay * i) of the i-th newest prediction
    hidden_dims: tuple[int, ...] = (256, 256)  # widths of the MLP head's hidden layers
    layer_norm: bool = True  # LayerNorm after every hidden layer of the head
    encoder: Literal["auto", "none", "conv", "resnet10"] = "auto"  # image encoder; auto: a frozen resnet10 with images
    # (features cached once per demo frame: minutes on a CPU, where a trained conv takes hours), else none
    freeze_encoder: bool = True  # keep a resnet10 trunk fixed and train only the necks and head (a conv always trains)
    encoder_weights: str | None = None  # ResNet-10 weights (local file/dir or HF cache id); None = random init
    encoder_stages: int = 4  # resnet10 stages kept: 3 ends at stride 16 (256 x H/16 x W/16 features, a finer grid)
    latent_dim: int = 64  # per-camera latent size after the encoder neck
    image_aug_pad_px: int = 4  # random shift of up to this many pixels per axis while training (0 = none)
    image_aug_skip: tuple[str, ...] = ()  # cameras whose frames are never shifted (e.g. wrist: it moves with the tool)
    flow_steps: int = 10  # flow kind: Euler steps from noise to chunk per prediction
    flow_time_dim: int = 32  # flow kind: size of the sinusoidal embedding of the flow time t in [0, 1]
    flow_noise_scale: float = 1.0  # flow kind: std of the initial noise when acting (0: always the zero-noise chunk)

    def __post_init__(self) -> None:
        self.hidden_dims = tuple(self.hidden_dims)
        self.image_aug_skip = camera_names(self.image_aug_skip, "image_aug_skip")
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r} is not valid; choose one of {KINDS}")
        if self.flow_steps < 1:
            raise ValueError(f"flow_steps must be >= 1, got {self.flow_steps}")
        if self.flow_time_dim < 2 or self.flow_time_dim % 2:
            raise ValueError(f"flow_time_dim must be an even number >= 2, got {self.flow_time_dim}")
        if not 0 <= self.flow_noise_scale < math.inf:
            raise ValueError(f"flow_noise_scale must be a finite number >= 0, got {self.flow_noise_scale}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
        if self.execution not in EXECUTIONS:
            raise ValueError(f"execution={self.execution!r} is not valid; choose one of {EXECUTIONS}")
        if not 0 <= self.ensemble_decay < math.inf:
            raise ValueError(f"ensemble_decay must be a finite number >= 0, got {self.ensemble_decay}")
        if not self.hidden_dims or min(self.hidden_dims) < 1:
            raise ValueError(f"hidden_dims must be one or more widths >= 1, got {list(self.hidden_dims)}")
        check_encoder_stages(self.encoder_stages)
        if self.latent_dim < 1 or self.image_aug_pad_px < 0:
            raise ValueError(
                f"latent_dim must be >= 1 and image_aug_pad_px >= 0, got {self.latent_dim}, {self.image_aug_pad_px}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BCPolicyConfig:
        return config_from_dict(cls, d)


@dataclass
class BCTrainConfig:
    """One BC training run: data, optimisation, evaluation."""

    demos: str = ""  # episode store of demonstrations (e.g. from `robot-rl demos record`)
    from_run: str = ""  # instead of --demos: a robot-rl train run dir; clone its successful episodes (distillation)
    out: str = ""  # output directory: bc_policy.safetensors + bc_policy.json, bc_train_config.json, bc_eval.json
    max_episodes: int = 0  # clone only the first N demo episodes (0: all of them)
    loss: Literal["l1", "mse"] = "l1"  # loss on the action chunk (ACT uses L1); --kind flow always uses MSE
    # (on the flow's velocity, as flow matching requires)
    steps: int = 3000  # gradient steps
    batch_size: int = 256  # samples per gradient step
    lr: float = 1e-3  # AdamW learning rate (cosine-decayed to 10 % over `steps`)
    weight_decay: float = 1e-4  # AdamW weight decay
    seed: int = 0  # seeds the network init, batches and augmentation; evaluation episode i resets with 10**6 + seed + i
    device: str = "cpu"  # torch device: cpu or cuda
    threads: int = 1  # torch intra-op CPU threads (0: torch's default)
    task: str | None = None  # sim task to evaluate on (None: the demo store's task)
    eval_episodes: int = 20  # evaluation episodes after training (0: no evaluation)
    progress_bar: bool = True  # show a tqdm progress bar
    feature_cache_augs: int = 4  # frozen trunk: cached randomly shifted views per demo frame (the first unshifted)
    policy: BCPolicyConfig = field(default_factory=BCPolicyConfig)  # the network and chunk execution

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.feature_cache_augs < 1:
            raise ValueError(f"feature_cache_augs must be >= 1, got {self.feature_cache_augs}")
        for name in ("max_episodes", "eval_episodes", "threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.lr < math.inf:
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if not 0 <= self.weight_decay < math.inf:
            raise ValueError(f"weight_decay must be a finite number >= 0, got {self.weight_decay}")
        if not 0 <= self.seed < 2**32:  # numpy's and gymnasium's seed range
            raise ValueError(f"seed must be in [0, 2**32 - 1], got {self.seed}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
