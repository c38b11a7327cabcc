"""What was sent and how fast: the Dashboard's figures and send latency."""
