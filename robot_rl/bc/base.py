"""The base-policy interface residual RL builds on, and adapters to it.

A base policy is anything with

    reset() -> None                                   # a new episode starts (forget action chunks, history)
    act(obs: dict[str, np.ndarray]) -> np.ndarray     # one unbatched observation dict -> action (A,) in [-1, 1]

called once per env step, in order, from the first observation of an episode on. `BCPolicy` (robot_rl.bc.policy)
is one. Any other policy -- a function, a policy saved by another framework, a scripted controller -- becomes one
through `CallablePolicy`:

    base = CallablePolicy(lambda obs: my_torch_policy(obs["state"]))             # returns (A,)
    base = CallablePolicy(lerobot_policy.select_action, reset=lerobot_policy.reset)
    base = CallablePolicy(predict_chunk)                                           # returns (K, A): replayed

`load_base_policy(SOURCE)` opens a base from one string (docs/base-policies.md):

    DIR              a BC checkpoint (`robot-rl bc train`, kind mlp or flow) or a Policy directory (a SAC/TD3
                     checkpoint's `agent/policy`, acting deterministically)
    FILE.pt / .ts    a TorchScript module with its layout (robot_rl.bc.torchscript)
    FILE.onnx        an ONNX model with its layout, run by onnxruntime (robot_rl.bc.onnx_base; the `onnx` extra)
    module:factory   a Python entry point: `factory()` returns a BasePolicy

A base may declare its layout, `obs_spec` ({key: shape}) and `action_dim`; given the env's, `load_base_policy`
refuses a base whose layout does not fit with a one-line `BasePolicyError`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from robot_rl import keys
from robot_rl.errors import RunError, UsageError

if TYPE_CHECKING:
    from robot_rl.nets.obs_encoder import ObsEncoder

TORCHSCRIPT_SUFFIXES = (".pt", ".ts")
ONNX_SUFFIXES = (".onnx",)
_ENTRY_POINT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")  # package.module:factory


class BasePolicyError(UsageError, ValueError):
    """A base policy that cannot be opened or does not fit the env (one line; `robot-rl` exits 2)."""


class BasePolicyNotFound(BasePolicyError, FileNotFoundError):
    """A directory that holds no base policy (still a FileNotFoundError for callers that catch that)."""


class BaseActionError(RunError, ValueError):
    """A base policy that raised or returned an unusable action while acting (one line; `robot-rl` exits 1; the
    actor node holds the arm and counts it)."""


@runtime_checkable
class BasePolicy(Protocol):
    """reset() at every episode start; act(obs) -> (A,) float32 in [-1, 1] at every step. Optionally the layout as
    attributes, checked against the env's when given: `obs_spec` {key: shape} of what it reads, `action_dim` A."""

    def reset(self) -> None: ...

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...


class CallablePolicy:
    """Any callable obs -> action (A,) or action chunk (K, A) as a BasePolicy.

    A chunk is executed open loop: its actions one per step, then the callable is asked again. Actions are
    clipped to [-1, 1]; a non-finite action is refused with an error (never passed on to a robot).
    """

    def __init__(
        self,
        fn: Callable[[dict[str, np.ndarray]], np.ndarray],
        reset: Callable[[], None] | None = None,
        action_dim: int | None = None,
        obs_spec: dict[str, list[int]] | None = None,
    ):
        self.fn = fn
        self._reset_fn = reset
        self.action_dim = action_dim  # declared layout (None: unchecked): the action size
        self.obs_spec = obs_spec  # and the observation keys and shapes it reads
        self._chunk: np.ndarray | None = None  # (K, A) being replayed
        self._index = 0

    def reset(self) -> None:
        self._chunk, self._index = None, 0
        if self._reset_fn is not None:
            self._reset_fn()

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if self._chunk is None or self._index >= len(self._chunk):
            try:
                out = np.asarray(self.fn(obs), dtype=np.float32)
            except Exception as e:  # noqa: BLE001 -- the user's code: whatever it raises is one readable line
                raise BaseActionError(f"the base policy raised {type(e).__name__}: {str(e)[:200]}") from e
            if out.ndim not in (1, 2) or out.size == 0:
                raise BaseActionError(
                    f"the base policy returned shape {out.shape}; expected an action (A,) or a chunk (K, A)"
                )
            self._chunk, self._index = (out[None] if out.ndim == 1 else out), 0
        action = self._chunk[self._index]
        self._index += 1
        return checked_action(action, self.action_dim)


def checked_action(action: np.ndarray, action_dim: int | None) -> np.ndarray:
    """A base's action (A,) clipped to [-1, 1]; a wrong shape or a non-finite value is refused (ValueError)."""
    if action_dim is not None and action.shape != (action_dim,):
        raise BaseActionError(f"the base policy's action has shape {action.shape}; the env expects ({action_dim},)")
    if not np.all(np.isfinite(action)):
        raise BaseActionError(f"the base policy returned a non-finite action {action}")
    return np.clip(action, -1.0, 1.0)


def check_layout(base, obs_spec: dict[str, list[int]] | None, action_dim: int | None, source: str) -> None:
    """Refuse (BasePolicyError) a base whose declared `action_dim` or `obs_spec` does not fit the env's: every key
    the base reads must be in the env's observation with the same shape (the env may give more keys)."""
    dim = getattr(base, "action_dim", None)
    if action_dim is not None and dim is not None and int(dim) != int(action_dim):
        raise BasePolicyError(
            f"the base policy {source} acts in {dim} dims but the env takes {action_dim}; "
            "use a base trained for this robot's action layout"
        )
    spec = getattr(base, "obs_spec", None)
    if obs_spec is None or spec is None:
        return
    missing = [k for k in spec if k not in obs_spec]
    if missing:
        raise BasePolicyError(
            f"the base policy {source} reads observation keys {missing} that the env lacks (it "
            f"gives {sorted(obs_spec)}); pass the matching --obs or a base for these keys"
        )
    for key, shape in spec.items():
        if list(shape) != list(obs_spec[key]):
            raise BasePolicyError(
                f"the base policy {source} reads {key!r} of shape {list(shape)} but the env gives "
                f"{list(obs_spec[key])}; use a base trained on this observation layout"
            )


def is_entry_point(source: str | Path) -> bool:
    """`source` names a Python entry point `module:factory` (and no file or directory of that name exists)."""
    return isinstance(source, str) and bool(_ENTRY_POINT.match(source)) and not Path(source).exists()


def load_base_policy(
    source: str | Path, device: str = "cpu", obs_spec: dict[str, list[int]] | None = None, action_dim: int | None = None
) -> BasePolicy:
    """The base policy `source` names (a directory, a TorchScript or ONNX file, or `module:factory`; see the module
    doc).
    Given the env's `obs_spec` / `action_dim`, a base whose declared layout does not fit is refused."""
    if is_entry_point(source):
        base = load_entry_point(str(source))
    elif Path(source).suffix in TORCHSCRIPT_SUFFIXES and Path(source).is_file():
        from robot_rl.bc.torchscript import TorchScriptPolicy

        base = TorchScriptPolicy.load(source, device)
    elif Path(source).suffix in ONNX_SUFFIXES and Path(source).is_file():
        from robot_rl.bc.onnx_base import OnnxPolicy

        base = OnnxPolicy.load(source)
    else:
        base = _load_directory(Path(source), device)
    check_layout(base, obs_spec, action_dim, str(source))
    return base


def load_entry_point(source: str) -> BasePolicy:
    """`package.module:factory` -> factory(), which must return a BasePolicy (reset() and act(obs))."""
    module_name, _, attr = source.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise BasePolicyError(
            f"base policy {source}: cannot import {module_name} ({e}); install it or put it on PYTHONPATH"
        ) from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise BasePolicyError(
            f"base policy {source}: {module_name} has no callable {attr!r}; name a function that returns a BasePolicy"
        )
    try:
        base = factory()
    except Exception as e:  # noqa: BLE001 -- the user's code: whatever it raises is one readable line
        raise BasePolicyError(f"base policy {source}: {attr}() raised {type(e).__name__}: {str(e)[:200]}") from None
    if not isinstance(base, BasePolicy):
        raise BasePolicyError(
            f"base policy {source}: {attr}() returned a {type(base).__name__}, which lacks "
            "reset() and act(obs); return a BasePolicy (wrap a function in CallablePolicy)"
        )
    return base


def _load_directory(path: Path, device: str) -> BasePolicy:
    """A BC checkpoint (bc_policy.json) or a robot_rl Policy directory (policy.json) as a BasePolicy."""
    from robot_rl.agents.policy import POLICY_CONFIG, Policy
    from robot_rl.bc.policy import BC_CONFIG, BCPolicy

    if (path / BC_CONFIG).is_file():
        return BCPolicy.load(path, device=device)
    if (path / POLICY_CONFIG).is_file():
        policy = Policy.load(path, device=device)
        policy.eval()
        return CallablePolicy(
            lambda obs: policy.act(obs, deterministic=True), action_dim=policy.action_dim, obs_spec=policy.obs_spec
        )
    for sub in ("agent/policy", "policy"):  # a checkpoint or agent directory holding a policy
        if (path / sub / POLICY_CONFIG).is_file():
            return _load_directory(path / sub, device)
    raise BasePolicyNotFound(
        f"{path} holds no base policy: expected a BC checkpoint ({BC_CONFIG}, from `robot-rl bc train`), a "
        f"policy directory ({POLICY_CONFIG}), a TorchScript ({'/'.join(TORCHSCRIPT_SUFFIXES)}) or ONNX (.onnx) file or "
        "module:factory (docs/base-policies.md)"
    )


def frozen_trunk_encoder(base) -> ObsEncoder | None:
    """The image encoder of a base whose frozen trunk a residual policy can share (robot_rl.acting.core): one of
    our BC policies (`BCPolicy`, mlp or flow kind) with a frozen image trunk. None for every other base -- a
    TorchScript or ONNX export, a `module:factory` base, a Policy directory, a BC policy whose encoder trains."""
    from robot_rl.bc.policy import BCPolicy

    if not isinstance(base, BCPolicy):
        return None
    encoder = base.encoder
    return encoder if encoder.freeze_trunk and encoder.trunk is not None else None


def prepare_base_acting(base) -> str:
    """Make a base ready to act every control step: a BC base with a frozen image trunk (`frozen_trunk_encoder`) gets
    its trunk's fast acting pass built (`BCPolicy.prepare_acting`, ~1 s) and its fingerprint taken (what the acting
    core compares with a residual's to share one pass), here rather than in its first step. Returns what runs the
    trunk per camera shape, "" for any other base. Call it where a base is loaded to act (the actor node, `eval`,
    `bc eval`, a training run's bases)."""
    encoder = frozen_trunk_encoder(base)
    if encoder is None:
        return ""
    encoder.trunk_fingerprint()
    return base.prepare_acting()


def relabel_with_base(
    episode: dict[str, np.ndarray], base: BasePolicy, obs_keys: list[str], action_dim: int
) -> dict[str, np.ndarray]:
    """The episode with `base_action` set to what `base` does along its observations (demos for residual RL);
    `base` is reset before and after."""
    base.reset()
    n = len(episode[keys.ACTION])
    actions = []
    for t in range(n):
        action = np.asarray(base.act({k: episode[k][t] for k in obs_keys}), dtype=np.float32)
        if action.shape != (action_dim,):
            raise ValueError(f"the base policy's action has shape {action.shape}; the env takes ({action_dim},)")
        actions.append(action)
    base.reset()
    return {**episode, keys.BASE_ACTION: np.stack(actions).astype(np.float32)}
