"""Thin rclpy nodes around the core, and what starts them.

convert.py  every RobotState/Frame/EECommand <-> ROS message conversion, in one place (imports ROS messages)
image_convert.py  camera images in any colour encoding and size drivers publish -> RGB, cropped and resized (no ROS import)
topics.py   topic and service names, frame ids and QoS profiles shared by the sim, drivers and tests
table.py    the node table (launch/setups/*.yaml): load, validate, turn into `--ros-args` (no ROS import)
params.py   declare a config dataclass as ROS parameters, one per field
task_convert.py  task topics (success flag, object state) <-> messages
protocol.py the actor <-> learner contract: /learner/episodes, /learner/acks, /learner/policy, QoS, payloads
actor.py    robot-rl-actor-node: robot topics -> observation -> policy -> safety filter -> commands; episodes -> learner
actor_inputs.py  the actor's subscriptions: topic, message type, QoS and converter per observation input
learner.py  robot-rl-learner-node: episodes in, policy weights out (a shell around robot_rl.learner.service)

Importing this package imports nothing from ROS: `robot-rl up` reads tables without rclpy.
"""
