"""The actor's logic without ROS: what `robot_rl.nodes.actor` (the rclpy shell) runs.

layout.py       the task table, the gym env's observation layout and action scale (no MuJoCo)
observation.py  freshest-sample observation assembly with capture stamps and staleness
episode.py      the episode state machine: reset, settle, run, pause on stale data, end
delivery.py     resends of unacknowledged episodes, learner liveness, policy versions per episode
config.py       the node's parameters (ActorConfig)
acting.py       the acting core: warm-up, base policy + residual, policy, arbiter (also `robot-rl train`'s)
timing.py       per-tick timings of the node's loop
"""
