"""Thin rclpy nodes around the core, and what starts them.

convert.py  every RobotState/Frame/EECommand <-> ROS message conversion, in one place (imports ROS messages)
topics.py   topic and service names, frame ids and QoS profiles shared by the sim, drivers and tests
table.py    the node table (launch/setups/*.yaml): load, validate, turn into `--ros-args` (no ROS import)

Importing this package imports nothing from ROS: `robot-rl up` reads tables without rclpy.
"""
