"""Replay: frame-once RAM buffers with n-step returns, and exact-fraction mixing of online and demo data."""

from robot_rl.replay.batch import Batch
from robot_rl.replay.buffer import ReplayBuffer
from robot_rl.replay.sampler import MixedSampler

__all__ = ["Batch", "MixedSampler", "ReplayBuffer"]
