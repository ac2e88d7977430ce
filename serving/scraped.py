"""What the metrics page reads when Prometheus scrapes (serving/tuning/scrape_metrics), set by
DockerModel for the model this server serves: objects with a families() method, or None."""
drift = None    # serving.drift.DriftMonitor: the last drift test
figures = None  # serving.metrics.FeedbackMetrics: whether the feedback log can be written
