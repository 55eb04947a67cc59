"""The item store interface and its backends."""
