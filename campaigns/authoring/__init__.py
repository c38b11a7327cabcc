"""What marketers write and try: forms, durations, campaign files, history, preview, simulator."""
