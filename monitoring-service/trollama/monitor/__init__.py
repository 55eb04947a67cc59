"""The monitoring service: health polling, uptime, alerts and the dashboard."""
