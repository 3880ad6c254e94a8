"""The pure model: identifiers, ARNs, statuses, validation and plans.

Nothing here touches a process, a file or the database.
"""
