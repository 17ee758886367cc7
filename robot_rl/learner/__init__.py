"""The learner service behind `robot-rl-learner-node`, in plain Python (no rclpy): testable without ROS.

config.py    LearnerConfig (the node's parameters) and the agent config it trains with
ledger.py    per-actor episode counts: which episode is next from each actor (ordering, dedupe, gaps),
             and the per-step source columns that make those counts recoverable from the episode store
budget.py    the update budget: utd_ratio updates per received env step once replay holds enough data
progress.py  <out>/train_episodes.jsonl and its rolling success-rate curve
service.py   LearnerService: ingest episode bytes, train in chunks, policy bytes to publish, checkpoints, resume

The ROS shell (`robot_rl.nodes.learner`) only moves bytes between these and the topics of
`robot_rl.nodes.protocol`.
"""
