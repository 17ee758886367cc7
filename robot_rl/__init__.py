"""robot_rl: real-world robot RL over ROS 2, with a MuJoCo twin of the robot cell.

Importing this package is cheap and needs neither rclpy nor MuJoCo. It registers the
simulated tasks with gymnasium (the MuJoCo code is imported only when an env is made).
"""

__version__ = "0.1.0"

from robot_rl import envs as _envs  # noqa: E402,F401  (registers robot_rl/PickCube-v0, robot_rl/PegInsert-v0)
