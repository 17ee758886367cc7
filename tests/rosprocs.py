"""Nodes as real processes for the ROS tests: start one logging to a file, stop it with SIGINT as a terminal would;
`Probe`, the test's own node that records what it hears and calls services.

conftest.py already drops the ROS wheels' re-exec guard from the environment children inherit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node


def start_process(cmd: list[str], log: Path, cwd: Path | None = None) -> subprocess.Popen:
    """`cmd` with stdout and stderr in `log`, log lines unbuffered so a test can read them as they happen."""
    env = os.environ | {"PYTHONUNBUFFERED": "1", "RCUTILS_LOGGING_BUFFERED_STREAM": "0"}
    with open(log, "w") as out:
        return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)


def stop_process(proc: subprocess.Popen, log: Path | None = None, timeout_s: float = 20.0) -> int:
    """SIGINT, then its exit code; killed (and the code of that) if it has not exited within `timeout_s`."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()


class Probe:
    """A test-side rclpy node in its own context that records what it hears."""

    def __init__(self, name: str, namespace: str | None = None):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node(name, namespace=namespace, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.heard: dict[str, list] = defaultdict(list)

    def record(self, topic: str, msg_type, qos, clock=time.monotonic) -> None:
        """Keep (clock() at arrival, message) in heard[topic]; clock=time.time to compare with header stamps."""
        self.node.create_subscription(msg_type, topic, lambda m: self.heard[topic].append((clock(), m)), qos)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.executor.spin_once(timeout_sec=min(left, 0.05))

    def spin_until(self, predicate, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=0.05)
        return predicate()

    def wait_matched(self, *publishers, timeout_s: float = 10.0) -> bool:
        """Spin until every publisher has matched a subscription. Reliable, volatile DDS delivers a message only to
        the readers matched when it is published: one sent once before discovery matched them is lost."""
        return self.spin_until(lambda: all(p.get_subscription_count() >= 1 for p in publishers), timeout_s)

    def call(self, srv_type, name: str, request=None, timeout_s: float = 10.0):
        client = self.node.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=timeout_s), f"service {name} never appeared"
        future = client.call_async(request or srv_type.Request())
        self.executor.spin_until_future_complete(future, timeout_sec=timeout_s)
        assert future.done(), f"service {name} did not answer within {timeout_s} s"
        self.node.destroy_client(client)
        return future.result()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
