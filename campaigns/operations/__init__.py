"""Keeping the pipeline running and visible: supervised loops, heartbeats, health, metrics."""
