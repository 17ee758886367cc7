"""The actor node's learner side (a mixin of `ActorNode`, actor.py): housekeeping, status, and weights put in use.

`_housekeeping` (wall clock, every 0.5 s) watches the learner through `EpisodeDelivery`, takes new weights while
the node's clock stands still and publishes `actor_status`; `_take_policy` / `_use_policy` swap in a policy the
`PolicyLoader` worker built, once its layout (and, with a base policy, its residual setup) fits this actor.
"""

from __future__ import annotations

import json
import time

from std_msgs.msg import String

from robot_rl.acting.core import residual_mismatch
from robot_rl.agents.policy import Policy
from robot_rl.ros import protocol


class ActorLearnerSide:
    """What `ActorNode` does for and with the learner (uses its delivery, loader, refusals, layout, timing)."""

    # --- learner ----------------------------------------------------------------------------
    def _housekeeping(self) -> None:
        """Wall clock, every 0.5 s: learner liveness (acks heartbeat), resends of unacknowledged episodes, and new
        weights while the node's clock stands still (no ticks)."""
        now = time.monotonic()
        if now - self._last_tick > max(1.0, 2 * self.layout.dt_s):
            self._take_policy()
        self.delivery.housekeeping(now)
        self.pub_status.publish(String(data=json.dumps(self.status())))

    def status(self) -> dict:
        """What `actor_status` carries: where the node is, and how many messages it refused per topic."""
        return {
            "actor_id": self.actor_id,
            "phase": self.machine.phase.name.lower(),
            "ticks": self._ticks,
            "policy_version": self.policy_version,
            "episodes_stored": self.store.n_episodes,
            "learner_alive": self.delivery.learner_alive,
            "refused": self.refusals.as_dict(),
            "cameras": self.cameras.report(),
            "recording": self.trace.status(),  # record_mcap: {path, written, dropped}; None when off
            # the thread that runs the tick: {tid, policy, rt_priority, nice}; None until main() spins the node
            "control_thread": None if self.control_thread is None else self.control_thread.as_dict(),
            "cpu_latency_us": self.cpu_latency.max_us
            if self.cpu_latency is not None and self.cpu_latency.held
            else None,
        }

    def close_workers(self) -> None:
        """At exit: the threads, files and requests the node holds besides its ROS entities."""
        if self.wake_thread is not None:
            self.wake_thread.close()
        if self.cpu_latency is not None:
            self.cpu_latency.close()
        self.loader.close()
        self.delivery.close()
        self.trace.close()
        if self.viz is not None:
            self.viz.close()

    def _take_policy(self) -> None:
        """Count the payloads the worker refused; put in use the newest policy it built (if any)."""
        taken, errors = self.loader.take()
        for topic, error in errors:
            self.refusals.refuse(topic, f"{error}; keeping v{self.policy_version}")
        if taken is not None:
            self._use_policy(*taken, protocol.POLICY)

    def _use_policy(self, policy: Policy, version: int, source: str) -> None:
        steering = self.acting.steering  # noise steering: the policy's action is the base's latent, checked there
        dim = policy.action_dim if steering is None else self.layout.action_dim
        why = self.layout.policy_mismatch(policy.obs_spec, dim) or residual_mismatch(
            policy, self.cfg.base_policy, steering
        )
        if why:
            if source == protocol.POLICY:
                self.refusals.refuse(source, f"refused policy v{version}, keeping v{self.policy_version}: {why}")
            else:
                self.get_logger().error(f"refused policy v{version} from {source}: {why}")
            return
        # a frozen trunk's acting pass: built by the loader's worker already (a no-op here), or now for a local policy
        trunk = policy.prepare_acting()
        self.acting.policy, self.policy_version = policy.eval(), version
        self.timing.write_policy(version)
        self.get_logger().info(
            f"policy v{version} loaded from {source}" + (f" (frozen trunk: {trunk})" if trunk else "")
        )
