"""Policy pushes that carry only what trains: the frozen image trunk travels once, in a full payload.

A full payload (`Policy.to_bytes`) holds every tensor. Its *base* (`base_id`) names what a delta needs from it: a
SHA-256 of the policy's config and of its frozen tensors (the `encoder.trunk.` entries of a frozen-trunk encoder;
none for state policies and trained encoders). A delta payload (`to_delta`) holds the other tensors -- actor head,
grasp critic, necks, trainable encoder parts -- in half precision, and names its base; `apply_delta` builds a new
policy from one that has that base (sharing its frozen tensors, never copying them) and refuses a delta for
any other. Every delta holds all trainable tensors, so any delta applies to any policy of its base: a lost or
refused one is mended by the next.

Sizes (2 cameras 128x128, 4-dim action, the learner's pixel recipe: frozen ResNet-10): full 22.4 MB, delta 1.39 MB
(2.77 MB in fp32); state policy (30-dim): full ~0.15 MB, delta ~0.08 MB.

Half precision (PUSH_DTYPE): measured with random-init policies on 1000 observations each, deterministic
actions of fp16-rounded trainable weights vs fp32 differ by at most 1.6e-4 (state), 1.1e-4 (pixels, ResNet-10
frozen) on the [-1, 1] scale, and no discrete-gripper action changed; bf16 differs by up to 1.6e-3 and flipped a
gripper action, so fp16 it is. A tensor whose values do not fit fp16 (|x| > FP16_SAFE_MAX) travels in fp32.

Checks, as for full payloads: header bounds and the CRC before anything is read (`robot_rl.wire.read_header`), the
delta's tensor names, shapes and dtypes against the policy it applies to before its weights are read, and
non-finite weights refused.
"""

from __future__ import annotations

import copy
import hashlib
import json

import torch
from safetensors.torch import load, save
from torch import nn

from robot_rl.agents.policy import (
    MAX_POLICY_TENSORS,
    SAFETENSORS_DTYPE,
    PolicyPayloadError,
)
from robot_rl.wire import (
    CHECKSUM_KEY,
    CHECKSUM_PLACEHOLDER,
    WireError,
    read_header,
    stamp_checksum,
)

DELTA_FORMAT = "robot_rl.policy_delta/1"
PUSH_DTYPE = torch.float16  # measured above: actions within 2e-4 of fp32's
FP16_SAFE_MAX = 6.0e4  # fp16's largest finite value is 65504
_HALF_NAMES = {"F16", "BF16"}
_BASE_HEX = 64  # sha256 hex digits


def frozen_names(policy: nn.Module) -> list[str]:
    """State-dict names of the tensors that never train: a frozen image trunk's, or none."""
    encoder = getattr(policy, "encoder", None)
    if encoder is None or not getattr(encoder, "freeze_trunk", False) or encoder.trunk is None:
        return []
    return sorted(k for k in policy.state_dict() if k.startswith("encoder.trunk."))


def base_id(policy: nn.Module) -> str:
    """SHA-256 (hex) of the policy's config and its frozen tensors (names, dtypes, shapes, bytes): what a delta
    must find in the policy it applies to."""
    digest = hashlib.sha256(json.dumps(policy.config_dict(), sort_keys=True).encode())
    state = policy.state_dict()
    for name in frozen_names(policy):
        t = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{list(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())  # hashlib releases the GIL on large buffers
    return digest.hexdigest()


def to_delta(policy: nn.Module, base: str, dtype: torch.dtype = PUSH_DTYPE) -> bytes:
    """Checksummed safetensors bytes of the policy's trainable tensors (floats in `dtype` where they fit), naming
    `base` (the `base_id` of the full payload it applies to)."""
    frozen = set(frozen_names(policy))
    tensors = {}
    for name, value in policy.state_dict().items():
        if name in frozen:
            continue
        t = value.detach().cpu().contiguous()
        if (
            t.dtype == torch.float32
            and dtype != torch.float32
            and (t.numel() == 0 or float(t.abs().max()) <= FP16_SAFE_MAX)
        ):
            t = t.to(dtype)
        tensors[name] = t
    return stamp_checksum(
        save(tensors, metadata={"format": DELTA_FORMAT, "base": base, CHECKSUM_KEY: CHECKSUM_PLACEHOLDER})
    )


def delta_base(data: bytes) -> str:
    """The base a delta names, from its checked header and CRC (raises PolicyPayloadError)."""
    try:
        metadata = read_header(data, max_tensors=MAX_POLICY_TENSORS).metadata
    except WireError as e:
        raise PolicyPayloadError(f"policy delta bytes are not a readable safetensors payload: {e}") from None
    base = metadata.get("base", "")
    if (
        metadata.get("format") != DELTA_FORMAT
        or len(base) != _BASE_HEX
        or any(c not in "0123456789abcdef" for c in base)
    ):
        raise PolicyPayloadError(
            f"not a policy delta (format {str(metadata.get('format'))[:40]!r}, expected "
            f"{DELTA_FORMAT!r}, with a {_BASE_HEX}-hex-digit base)"
        )
    return base


def apply_delta(policy: nn.Module, base: str, data: bytes) -> nn.Module:
    """A new policy: `policy` (whose `base_id` is `base`) with the delta's tensors, its frozen tensors shared with
    `policy` (not copied; neither is ever written). `policy` itself is not changed. Raises PolicyPayloadError if
    the delta names another base, is damaged, does not match `policy`'s trainable tensors or holds non-finite values."""
    data = bytes(data)
    got = delta_base(data)
    if got != base:
        raise PolicyPayloadError(f"policy delta is for base {got[:12]}, this policy's is {base[:12]}")
    header = read_header(data, max_tensors=MAX_POLICY_TENSORS)
    frozen = set(frozen_names(policy))
    expected = {k: v for k, v in policy.state_dict().items() if k not in frozen}
    missing, unexpected = sorted(set(expected) - set(header.tensors)), sorted(set(header.tensors) - set(expected))
    if missing or unexpected:
        raise PolicyPayloadError(
            f"policy delta does not match the policy: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    for name, want in expected.items():
        info, want_dtype = header.tensors[name], SAFETENSORS_DTYPE.get(want.dtype)
        if info.shape != tuple(want.shape) or not (
            info.dtype == want_dtype or (want_dtype == "F32" and info.dtype in _HALF_NAMES)
        ):
            raise PolicyPayloadError(
                f"policy delta weight {name!r} is {info.dtype}{list(info.shape)}, the policy holds "
                f"{want_dtype}{list(want.shape)}"
            )
    tensors = load(data)  # sizes were checked against the policy: nothing here is larger than it
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise PolicyPayloadError(f"policy delta weights {bad[:5]} hold NaN or infinite values")
    return _with_tensors(policy, {k: v.to(expected[k].dtype) for k, v in tensors.items()})


def rebase(policy: nn.Module, held: nn.Module) -> nn.Module:
    """`policy` (a full payload just decoded) rebuilt on `held`'s frozen tensors, which it shares (not copies) with
    the acting passes built for them. The caller has found both `base_id`s equal (the actor's loader compares the ids
    it keeps anyway; hashing the trunk again would be ~20 MB twice more): a full push of a base the actor already
    holds (a restarted learner, an actor started from a local copy) then costs no trunk export (~0.3-1 s holding the
    GIL for up to 40 ms at a time, which stalled the control tick by up to 114 ms)."""
    frozen = set(frozen_names(held))
    return _with_tensors(held, {k: v for k, v in policy.state_dict().items() if k not in frozen})


def _with_tensors(policy: nn.Module, tensors: dict[str, torch.Tensor]) -> nn.Module:
    """A deep copy of `policy` sharing its frozen tensors (and a frozen trunk's folded copy, whose cache key names
    those same tensors, so the first action after the swap does not rebuild it), with `tensors` loaded."""
    memo = {}
    if frozen_names(policy):  # every tensor of the frozen trunk, non-persistent buffers too
        trunk = policy.encoder.trunk
        memo = {id(t): t for t in (*trunk.parameters(), *trunk.buffers())}
        if policy.encoder._folded is not None:
            memo[id(policy.encoder._folded)] = policy.encoder._folded
    new = copy.deepcopy(policy, memo)
    # copied tensor by tensor: load_state_dict would also write batch norm's num_batches_tracked into the shared
    # trunk (same value, but a new version, which invalidates the folded trunk's cache)
    own = new.state_dict(keep_vars=True)
    with torch.no_grad():
        for name, value in tensors.items():
            own[name].copy_(value)
    return new
