"""Deciding what an event causes: rules, conditions, windows, the matching loop."""
