"""Conversation context: history, token estimates, summaries and think-tag filtering."""
