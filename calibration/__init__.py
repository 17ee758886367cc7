"""robot_rl_calibration: camera intrinsics, hand-eye transforms and workspace bounds, as versioned YAML.

- `board`: the target (ChArUco or checkerboard) spec and corner detection;
- `intrinsics`: cv2.calibrateCamera over board views, refused above an RMS reprojection error;
- `hand_eye`: eye-in-hand / eye-to-hand transforms from (tool pose, image) pairs, refused on bad residuals;
- `workspace`: teach a WorkspaceBox on any `robot_rl.interfaces.Robot`;
- `io`: save and load the results (what camera and actor nodes import; no ROS, no MuJoCo);
- `transforms`: 4x4 transforms and (x, y, z, w) quaternions;
- `sim_scene`: a MuJoCo rig rendering the board from known poses (tests, demos; needs mujoco).

Command line: `robot-rl calibrate board | intrinsics | hand-eye | workspace`.
"""
