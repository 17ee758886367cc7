"""robot_rl_sim: the MuJoCo twin of the robot cell behind robot_rl's Robot/Camera interfaces.

scene.py       MJCF of the cell (Panda-class arm, gripper, table, cameras)
controller.py  Cartesian impedance control at physics rate
robot.py       MujocoRobot(Robot)
camera.py      MujocoCamera(Camera)
tasks.py       pick_cube, peg_insert: objects, resets, success, rewards (their numbers: robot_rl.cell)
env.py         gymnasium env (make_task_env), registered as robot_rl/PickCube-v0, robot_rl/PegInsert-v0
experts.py     scripted experts (make_expert)
node.py        robot-rl-sim-node: the hardware arm node over the task cell + SimExtras (cameras, /clock,
               task/success, task/object_state, success, sim_status)
"""
