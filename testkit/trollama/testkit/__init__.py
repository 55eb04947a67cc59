"""Trollama test kit: protocol-level fakes of the servers the product talks to."""
