"""robot-rl calibrate board | intrinsics | hand-eye | workspace: results as versioned YAML."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robot_rl.cli import checks
from robot_rl.errors import RunError

_BOARD_HELP = (
    "board YAML (pattern, squares_x, squares_y, square_length_m, marker_length_m, dictionary); "
    "write one with `robot-rl calibrate board`"
)


def register(sub) -> None:
    cal = sub.add_parser(
        "calibrate",
        help="camera intrinsics, hand-eye transform, workspace bounds -> versioned YAML",
        description="Calibrate a cell in four steps: (1) `board` writes a board spec and an image to print, "
        "(2) `intrinsics` fits each camera from ~15-30 photos of the board, (3) `hand-eye` finds where a camera "
        "sits relative to the tool (eye-in-hand) or the robot base (eye-to-hand) from tool poses and photos, "
        "(4) `workspace` teaches the box the tool may move in. Every result is YAML with "
        "robot_rl_calibration_version; load it with robot_rl_calibration.io (load_camera_info, load_transform, "
        "load_workspace).",
    )
    cal_sub = cal.add_subparsers(dest="calibrate_command", metavar="SUBCOMMAND", required=True)

    _register_board(cal_sub)
    _register_intrinsics(cal_sub)
    _register_hand_eye(cal_sub)
    _register_workspace(cal_sub)


def _register_board(cal_sub) -> None:
    """`robot-rl calibrate board`: its options."""
    board = cal_sub.add_parser(
        "board",
        help="write a board spec YAML and a PNG of the board to print",
        description="Write a board spec (YAML) and its image (PNG). Print the PNG at 100% scale, glue it flat on "
        "something rigid, measure one square with calipers and put the measured square_length_m (and for ChArUco "
        "marker_length_m = measured marker side) in the YAML before calibrating.",
    )
    board.add_argument("--out", type=Path, required=True, metavar="BOARD.yaml", help="board spec to write")
    board.add_argument("--png", type=Path, metavar="BOARD.png", help="board image to write (default: next to --out)")
    board.add_argument(
        "--pattern", choices=("charuco", "checkerboard"), default="charuco", help="target type (default charuco)"
    )
    board.add_argument(
        "--squares", type=int, nargs=2, default=(7, 5), metavar=("X", "Y"), help="squares along x and y (default 7 5)"
    )
    board.add_argument(
        "--square-length", type=float, default=0.04, metavar="M", help="square side in metres (default 0.04)"
    )
    board.add_argument(
        "--marker-length", type=float, default=0.03, metavar="M", help="ArUco marker side in metres (default 0.03)"
    )
    board.add_argument("--dictionary", default="DICT_5X5_100", help="ArUco dictionary (default DICT_5X5_100)")
    board.add_argument("--dpi", type=checks.positive_int, default=300, help="PNG resolution for printing (default 300)")
    board.set_defaults(func=_board)


def _register_intrinsics(cal_sub) -> None:
    """`robot-rl calibrate intrinsics`: its options."""
    intr = cal_sub.add_parser(
        "intrinsics",
        help="fit a camera's intrinsics from images of the board (ROS camera_info YAML)",
        description="Steps: (1) take 15-30 sharp photos of the board with the camera at its working resolution: "
        "near and far, tilted 20-45 deg about different axes, the board reaching into every corner of the image; "
        "(2) put them in one directory (png/jpg); (3) run this. It finds the board corners, fits a pinhole camera "
        "with distortion (cv2.calibrateCamera), prints the RMS reprojection error and refuses (exit 1, nothing "
        "written) when it is above --max-rms. The result is a ROS camera_info YAML.",
    )
    intr.add_argument("--images", type=Path, required=True, metavar="DIR", help="directory of board images")
    intr.add_argument("--board", type=Path, required=True, metavar="BOARD.yaml", help=_BOARD_HELP)
    intr.add_argument("--out", type=Path, required=True, metavar="CAM.yaml", help="camera_info YAML to write")
    intr.add_argument("--camera-name", default="camera", help="camera_name in the result (default camera)")
    intr.add_argument(
        "--max-rms",
        type=float,
        default=1.0,
        metavar="PX",
        help="refuse above this RMS reprojection error (default 1.0 px)",
    )
    intr.add_argument(
        "--min-views",
        type=checks.positive_int,
        default=6,
        metavar="N",
        help="fewest images the board must be found in (default 6)",
    )
    intr.add_argument(
        "--distortion-model",
        choices=("plumb_bob", "rational_polynomial"),
        default="plumb_bob",
        help="5 (plumb_bob) or 8 (rational_polynomial, wide-angle lenses) coefficients",
    )
    intr.set_defaults(func=_intrinsics)


def _register_hand_eye(cal_sub) -> None:
    """`robot-rl calibrate hand-eye`: its options."""
    he = cal_sub.add_parser(
        "hand-eye",
        help="camera pose relative to the tool (eye-in-hand) or base (eye-to-hand)",
        description="Steps: (1) calibrate the camera's intrinsics first; (2) eye-in-hand: fix the board in the cell, "
        "camera on the tool; eye-to-hand: fix the camera, mount the board on the tool; (3) move the robot to 10-20 "
        "poses that each show the whole board, rotating the tool 15-30 deg about at least two different axes between "
        "poses; at each, with the robot at rest, save an image and the tool pose in the base frame; (4) list them in a "
        "poses YAML: `poses: [{image: 000.png, translation_m: [x, y, z], quaternion_xyzw: [x, y, z, w]}, ...]` "
        "(optional base_frame, tool_frame); (5) run this. It prints the residuals (how much the fixed board appears to "
        "move, mm and deg) and refuses (exit 1, nothing written) above the thresholds. The result is the transform "
        "tool->camera optical frame (eye-in-hand) or base->camera optical frame (eye-to-hand).",
    )
    he.add_argument("--poses", type=Path, required=True, metavar="POSES.yaml", help="tool poses with their image names")
    he.add_argument(
        "--images", type=Path, required=True, metavar="DIR", help="directory the image names are relative to"
    )
    he.add_argument(
        "--intrinsics",
        type=Path,
        required=True,
        metavar="CAM.yaml",
        help="camera_info YAML from `calibrate intrinsics`",
    )
    he.add_argument("--board", type=Path, required=True, metavar="BOARD.yaml", help=_BOARD_HELP)
    he.add_argument("--mode", choices=("eye_in_hand", "eye_to_hand"), required=True, help="where the camera is mounted")
    he.add_argument("--out", type=Path, required=True, metavar="T.yaml", help="transform YAML to write")
    he.add_argument("--parent", help="parent frame name (default: the poses file's tool_frame or base_frame, by mode)")
    he.add_argument("--child", help="child frame name (default: <camera_name>_optical_frame)")
    he.add_argument(
        "--method",
        choices=("tsai", "park", "horaud", "andreff", "daniilidis"),
        default="park",
        help="cv2.calibrateHandEye method, where this OpenCV has it (default park)",
    )
    he.add_argument(
        "--max-rms-translation-mm", type=float, default=5.0, metavar="MM", help="refuse above (default 5 mm)"
    )
    he.add_argument(
        "--max-rms-rotation-deg", type=float, default=1.0, metavar="DEG", help="refuse above (default 1 deg)"
    )
    he.set_defaults(func=_hand_eye)


def _register_workspace(cal_sub) -> None:
    """`robot-rl calibrate workspace`: its options."""
    ws = cal_sub.add_parser(
        "workspace",
        help="teach the box the tool may move in, from recorded corners",
        description="Steps: move the tool to the corners of the space it may use and press Enter at each to record "
        "the tool position (at least 2 opposite corners; up to --max-points); type `x y z` to drive the tool there "
        "first, `done` to finish, `quit` to abort. The box is the bounds of the points, shrunk by --margin on every "
        "side. With --sim the MuJoCo robot is the arm (it can only reach its own default box); with --poses the "
        "positions come from a poses YAML (translation_m of each entry) and nothing is asked. Commands can be piped "
        "on stdin for scripts.",
    )
    src = ws.add_mutually_exclusive_group(required=True)
    src.add_argument("--sim", action="store_true", help="teach on the simulated MuJoCo robot (reads stdin)")
    src.add_argument("--poses", type=Path, metavar="POSES.yaml", help="take the points from a poses file")
    ws.add_argument("--out", type=Path, required=True, metavar="WORKSPACE.yaml", help="workspace YAML to write")
    ws.add_argument(
        "--margin", type=float, default=0.0, metavar="M", help="shrink the box by this on every side (default 0 m)"
    )
    ws.add_argument(
        "--max-points", type=checks.positive_int, default=8, metavar="N", help="stop after N points (default 8)"
    )
    ws.add_argument("--frame", default="base", help="frame name of the box (default base)")
    ws.set_defaults(func=_workspace)


def _fail(e: Exception) -> int:
    raise RunError(str(e)) from e


def _board(args: argparse.Namespace) -> int:
    checks.check_writable_file(args.out)
    import cv2

    from robot_rl_calibration.board import BoardConfig, CalibrationError, board_image
    from robot_rl_calibration.io import save_board

    try:
        cfg = BoardConfig(
            pattern=args.pattern,
            squares_x=args.squares[0],
            squares_y=args.squares[1],
            square_length_m=args.square_length,
            marker_length_m=args.marker_length,
            dictionary=args.dictionary,
        )
    except CalibrationError as e:
        return _fail(e)
    px = max(int(round(cfg.square_length_m / 0.0254 * args.dpi)), 20)
    png = args.png or args.out.with_suffix(".png")
    save_board(args.out, cfg)
    cv2.imwrite(str(png), board_image(cfg, px_per_square=px, margin_px=px // 2))
    w, h = cfg.size_m
    print(
        f"wrote {args.out} and {png}: {cfg.pattern} {cfg.squares_x}x{cfg.squares_y}, {w * 1000:.0f} x {h * 1000:.0f} mm "
        f"at {args.dpi} dpi; print at 100% and measure a square"
    )
    return 0


def _intrinsics(args: argparse.Namespace) -> int:
    checks.check_writable_file(args.out)
    from robot_rl_calibration.board import CalibrationError
    from robot_rl_calibration.intrinsics import IntrinsicsConfig, calibrate_dir
    from robot_rl_calibration.io import load_board, save_camera_info

    cfg = IntrinsicsConfig(max_rms_px=args.max_rms, min_views=args.min_views, distortion_model=args.distortion_model)
    try:
        intr = calibrate_dir(load_board(args.board), args.images, cfg, camera_name=args.camera_name)
    except CalibrationError as e:
        return _fail(e)
    save_camera_info(args.out, intr)
    K = intr.K
    print(
        f"wrote {args.out}: {intr.width}x{intr.height}, fx {K[0, 0]:.2f} fy {K[1, 1]:.2f} cx {K[0, 2]:.2f} "
        f"cy {K[1, 2]:.2f} px, RMS reprojection error {intr.rms_px:.3f} px over {intr.n_views} views"
    )
    return 0


def _hand_eye(args: argparse.Namespace) -> int:
    checks.check_writable_file(args.out)
    import numpy as np

    from robot_rl_calibration.board import CalibrationError
    from robot_rl_calibration.hand_eye import HandEyeConfig, calibrate
    from robot_rl_calibration.intrinsics import read_image
    from robot_rl_calibration.io import Transform, load_board, load_camera_info, load_poses, save_transform

    try:
        cfg = HandEyeConfig(
            mode=args.mode,
            method=args.method,
            max_rms_translation_mm=args.max_rms_translation_mm,
            max_rms_rotation_deg=args.max_rms_rotation_deg,
        )
        board, intr = load_board(args.board), load_camera_info(args.intrinsics)
        poses, meta = load_poses(args.poses, need_images=True)
        images = [read_image(args.images / p.image) for p in poses]
        result = calibrate(board, intr, [p.T_base_tool for p in poses], images, [p.image for p in poses], cfg)
    except CalibrationError as e:
        return _fail(e)
    default_parent = meta.get("tool_frame", "tool") if args.mode == "eye_in_hand" else meta.get("base_frame", "base")
    tf = Transform(
        parent=args.parent or str(default_parent),
        child=args.child or f"{intr.camera_name}_optical_frame",
        T=result.X,
        info=result.summary(),
    )
    save_transform(args.out, tf)
    print(
        f"wrote {args.out}: T_{tf.parent}_{tf.child} translation {np.round(tf.translation_m, 4).tolist()} m, "
        f"quaternion_xyzw {np.round(tf.quaternion_xyzw, 5).tolist()}; residuals {result.rms_translation_mm:.2f} mm / "
        f"{result.rms_rotation_deg:.3f} deg RMS (max {result.max_translation_mm:.2f} mm / {result.max_rotation_deg:.3f} deg) "
        f"over {result.n_poses} poses; solver {result.solver}"
    )
    return 0


def _workspace(args: argparse.Namespace) -> int:
    checks.check_writable_file(args.out)
    import numpy as np

    from robot_rl_calibration.board import CalibrationError
    from robot_rl_calibration.io import load_poses, save_workspace
    from robot_rl_calibration.workspace import WorkspaceConfig, box_from_points, teach

    cfg = WorkspaceConfig(margin_m=args.margin, max_points=args.max_points)
    try:
        if args.poses is not None:
            poses, _ = load_poses(args.poses)
            points = np.array([p.T_base_tool[:3, 3] for p in poses])
            box = box_from_points(points, cfg)
        else:
            from robot_rl_calibration.sim_scene import make_sim_robot

            robot = make_sim_robot()
            try:
                box, points = teach(robot, (line.rstrip("\n") for line in sys.stdin), cfg=cfg)
            finally:
                robot.close()
    except CalibrationError as e:
        return _fail(e)
    save_workspace(args.out, box, frame=args.frame, margin_m=args.margin, points_m=points)
    print(
        f"wrote {args.out}: low {np.round(box.low_m, 4).tolist()} high {np.round(box.high_m, 4).tolist()} m "
        f"in frame {args.frame}, from {len(points)} points"
    )
    return 0
