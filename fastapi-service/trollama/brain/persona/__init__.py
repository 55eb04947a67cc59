"""The bot's character and its memory of people.

Everything here is read from the store at every interaction (real-time data
reliance: an admin's change applies to the very next reply). One repository
per kind of record: :mod:`.identity`, :mod:`.profiles`, :mod:`.facts`,
:mod:`.relationships`, :mod:`.state`, :mod:`.message_log`, :mod:`.channels`.
"""
