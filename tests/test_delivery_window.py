"""Flow control of episode delivery: at most `window_episodes` past the learner's ack in flight, the next sent when
the learner acks, everything still delivered exactly once (robot_rl.acting.delivery, robot_rl.nodes.actor_delivery)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from rosprocs import Probe
from std_msgs.msg import String, UInt8MultiArray

from robot_rl import keys
from robot_rl.acting.delivery import Outbox
from robot_rl.data.store import EpisodeStore
from robot_rl.nodes.actor_delivery import EpisodeDelivery
from robot_rl.ros import protocol


def test_only_the_window_past_the_ack_is_ever_sent_and_each_ack_releases_the_next():
    box = Outbox("/robot_1/actor", timeout_s=3.0, resend_interval_s=2.0, window_episodes=2)
    assert box.fresh(n_stored=5) == [0, 1]  # no learner heard yet: the first window goes anyway
    for i in (0, 1):
        box.sent(i, 0.0)
    assert box.fresh(5) == []
    box.on_acks({"/robot_1/actor": 0}, now_s=1.0)
    assert box.due(5, now_s=2.0) == [0, 1]  # resends stay inside the window too
    box.on_acks({"/robot_1/actor": 1}, now_s=2.5)
    assert box.fresh(5) == [2]
    box.sent(2, 2.5)
    box.on_acks({"/robot_1/actor": 1}, now_s=9.0)  # back after 6.5 s of silence: the whole window again at once
    assert box.fresh(5) == [1, 2]
    with pytest.raises(ValueError, match="window_episodes >= 1"):
        Outbox("/a", timeout_s=3.0, window_episodes=0)


def _fleet_against_a_slow_learner(window: int, n_actors: int = 4, episodes_each: int = 12) -> tuple[int, int, int, int]:
    """n actors finishing an episode every 10 s for 120 s into a learner that reads one copy every 4 s (slower than
    the robots: it stores a copy if it is the next of its actor, else ignores or refuses it) and acks every second;
    10 % of copies are lost on the wire. -> (copies sent, most copies queued at the learner, stored, s to store all)."""
    rng = np.random.default_rng(0)
    boxes = [
        Outbox(f"/r{a}/actor", timeout_s=5.0, resend_interval_s=2.0, window_episodes=window) for a in range(n_actors)
    ]
    stored = dict.fromkeys((b.actor_id for b in boxes), 0)
    inbox: list[tuple[str, int]] = []  # copies the learner has received, not yet read
    copies = most_queued = 0
    done_s = -1
    for t in range(900):
        n_stored = min(episodes_each, t // 10)
        if t % 4 == 0 and inbox:
            actor_id, index = inbox.pop(0)
            stored[actor_id] += index == stored[actor_id]
        for box in boxes:
            box.on_acks(dict(stored), float(t))
            for index in box.fresh(n_stored) + box.due(n_stored, float(t)):
                box.sent(index, float(t))
                copies += 1
                if rng.random() >= 0.1:
                    inbox.append((box.actor_id, index))
        most_queued = max(most_queued, len(inbox))
        if done_s < 0 and sum(stored.values()) == n_actors * episodes_each:
            done_s = t
    return copies, most_queued, sum(stored.values()), done_s


def test_a_window_bounds_what_four_actors_pile_on_a_slow_lossy_learner_and_all_still_arrive():
    copies, queued, stored, done_s = _fleet_against_a_slow_learner(window=2)
    assert stored == 48 and done_s <= 360  # every episode of every actor, exactly once (stored in order only)
    assert copies <= 1.5 * 48  # the lost ones again, little else (the old backed-off resends: 687 copies here)
    assert queued <= 4 * 2 + 4  # each actor's window, and a resend or so (old: 420 copies queued, done at 848 s)
    wide_copies, wide_queued, wide_stored, _ = _fleet_against_a_slow_learner(window=10_000)  # no window
    assert wide_stored == 48 and wide_copies > copies and wide_queued > 2 * queued


@pytest.fixture
def pixel_store(tmp_path) -> EpisodeStore:
    """A real episode store with 5 episodes of 2 steps, a 64x64 camera each (a gradient: compressible)."""
    store = EpisodeStore.create(tmp_path / "actor_episodes", {"task": "pick_cube"})
    image = np.broadcast_to(np.arange(64, dtype=np.uint8)[None, :, None], (64, 64, 3))
    for i in range(5):
        store.add_episode(
            {
                keys.image_key("front"): np.stack([image + i, image + 2 * i]),
                keys.REWARD: np.array([0.0, 1.0], np.float32),
                keys.SUCCESS: np.array([False, i % 2 == 0]),
            }
        )
    return store


def test_the_actor_sends_its_window_from_a_sender_thread_and_the_next_episode_when_the_learner_acks(pixel_store):
    actor, learner = Probe("actor", namespace="/robot_1"), Probe("learner")
    try:
        learner.record(protocol.EPISODES, UInt8MultiArray, protocol.EPISODES_QOS)
        acks = learner.node.create_publisher(String, protocol.ACKS, protocol.LATCHED_QOS)
        delivery = EpisodeDelivery(actor.node, pixel_store, {"task": "pick_cube"}, 5.0, 2.0, "continue", 2)
        actor.node.create_subscription(String, protocol.ACKS, delivery.on_acks, protocol.LATCHED_QOS)
        threads, publish = set(), delivery.sender._publish
        delivery.sender._publish = lambda index: threads.add(threading.current_thread().name) or publish(index)

        def heard() -> list[int]:
            return [protocol.episode_from_msg(m)[1].index for _, m in learner.heard[protocol.EPISODES]]

        def spin_until(predicate, timeout_s: float) -> bool:
            for _ in range(int(timeout_s / 0.05)):
                actor.spin_for(0.025), learner.spin_for(0.025)
                if predicate():
                    return True
            return False

        assert spin_until(lambda: delivery.pub.get_subscription_count() == 1, 10.0)
        successes = [delivery.deliver(i, policy_version=7) for i in range(5)]
        assert successes == [True, False, True, False, True]
        assert spin_until(lambda: len(heard()) >= 2, 10.0)
        spin_until(lambda: False, 1.0)
        assert sorted(heard()) == [0, 1]  # nothing past the window, however long we wait
        assert threads == {"episode-sender"}  # never the caller's (the control tick's) thread
        acks.publish(protocol.acks_msg({"/robot_1/actor": 1}))
        assert spin_until(lambda: 2 in heard(), 5.0)
        acks.publish(protocol.acks_msg({"/robot_1/actor": 3}))
        assert spin_until(lambda: {3, 4} <= set(heard()), 5.0)
        arrays, meta = protocol.episode_from_msg(learner.heard[protocol.EPISODES][-1][1])
        want = pixel_store.get_episode(meta.index)
        assert arrays[keys.image_key("front")].tobytes() == want[keys.image_key("front")].tobytes()
        assert meta.policy_version == 7 and len(learner.heard[protocol.EPISODES][-1][1].data) < 64 * 64 * 3
        delivery.close()
    finally:
        for probe in (actor, learner):
            probe.node.destroy_node()
            probe.context.try_shutdown()


def test_the_episode_just_recorded_is_sent_from_memory_as_the_store_would_read_it_and_a_resend_reads_the_store(
    tmp_path,
):
    """The first send of a new episode encodes the recorder's arrays, not a read-back (zarr work that held the GIL
    while the next episode's first ticks waited); the message is the same bytes either way."""
    from robot_rl.data.recorder import EpisodeRecorder

    store = EpisodeStore.create(tmp_path / "actor_episodes", {"task": "pick_cube"})
    recorder = EpisodeRecorder(store)
    rng = np.random.default_rng(0)
    obs = [
        {
            keys.STATE: rng.normal(size=5).astype(np.float32),
            keys.image_key("front"): rng.integers(0, 255, (16, 16, 3), np.uint8),
        }
        for _ in range(4)
    ]
    recorder.start(obs[0], {})
    for t in range(3):
        recorder.step(
            rng.uniform(-1, 1, 4).astype(np.float32), obs[t + 1], float(t == 2), t == 2, False, {"success": t == 2}
        )
    index = recorder.end()
    last_index, arrays = recorder.last_episode
    meta = protocol.EpisodeMeta("/robot_1/actor", index, 3, True, {"task": "pick_cube"})
    assert last_index == index == 0

    def decoded(episode) -> dict:
        return protocol.episode_from_msg(protocol.episode_msg(episode, meta))[0]

    stored, recorded = decoded(store.get_episode(index)), decoded(arrays)
    assert list(recorded) == list(stored) and len(stored) >= 10
    for key in stored:
        assert recorded[key].dtype == stored[key].dtype and np.array_equal(recorded[key], stored[key]), key

    probe = Probe("actor_mem", namespace="/robot_1")
    try:
        delivery = EpisodeDelivery(probe.node, store, {"task": "pick_cube"}, 5.0, 2.0, "continue", 2)
        reads, get_episode = [], store.get_episode
        store.get_episode = lambda i: reads.append(i) or get_episode(i)  # counts the read-backs
        sent = []
        delivery.pub.publish = lambda msg: sent.append(protocol.episode_from_msg(msg)[0])
        delivery.sender.stop()  # publish on this thread, in order
        assert delivery.deliver(index, 3, arrays) is True
        assert delivery.publish(index) and reads == []  # from memory
        assert delivery.publish(index) and reads == [index]  # a resend: read from the store
        assert all(np.array_equal(sent[0][k], sent[1][k]) for k in stored) and list(sent[0]) == list(stored)
    finally:
        probe.node.destroy_node()
        probe.context.try_shutdown()
