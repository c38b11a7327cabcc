"""From a due send to the provider and back: queueing, claiming, checks, delivery, settlement."""
