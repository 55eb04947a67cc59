"""Routing: which route a message takes and which model of the profile serves it."""
