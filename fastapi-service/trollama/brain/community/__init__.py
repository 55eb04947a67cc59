"""Community features the relay stores in the brain: the moderation audit log and polls."""
