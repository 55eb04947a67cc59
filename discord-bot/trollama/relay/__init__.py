"""Trollama relay: Discord in, the brain behind it."""
