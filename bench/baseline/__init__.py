"""P2's baseline: the same Django project with a URLconf of one minimal JSON view."""
