"""Trollama common: code every service shares."""
