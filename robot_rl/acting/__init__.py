"""The acting core without ROS: what `robot-rl train` and the actor node (`robot_rl.nodes.actor`, its rclpy shell) run.

The cell's facts (task table, observation layout, action scale) are `robot_rl.cell`.

observation.py  freshest-sample observation assembly with capture stamps and staleness
episode.py      the episode state machine: reset, settle, run, pause on stale data, end
delivery.py     resends of unacknowledged episodes, learner liveness, policy versions per episode
config.py       the node's parameters (ActorConfig)
core.py         the acting core: warm-up, base policy + residual, policy, arbiter (also `robot-rl train`'s)
timing.py       per-tick timings of the node's loop
"""
