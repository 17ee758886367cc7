"""robot_rl's ROS 2 interface without node processes: messages <-> core types, topic names, QoS, guards, parameters.

convert.py        every RobotState/Frame/EECommand <-> ROS message conversion, in one place (imports ROS messages)
image_convert.py  camera images in any colour encoding and size drivers publish -> RGB, cropped and resized (no ROS import)
task_convert.py   task topics (success flag, object state) <-> messages
teleop_convert.py the `teleop/command` message (a TeleopCommand as sensor_msgs/Joy)
topics.py         topic and service names, frame ids and QoS profiles shared by the sim, drivers and tests
protocol.py       the actor <-> learner contract: /learner/episodes, /learner/acks, /learner/policy, QoS, payloads
guard.py          subscription callbacks behind a guard: a refused message is counted and logged, never fatal
params.py         declare a config dataclass as ROS parameters, one per field

The node processes that use them live in `robot_rl.nodes`. Importing this package imports nothing from ROS.
"""
