"""Thin rclpy nodes around the core (one process each), and what starts them.

Message conversion, topic names, QoS, guards and parameters they share: `robot_rl.ros`.

actor.py    robot-rl-actor-node: robot topics -> observation -> policy -> safety filter -> commands; episodes -> learner
actor_inputs.py  the actor's subscriptions: topic, message type, QoS and converter per observation input
learner.py  robot-rl-learner-node: episodes in, policy weights out (a shell around robot_rl.learner.service)
table.py    the node table (launch/setups/*.yaml): load, validate, turn into `--ros-args` (no ROS import)

Importing this package imports nothing from ROS: `robot-rl up` reads tables without rclpy.
"""
