"""Learned reward: success classifiers that stand in for the simulation's ground truth on a real robot.

- `labels`: per-frame success labels derived from a store's `success` key, edits in a sidecar file,
  balanced sampling; `sheet`: a contact sheet of frames around label flips.
- `collect`: sim episodes that keep running past success (expert and failing behaviours).
- `classifier`, `train`, `metrics`: the image classifier (the learner's conv / frozen ResNet-10 encoders
  + MLP head), its training with an episode split, and threshold calibration to a target precision.
- `vlm`: SigLIP/CLIP-class classifiers (zero-shot prompt, or a linear head on image embeddings).
- `serve`, `evaluate`: timed batched inference, the gymnasium reward wrapper, evaluation on stores.
The ROS node is `robot_rl.nodes.reward`; the CLI `robot-rl reward record|label|train|eval`.
"""
