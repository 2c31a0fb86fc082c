"""The web console of a running job: its page (static assets) and the data behind it."""
