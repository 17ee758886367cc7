"""Topic and service names, frame ids and QoS profiles of a robot's ROS interface.

All names are relative, so a node started with `-r __ns:=/robot_1` talks on `/robot_1/joint_states`
and two robots never cross-talk. The sim node publishes exactly these; a hardware driver (or a
remap in the node table) provides the same names.

| name                 | type                       | direction | QoS      |
|----------------------|----------------------------|-----------|----------|
| joint_states         | sensor_msgs/JointState     | robot ->  | STATE    |
| ee_pose              | geometry_msgs/PoseStamped  | robot ->  | STATE    |
| ee_twist             | geometry_msgs/TwistStamped | robot ->  | STATE    |  measured tool velocity
| gripper_state        | sensor_msgs/JointState     | robot ->  | STATE    |  finger joints, franka_gripper style
| <cam>/image_raw      | sensor_msgs/Image (rgb8)   | robot ->  | SENSOR   |
| <cam>/camera_info    | sensor_msgs/CameraInfo     | robot ->  | SENSOR   |
| ee_command           | geometry_msgs/TwistStamped | -> robot  | COMMAND  |  tool velocity in the base frame
| ee_target            | geometry_msgs/PoseStamped  | -> robot  | COMMAND  |  tool pose target (stream it; speed-limited)
| gripper_command      | std_msgs/Float64           | -> robot  | COMMAND  |  closing in [0, 1]
| reset                | std_srvs/Trigger           | service   |          |  sim: randomised task reset
| success              | std_srvs/Trigger           | service   |          |  sim: ground-truth success flag
| task/success         | std_msgs/Bool              | robot ->  | STATE    |  success flag at the control rate (sim:
|                      |                            |           |          |  ground truth; hardware: a reward classifier)
| task/object_state    | std_msgs/Float32MultiArray | robot ->  | STATE    |  object state, layout.dim labelled (sim:
|                      |                            |           |          |  privileged; hardware: a pose tracker)
| /clock               | rosgraph_msgs/Clock        | sim ->    | CLOCK    |  absolute; remap per robot
| teleop/command       | sensor_msgs/Joy            | -> actor  | COMMAND  |  a person's (or the scripted operator's)
|                      |                            |           |          |  normalised command + heartbeat, layout in
|                      |                            |           |          |  robot_rl.ros.teleop_convert
| joy                  | sensor_msgs/Joy            | device -> | DEVICE   |  gamepad (joy's game_controller_node)
| spacenav/twist       | geometry_msgs/Twist        | device -> | DEVICE   |  SpaceMouse motion (spacenav driver)
| spacenav/joy         | sensor_msgs/Joy            | device -> | DEVICE   |  SpaceMouse buttons (spacenav driver)
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

JOINT_STATES = "joint_states"
EE_POSE = "ee_pose"
EE_TWIST = "ee_twist"
GRIPPER_STATE = "gripper_state"
EE_COMMAND = "ee_command"
EE_TARGET = "ee_target"
GRIPPER_COMMAND = "gripper_command"
RESET = "reset"
SUCCESS = "success"
CLOCK = "/clock"
TASK_SUCCESS = "task/success"
TASK_OBJECT_STATE = "task/object_state"
TELEOP_COMMAND = "teleop/command"
JOY = "joy"
SPACENAV_TWIST = "spacenav/twist"
SPACENAV_JOY = "spacenav/joy"

BASE_FRAME = "base"  # frame_id of poses, twists and commands: the robot base frame


def image_topic(camera: str) -> str:
    return f"{camera}/image_raw"


def camera_info_topic(camera: str) -> str:
    return f"{camera}/camera_info"


# Robot state: reliable, the ROS default (what joint_state_broadcaster uses).
STATE_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
# Images and camera info: best effort, keep last 5 (what camera drivers use); late frames are worthless.
SENSOR_QOS = qos_profile_sensor_data
# Commands: reliable, only the newest matters.
COMMAND_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
# Device drivers (joy, spacenav) publish reliable, depth 10 (the rclcpp default); reading them the same way.
DEVICE_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
# /clock publisher: reliable, depth 1 (matches rclpy's best-effort TimeSource and reliable subscribers alike).
CLOCK_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
