"""Trollama brain: queue, router, context, model backends and API."""
