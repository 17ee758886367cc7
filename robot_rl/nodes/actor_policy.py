"""The actor's loader for weights from /learner/policy: decoded and built on a worker thread, swapped in by the tick.

The subscription callback only checks the message's size against `max_bytes` (before anything else) and
hands it to one worker thread; a newer message replaces one the worker has not started (the newest wins).
The worker decodes it, checking everything before it allocates (`robot_rl.wire`, `Policy.from_bytes`: wrapper
and inner checksums, header bounds, config sizes, tensor names/shapes/dtypes against the network the config
builds, finite weights), and builds a new policy; the tick's `take` only swaps in a policy that is fully
decoded, checked and built, and counts what was refused. Nothing the worker builds is shared with the
policy in use, so the tick's inference never sees half-copied weights.

What held the GIL (measured, 12.2 MB conv-encoder policy of `robot-rl bench ros`, loaded 2-core machine):
the first decode's network skeleton on torch's meta device imports ~820 modules (torch meta registrations,
sympy, mpmath) -- 1.4-1.5 s of pure Python under the GIL, which stalled the control thread by up to 200 ms.
`warm_up` does that import at start-up, before the node ticks. After it, the whole decode + build takes
35-120 ms on the worker and the longest stretch it holds the GIL is ~5-10 ms (12 MB buffer copies);
zlib.crc32, numpy copies and torch ops release it.

Deltas (/learner/policy_delta, `robot_rl.agents.policy_delta`): the worker keeps the newest policy it built with
its base; a delta for that base (and newer than it) is applied to a copy that shares the frozen trunk and its
folded copy, so a push costs ~1.4 MB of decoding and no trunk work. A delta for a base the worker does not hold
is kept until a full policy of that base arrives (the two latched topics reach a new actor in either order),
counted in `deltas_without_base` and reported to the tick once per base. A full policy's folded trunk and its
acting pass (`Policy.prepare_acting`: onnxruntime or TorchScript, ~1 s) are built here too, not in the first tick
that acts with it; deltas share both.
"""

from __future__ import annotations

import threading
import time

import torch
from std_msgs.msg import UInt8MultiArray

from robot_rl.agents.policy import Policy, PolicyPayloadError
from robot_rl.agents.policy_delta import apply_delta, base_id, delta_base, frozen_names, rebase
from robot_rl.agents.residual import policy_from_bytes
from robot_rl.ros import protocol

DEFAULT_MAX_POLICY_BYTES = 256 << 20  # 256 MiB: a pixels policy is ~12 MB, a ResNet-10 one ~20 MB


def warm_up() -> None:
    """Import what torch's meta device needs (the skeleton a payload is checked against) now, at start-up:
    done lazily by the first payload, on the worker, it holds the GIL ~1.5 s and stalls the control tick."""
    with torch.device("meta"):
        torch.nn.Conv2d(1, 1, 1)(torch.zeros(1, 1, 2, 2))
        torch.nn.functional.layer_norm(torch.nn.Linear(2, 2)(torch.zeros(1, 2)), (2,))


class PolicyLoader:
    """One worker thread that turns the newest /learner/policy and /learner/policy_delta messages into a
    (policy, version), off the tick."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_POLICY_BYTES, device: str = "cpu") -> None:
        self.max_bytes, self.device = max_bytes, device
        self._cv = threading.Condition()
        self._msg: UInt8MultiArray | None = None  # newest full policy message not yet started on
        self._delta_msg: UInt8MultiArray | None = None  # newest delta message not yet started on
        self._done: tuple[Policy, int] | None = None  # newest policy built, not yet taken
        self._errors: list[tuple[str, str]] = []  # (topic, reason) of refusals not yet counted by the tick
        self._busy = False
        self._stop = False
        # worker-only state: (base id, newest policy built, its version); a delta waiting for its base
        self._base: tuple[str, Policy, int] | None = None
        self._orphan: tuple[bytes, str, int] | None = None
        self._reported_bases: set[str] = set()
        self.deltas_without_base = 0  # deltas that named a base this actor did not hold (when they came)
        self.decode_s: list[float] = []  # worker seconds per payload turned into a policy (decode + build)
        self.trunk_runtime = ""  # what runs the newest full policy's frozen trunk in acting (robot_rl.nets.fast_trunk)
        warm_up()
        self._thread = threading.Thread(target=self._run, name="policy-loader", daemon=True)
        self._thread.start()

    def offer(self, msg: UInt8MultiArray) -> None:
        """/learner/policy callback: refuse an oversized message at once (raises), else hand it to the worker."""
        self._offer(msg, delta=False)

    def offer_delta(self, msg: UInt8MultiArray) -> None:
        """/learner/policy_delta callback: as `offer`."""
        self._offer(msg, delta=True)

    def _offer(self, msg: UInt8MultiArray, delta: bool) -> None:
        n = len(msg.data)
        if n > self.max_bytes:
            raise PolicyPayloadError(f"policy message of {n} bytes exceeds max_policy_bytes={self.max_bytes}")
        with self._cv:
            if delta:
                self._delta_msg = msg
            else:
                self._msg = msg
            self._cv.notify()

    def hold(self, policy: Policy, version: int) -> None:
        """The policy the actor acts with from elsewhere (a local file), before any message: a full payload of its
        base then shares its frozen trunk and acting pass (`policy_delta.rebase`), and a delta of its base applies
        to it. Call it before the subscriptions exist."""
        with self._cv:
            if self._busy or self._msg is not None or self._delta_msg is not None:
                raise RuntimeError("hold() is for the policy in use before any message reaches the loader")
            self.trunk_runtime = policy.prepare_acting()  # built already where the actor loaded it: a no-op
            self._base = (base_id(policy), policy, version)

    def take(self) -> tuple[tuple[Policy, int] | None, list[tuple[str, str]]]:
        """For the tick: (the newest fully built (policy, version) or None, (topic, reason) of each payload refused
        since: /learner/policy or /learner/policy_delta)."""
        with self._cv:
            done, errors, self._done, self._errors = self._done, self._errors, None, []
        return done, errors

    def idle(self) -> bool:
        """No message waiting, none being decoded, nothing built waiting to be taken."""
        with self._cv:
            return self._msg is None and self._delta_msg is None and not self._busy and self._done is None

    def close(self, timeout_s: float = 5.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            with self._cv:
                while self._msg is None and self._delta_msg is None and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                delta = self._msg is None  # a full policy first: a waiting delta may need its base
                if delta:
                    msg, self._delta_msg = self._delta_msg, None
                else:
                    msg, self._msg = self._msg, None
                self._busy = True
            t0 = time.perf_counter()
            try:
                done, error = (self._decode_delta(msg) if delta else self._decode(msg)), None
            except Exception as err:  # noqa: BLE001 -- a payload's failure is a refusal, never a crash
                done, error = None, f"{type(err).__name__}: {err}"
            if done is not None:
                self.decode_s.append(time.perf_counter() - t0)
            del msg  # the message's bytes are not kept while waiting for the next one
            with self._cv:
                self._busy = False
                if done is not None:
                    self._done = done
                elif error is not None:
                    self._errors.append((protocol.POLICY_DELTA if delta else protocol.POLICY, error))

    def _decode(self, msg: UInt8MultiArray) -> tuple[Policy, int]:
        """(policy, version) of a full payload -- with a waiting delta of its base applied, if newer; raises
        ValueError (PolicyPayloadError / WireError) on a bad payload."""
        blob, version = protocol.policy_from_msg(msg)
        policy = policy_from_bytes(blob, self.device).eval()
        base = base_id(policy)
        if frozen_names(policy) and self._base is not None and self._base[0] == base:
            policy = rebase(policy, self._base[1]).eval()  # the trunk and its acting pass are built: share them
        elif frozen_names(policy):  # fold it and build its acting pass here (~1 s), not in the tick's first action
            self.trunk_runtime = policy.prepare_acting()
        self._base = (base, policy, version)
        orphan, self._orphan = self._orphan, None
        if orphan is not None and orphan[1] == self._base[0] and orphan[2] > version:
            try:
                return self._apply(orphan[0], orphan[2])
            except ValueError as err:  # a damaged kept delta is refused on its own topic; the full policy stands
                with self._cv:
                    self._errors.append(
                        (protocol.POLICY_DELTA, f"{type(err).__name__}: kept delta v{orphan[2]}: {err}")
                    )
        return policy, version

    def _decode_delta(self, msg: UInt8MultiArray) -> tuple[Policy, int] | None:
        """(policy, version) of a delta on the newest policy built; None for a delta no newer than that one or one
        kept for a base not held yet (reported once per base); raises ValueError on a bad payload."""
        blob, version = protocol.policy_from_msg(msg, protocol.POLICY_DELTA_KIND)
        base = delta_base(blob)  # checked header and CRC
        if self._base is not None and base == self._base[0]:
            return self._apply(blob, version) if version > self._base[2] else None
        self.deltas_without_base += 1
        if self._orphan is None or version > self._orphan[2]:
            self._orphan = (blob, base, version)
        if base not in self._reported_bases:
            self._reported_bases.add(base)
            with self._cv:
                self._errors.append(
                    (
                        protocol.POLICY_DELTA,
                        f"policy delta v{version} is for base {base[:12]}, which this actor does not hold; "
                        f"kept until that full policy arrives on {protocol.POLICY}",
                    )
                )
        return None

    def _apply(self, blob: bytes, version: int) -> tuple[Policy, int]:
        base, template, _ = self._base
        policy = apply_delta(template, base, blob).eval()
        self._base = (base, policy, version)
        return policy, version
