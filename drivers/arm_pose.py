"""Rotation helpers for the arm drivers, in plain numpy (no MuJoCo, no SDK).

Quaternions are unit (w, x, y, z) like everywhere in robot_rl; SDKs that use (x, y, z, w) (franky,
Eigen, scipy) are converted at their adapter with `xyzw_from_wxyz` / `wxyz_from_xyzw`.
"""

from __future__ import annotations

import numpy as np


def quat_mul(a_wxyz: np.ndarray, b_wxyz: np.ndarray) -> np.ndarray:
    """Hamilton product a * b (apply b, then a)."""
    aw, ax, ay, az = a_wxyz
    bw, bx, by, bz = b_wxyz
    return np.array(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )


def quat_conj(q_wxyz: np.ndarray) -> np.ndarray:
    return np.array([q_wxyz[0], -q_wxyz[1], -q_wxyz[2], -q_wxyz[3]])


def quat_from_rotvec(rotvec_rad: np.ndarray) -> np.ndarray:
    """Unit quaternion of a rotation vector (axis * angle, radians)."""
    v = np.asarray(rotvec_rad, dtype=np.float64)
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.array([1.0, 0.0, 0.0, 0.0])
    return np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * v / angle])


def rotvec_from_quat(q_wxyz: np.ndarray) -> np.ndarray:
    """Rotation vector (radians, the short way round: angle <= pi) of a quaternion."""
    q = np.asarray(q_wxyz, dtype=np.float64)
    q = q / np.linalg.norm(q)
    if q[0] < 0:
        q = -q
    s = float(np.linalg.norm(q[1:]))
    if s < 1e-12:
        return 2.0 * q[1:]  # small-angle limit
    return 2.0 * np.arctan2(s, q[0]) * q[1:] / s


def rotation_between(from_wxyz: np.ndarray, to_wxyz: np.ndarray) -> np.ndarray:
    """Rotation vector r (base frame) with quat(r) * from = to."""
    return rotvec_from_quat(quat_mul(to_wxyz, quat_conj(from_wxyz)))


def xyzw_from_wxyz(q_wxyz: np.ndarray) -> np.ndarray:
    return np.array([q_wxyz[1], q_wxyz[2], q_wxyz[3], q_wxyz[0]], dtype=np.float64)


def wxyz_from_xyzw(q_xyzw: np.ndarray) -> np.ndarray:
    return np.array([q_xyzw[3], q_xyzw[0], q_xyzw[1], q_xyzw[2]], dtype=np.float64)
