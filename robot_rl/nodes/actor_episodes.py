"""The actor node's episode side (a mixin of `ActorNode`, actor.py): reset service, steps recorded, episode end.

`_request_reset` / `_on_reset_answer` drive the robot's `reset` service for the `EpisodeMachine`;
`_record_pending` writes the step the previous action completed; `_end_episode` makes the episode durable in
the store and hands it to `EpisodeDelivery` (-> learner); `_discard_episode` drops it (a re-record, or a
verdict before the first step completed): never stored, never sent.
"""

from __future__ import annotations

import time

from std_srvs.srv import Trigger

from robot_rl.data.store import StoreError


class ActorEpisodeSide:
    """What `ActorNode` does at episode boundaries (uses its machine, recorder, store, delivery, trace, viz)."""

    def _record_pending(self, obs: dict, outcome, info: dict) -> None:
        executed, proposed, is_intervention, base_action, latent = self._pending
        if self.viz is not None:
            done = outcome.terminated or outcome.truncated
            self.viz.outcome(self.store.n_steps + self.recorder.n_steps, outcome.reward, info["success"], done)
        self.recorder.step(
            executed,
            obs,
            outcome.reward,
            outcome.terminated,
            outcome.truncated,
            info,
            base_action=base_action,
            policy_action=proposed,
            is_intervention=is_intervention,
            noise_action=latent,  # noise steering: what the learner's agent chose (None without it)
        )
        self._pending = None

    def _discard_episode(self, verdict: str) -> None:
        """A re-record (or a verdict before the first step completed): the episode is dropped, never learned from."""
        self._hold()
        steps = self.machine.n_steps
        self._pending = None
        self.machine.finish()
        self.recorder.discard()
        self.trace.episode("discard", self._now_ns(), steps=steps, verdict=verdict)
        self.get_logger().info(f"episode discarded after {steps} steps ({verdict} from teleop): not stored, not sent")

    def _request_reset(self) -> None:
        if not self.reset_client.service_is_ready():
            self.get_logger().info(
                f"waiting for the reset service {self.reset_client.srv_name}", throttle_duration_sec=5.0
            )
            return
        self.machine.request_reset(time.monotonic())
        self.reset_client.call_async(Trigger.Request()).add_done_callback(self._on_reset_answer)

    def _on_reset_answer(self, future) -> None:
        answer = future.result()
        ok = answer is not None and answer.success
        if not ok:
            self.get_logger().warning(
                f"reset refused: {getattr(answer, 'message', 'no answer')}; asking again", throttle_duration_sec=2.0
            )
        self.machine.reset_answered(ok, self._now_s())

    def _end_episode(self, verdict: str | None = None) -> None:
        steps = self.machine.n_steps
        self.trace.episode("end", self._now_ns(), episode=self.store.n_episodes, steps=steps, verdict=verdict)
        self._hold()
        self._pending = None
        self.machine.finish()
        try:
            index = self.recorder.end()  # durable when it returns
        except StoreError as err:
            self.get_logger().error(f"the store refused the episode ({steps} steps), dropping it: {err}")
            self.recorder.discard()
            return
        success = self.delivery.deliver(index, self._episode_version, self.recorder.last_episode[1])
        judged = f" ({verdict} from teleop)" if verdict else ""
        self.get_logger().info(
            f"episode {index} stored and sent: {steps} steps, success={success}{judged}, "
            f"interventions {self._interventions}/{steps}, policy v{self._episode_version}; "
            f"{self.timing.summary()}"
        )
        self.timing.write_episode(index, self._episode_version)
