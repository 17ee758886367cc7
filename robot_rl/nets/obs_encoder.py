"""Observation dict -> one feature vector: state vectors concatenated with one latent per camera.

Image inputs come in two forms, told apart by dtype:
- uint8 (B, H, W, C) pixels: augmented (random shift, training only), then trunk, then neck;
- bfloat16 or float (B, C', h, w): trunk features cached by the replay buffer (see `FrameFeatures`), neck only;
  the necks read them in the dtype they were stored in.
One trunk is shared by all cameras; each camera has its own neck.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from robot_rl.keys import IMAGE_PREFIX
from robot_rl.nets.encoders import (
    ConvTrunk,
    FlattenNeck,
    ResNet10,
    SpatialEmbeddingNeck,
    fold_batchnorm,
    random_shift,
    trunk_output_shape,
)
from robot_rl.nets.fast_trunk import PreparedTrunk, prepare_trunk
from robot_rl.nets.frame_split import acting_pass
from robot_rl.spaces import spec_image_keys, spec_state_keys

ENCODERS = ("none", "conv", "resnet10")


class ObsEncoder(nn.Module):
    def __init__(
        self,
        obs_spec: dict[str, list[int]],
        encoder: str,
        latent_dim: int,
        freeze_trunk: bool,
        aug_pad_px: int,
        aug_skip: tuple[str, ...] = (),
        stages: int = 4,
    ):
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"encoder {encoder!r} is not one of {ENCODERS}")
        self.state_keys = spec_state_keys(obs_spec)
        self.image_keys = spec_image_keys(obs_spec)
        self.image_shapes = {k: tuple(obs_spec[k]) for k in self.image_keys}  # (H, W, C) per camera
        if self.image_keys and encoder == "none":
            raise ValueError(
                f"observations have images {self.image_keys}; choose encoder 'conv' or 'resnet10', not 'none'"
            )
        self.freeze_trunk = freeze_trunk and bool(self.image_keys)
        self.aug_pad_px = aug_pad_px
        # cameras never shifted (`aug_skip`, camera names): a wrist camera moves with the tool, so where the hole sits
        # in its frame is the very offset the policy must correct; names of cameras this spec lacks are ignored (one
        # config serves runs with fewer cameras)
        self.aug_pad = {k: 0 if k.removeprefix(IMAGE_PREFIX) in set(aug_skip) else aug_pad_px for k in self.image_keys}
        self.trunk: nn.Module | None = None
        self.necks = nn.ModuleDict()
        if self.image_keys:
            channels = {obs_spec[k][2] for k in self.image_keys}
            self.trunk = ResNet10(stages=stages) if encoder == "resnet10" else ConvTrunk(in_channels=channels.pop())
            if encoder == "resnet10" and channels != {3}:
                raise ValueError(f"resnet10 needs RGB images (C=3); got channels {sorted(channels)}")
            for key in self.image_keys:
                c, h, w = trunk_output_shape(self.trunk, tuple(obs_spec[key]))
                neck = (
                    SpatialEmbeddingNeck(c, h, w, latent_dim)
                    if encoder == "resnet10"
                    else FlattenNeck(c * h * w, latent_dim)
                )
                self.necks[key] = neck
            if self.freeze_trunk:
                self.trunk.requires_grad_(False)
                self.trunk.eval()
        # the frozen trunk with batch norm folded in, for one weights' version (not a submodule: never saved)
        self._folded: FoldedTrunk | None = None
        self._fingerprint: tuple[tuple, str] | None = None  # (weights' version key, trunk_fingerprint())
        self.state_dim = sum(obs_spec[k][0] for k in self.state_keys)
        self.out_dim = self.state_dim + latent_dim * len(self.image_keys)

    def train(self, mode: bool = True) -> ObsEncoder:
        super().train(mode)
        if self.freeze_trunk and self.trunk is not None:
            self.trunk.eval()  # frozen batch-norm statistics stay fixed
        return self

    def frozen_trunk(self) -> nn.Module:
        """What a frozen trunk runs: a batch-norm-folded copy in channels-last layout, rebuilt when the trunk's
        weights change (loading bumps their in-place version counters) or move to another device. Its
        `trunk_fingerprint` is taken at the same time, so whoever prepares a policy off the control thread (the actor
        node's loader folds it there) also leaves the fingerprint the acting core compares ready.

        Channels-last: the uint8 (B, H, W, C) frames already are, and oneDNN's convolutions run them without
        reordering: 5-30 % faster per frame on CPU at the small batches of acting and live inserts (ResNet-10,
        128x128, 2 cores). Outputs keep that layout; they are ordinary (B, C', h, w) tensors to every consumer, equal
        to the contiguous path's within float rounding (tests/test_shared_trunk.py)."""
        if not self.freeze_trunk or self.trunk is None:
            raise ValueError("frozen_trunk() needs a frozen image trunk (freeze_encoder and image observations)")
        key = self._trunk_key()
        if self._folded is None or self._folded.key != key:
            self._folded = FoldedTrunk(key, fold_batchnorm(self.trunk).to(memory_format=torch.channels_last))
            self.trunk_fingerprint()
        return self._folded.module

    def prepare_acting(self, runtime: str | None = None) -> dict[tuple, PreparedTrunk]:
        """Build the frozen trunk's acting pass (`robot_rl.nets.fast_trunk`: onnxruntime, TorchScript or eager) for
        each camera shape, once per weights' version; seconds of work, so call it where a policy is loaded, never in
        a tick. Encoders sharing the folded trunk (policy deltas, `robot_rl.agents.policy_delta`) share it too.
        Until it (or the feature cache's `frozen_pass`) is called, and after new trunk weights, `trunk_features` runs
        the eager folded module."""
        folded = self.frozen_trunk()
        shapes = {}
        for key in self.image_keys:  # one pass per camera shape, all that shape's cameras as one batch
            shapes[self.image_shapes[key]] = shapes.get(self.image_shapes[key], 0) + 1
        missing = {s: n for s, n in shapes.items() if s not in self._folded.acting}
        for shape, n_frames in missing.items():
            self._folded.acting[shape] = prepare_trunk(folded, shape, n_frames, runtime)
        return self._folded.acting

    def frozen_pass(self, image_shape: tuple[int, int, int]) -> PreparedTrunk:
        """What runs the frozen trunk on uint8 frames of `image_shape` (H, W, C) for the feature caches (the learner's
        replay, a BC trainer's demos): the acting pass `prepare_acting` built, built here when missing (once per
        weights' version; acting then runs it too). On the CPU it beats the eager folded module at every batch size
        the caches run (robot_rl.nets.fast_trunk); on a GPU it is that module."""
        return self.prepare_acting()[tuple(image_shape)]

    def _trunk_key(self) -> tuple:
        """Identifies the trunk's weights as they are now: device, tensor identities and in-place versions."""
        tensors = [*self.trunk.parameters(), *self.trunk.buffers()]
        return (tensors[0].device, *(id(t) for t in tensors), *(t._version for t in tensors))

    def trunk_fingerprint(self) -> str:
        """SHA-256 (hex) of the frozen trunk: its class and every tensor's name, dtype, shape and bytes. Two
        encoders with equal fingerprints compute the same trunk features; computed once per weights' version
        (~20 MB hashed for ResNet-10)."""
        if not self.freeze_trunk or self.trunk is None:
            raise ValueError("trunk_fingerprint() needs a frozen image trunk (freeze_encoder and image observations)")
        key = self._trunk_key()
        if self._fingerprint is None or self._fingerprint[0] != key:
            digest = hashlib.sha256(type(self.trunk).__name__.encode())
            for name, t in [*self.trunk.named_parameters(), *self.trunk.named_buffers()]:
                t = t.detach().cpu().contiguous()
                digest.update(f"|{name}|{t.dtype}|{list(t.shape)}".encode())
                digest.update(t.reshape(-1).view(torch.uint8).numpy())  # hashlib releases the GIL on large buffers
            self._fingerprint = (key, digest.hexdigest())
        return self._fingerprint[1]

    def same_trunk_layout(self, other: ObsEncoder) -> bool:
        """Whether both are frozen trunks of one class on the same cameras and image sizes, on one device: what
        lets one's trunk features stand for the other's (given equal weights; see `shares_trunk_with`)."""
        return (
            self.freeze_trunk
            and other.freeze_trunk
            and self.trunk is not None
            and other.trunk is not None
            and type(self.trunk) is type(other.trunk)
            and getattr(self.trunk, "stages", None) == getattr(other.trunk, "stages", None)
            and self.image_shapes == other.image_shapes
            and list(self.image_keys) == list(other.image_keys)
            and next(self.trunk.parameters()).device == next(other.trunk.parameters()).device
        )

    def shares_trunk_with(self, other: ObsEncoder) -> bool:
        """Whether this encoder's `trunk_features` of an observation are exactly `other`'s: the same layout and
        equal trunk weights (by fingerprint)."""
        return self.same_trunk_layout(other) and self.trunk_fingerprint() == other.trunk_fingerprint()

    def adopt_trunk(self, other: ObsEncoder) -> bool:
        """Copy `other`'s frozen trunk weights into this one when their layouts match (`same_trunk_layout`);
        returns whether it did. The folded copy and the fingerprint follow (the weights' versions change)."""
        theirs = other.trunk.state_dict() if self.same_trunk_layout(other) else {}
        ours = self.trunk.state_dict() if theirs else {}
        if not theirs or {k: v.shape for k, v in ours.items()} != {k: v.shape for k, v in theirs.items()}:
            return False
        self.trunk.load_state_dict(theirs)
        return True

    def augment(
        self, obs: dict[str, torch.Tensor], generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Random shift of every uint8 image (B, H, W, C) but the `aug_skip` cameras'; states and cached features are
        returned as they are."""
        out = dict(obs)
        for key in self.image_keys:
            if obs[key].dtype == torch.uint8 and self.aug_pad[key] > 0:
                out[key] = random_shift(obs[key], self.aug_pad[key], generator)
        return out

    def trunk_features(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per camera (B, C', h, w) trunk features; cached float features pass through untouched.

        A frozen trunk sees all cameras' frames of one shape in a single call (one pass, not one per camera): the
        acting pass `prepare_acting` built for that shape if there is one, else the eager folded module."""
        out: dict[str, torch.Tensor] = {}
        frozen: dict[tuple, list[str]] = {}
        for key in self.image_keys:
            x = obs[key]
            if x.dtype != torch.uint8:
                out[key] = x  # cached features, as stored: the necks convert them where they read them
            elif self.freeze_trunk:
                frozen.setdefault(tuple(x.shape), []).append(key)
            else:
                out[key] = self.trunk(x)
        for shape, group in frozen.items():
            trunk = self.frozen_trunk()  # checks the weights' version first: a stale acting pass is never run
            trunk = self._folded.acting.get(shape[1:], trunk)
            with torch.no_grad():  # the frames of one tick on the threads `frame_split.set_frame_threads` gives
                feats = acting_pass(trunk, torch.cat([obs[k] for k in group]) if len(group) > 1 else obs[group[0]])
            out.update(zip(group, feats.chunk(len(group))))
        return {k: out[k] for k in self.image_keys}

    def head(self, obs: dict[str, torch.Tensor], fmaps: dict[str, torch.Tensor]) -> torch.Tensor:
        """States and per-camera necks -> (B, out_dim)."""
        parts = [obs[k].reshape(obs[k].shape[0], -1).float() for k in self.state_keys]
        parts += [self.necks[k](fmaps[k]) for k in self.image_keys]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Observation dict (B, ...) -> features (B, out_dim), no augmentation."""
        return self.head(obs, self.trunk_features(obs))


class FoldedTrunk:
    """A frozen trunk's batch-norm-folded module for one weights' `key`, and its acting passes per image shape (filled
    by `ObsEncoder.prepare_acting`). One mutable object, so copies of a policy that share it share what is prepared."""

    def __init__(self, key: tuple, module: nn.Module) -> None:
        self.key, self.module = key, module
        self.acting: dict[tuple, PreparedTrunk] = {}  # (H, W, C) -> acting pass


class FrameFeatures:
    """Computes, once per stored frame, the frozen trunk's features of `n_augs` random shifts of it.

    Augmentation with a frozen trunk: caching a few DrQ-style pixel shifts per frame (the first unshifted)
    keeps the augmentation exactly the one the trainable-encoder path uses, at a finite number of samples,
    while no update ever runs the trunk. Shifting the 4x4 ResNet map instead would move it by 32 px per cell.
    Memory: n_augs x C' x h x w bfloat16 per frame and camera (2 x 512 x 4 x 4 x 2 B = 32 KiB at 128x128, vs 48 KiB
    for the uint8 frame it replaces); cost: n_augs trunk passes per new frame, run by the encoder's prepared pass
    (`ObsEncoder.frozen_pass`: onnxruntime on the CPU; $ROBOT_RL_TRUNK_RUNTIME=eager for eager torch). Its features
    equal eager torch's within ~1e-6 relative (1e-5 asserted), far below the bfloat16 rounding they are stored with
    (tests/test_fast_trunk_learner.py), so a run resumed under another runtime refills its replay with the same
    features to that rounding.
    """

    def __init__(self, encoder: ObsEncoder, n_augs: int, generator: torch.Generator | None = None):
        if not encoder.freeze_trunk or encoder.trunk is None:
            raise ValueError(
                "FrameFeatures needs an encoder with a frozen trunk (freeze_encoder=True and image observations)"
            )
        self.encoder = encoder
        self.n_augs = n_augs
        self.generator = generator
        self.image_keys = encoder.image_keys

    @torch.no_grad()
    def __call__(self, key: str, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W, C) frames of camera `key` -> bfloat16 (N, n_augs, C', h, w)."""
        if key not in self.image_keys:
            raise KeyError(f"{key!r} is not an image key of this encoder; valid: {self.image_keys}")
        trunk = self.encoder.frozen_pass(self.encoder.image_shapes[key])  # prepared once per run (frozen weights)
        n, pad = frames.shape[0], self.encoder.aug_pad[key]
        if pad <= 0:  # a camera never shifted (or no augmentation): one pass, its features in every view's slot
            feats = trunk(frames).to(torch.bfloat16)
            return feats.unsqueeze(1).expand(n, self.n_augs, *feats.shape[1:]).contiguous()
        views = [frames] + [random_shift(frames, pad, self.generator) for _ in range(self.n_augs - 1)]
        feats = trunk(torch.cat(views))  # (n_augs * N, C', h, w), one trunk call
        return feats.view(self.n_augs, n, *feats.shape[1:]).transpose(0, 1).to(torch.bfloat16)
