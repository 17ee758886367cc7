"""The reward node as a real process over DDS: camera images in, the classifier's task/success (Bool) and its
probability (Float32) out, and silence when the images stop."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest
import rclpy
import torch
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rosprocs import start_process as _start  # noqa: E402
from rosprocs import stop_process as _stop
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Float32

from robot_rl.interfaces import Frame
from robot_rl.nodes.reward import SUCCESS_PROBABILITY
from robot_rl.reward.classifier import ClassifierConfig, SuccessClassifier, save_classifier
from robot_rl.reward.serve import RewardPredictor
from robot_rl.ros import topics
from robot_rl.ros.convert import image_msg

pytestmark = pytest.mark.ros

NS = f"/reward_test_{os.getpid()}"


def _make_classifier(out, images):
    """An untrained classifier whose threshold sits just below its probability on `images` (so it says success)."""
    torch.manual_seed(0)
    model = SuccessClassifier(ClassifierConfig(("front", "wrist"), channels=8, latent_dim=8, hidden_dim=16))
    save_classifier(out, model, threshold=0.0, summary={})
    prob = float(RewardPredictor.load(out).probs(images)[0])
    save_classifier(out, model, threshold=prob - 1e-3, summary={})
    return prob


def test_the_reward_node_waits_for_its_classifier_then_publishes_its_verdict_and_stops_when_the_images_stop(tmp_path):
    """Started before its classifier exists (a cell brought up to record the classifier's data), the node stays up
    and silent; once the classifier is there it publishes."""
    rng = np.random.default_rng(0)
    images = {f"image_{c}": rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for c in ("front", "wrist")}
    log = tmp_path / "reward.log"
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node("reward_probe", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    pubs = {
        c: node.create_publisher(Image, f"{NS}/{topics.image_topic(c)}", topics.SENSOR_QOS) for c in ("front", "wrist")
    }
    verdicts, probs = [], []
    node.create_subscription(
        Bool, f"{NS}/{topics.TASK_SUCCESS}", lambda m: verdicts.append((time.monotonic(), m.data)), topics.STATE_QOS
    )
    node.create_subscription(Float32, f"{NS}/{SUCCESS_PROBABILITY}", lambda m: probs.append(m.data), topics.STATE_QOS)
    proc = _start(
        [
            sys.executable,
            "-m",
            "robot_rl.nodes.reward",
            "--ros-args",
            "-r",
            f"__ns:={NS}",
            "-p",
            f"classifier:={tmp_path / 'clf'}",
            "-p",
            "rate_hz:=20.0",
            "-p",
            "max_staleness_s:=0.3",
        ],
        log,
    )
    try:
        waiting_since, end = None, time.monotonic() + 60.0
        while time.monotonic() < end:  # no classifier yet: up (says so), alive and silent for 3 s after that
            for c, pub in pubs.items():
                pub.publish(image_msg(Frame(images[f"image_{c}"], time.monotonic()), c))
            executor.spin_once(timeout_sec=0.05)
            assert proc.poll() is None and not probs, f"published or died without a classifier:\n{log.read_text()}"
            if waiting_since is None and "no classifier at" in log.read_text():
                waiting_since = time.monotonic()
            if waiting_since is not None and time.monotonic() - waiting_since > 3.0:
                break
        assert waiting_since is not None, f"the node never said it waits for its classifier:\n{log.read_text()}"
        (tmp_path / "clf").mkdir()  # half-written first (the node must keep waiting), then the whole classifier
        prob = _make_classifier(tmp_path / "clf_tmp", images)
        for f in (tmp_path / "clf_tmp").iterdir():
            f.rename(tmp_path / "clf" / f.name)
        end = time.monotonic() + 40
        while time.monotonic() < end and len(probs) < 20:
            for c, pub in pubs.items():
                pub.publish(image_msg(Frame(images[f"image_{c}"], time.monotonic()), c))
            executor.spin_once(timeout_sec=0.05)
            assert proc.poll() is None, f"the reward node died:\n{log.read_text()}"
        assert len(probs) >= 20, f"no task/success_probability within 40 s:\n{log.read_text()}"
        assert np.allclose(probs, prob, atol=1e-5), (probs[:3], prob)
        assert verdicts and all(v for _, v in verdicts)
        stopped = time.monotonic()
        deadline = stopped + 2.0
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        late = [t for t, _ in verdicts if t > stopped + 0.8]
        assert not late, f"{len(late)} verdicts published more than 0.8 s after the images stopped (staleness 0.3 s)"
    finally:
        code = _stop(proc)
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    assert code == 0, log.read_text()
    assert "reward classifier" in log.read_text()


def test_the_reward_node_refuses_to_start_without_a_classifier(tmp_path):
    import subprocess

    out = subprocess.run(
        [sys.executable, "-m", "robot_rl.nodes.reward", "--ros-args", "-r", f"__ns:={NS}_bad"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "classifier:=DIR" in out.stderr
