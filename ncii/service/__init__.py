"""Operations on the hash store. Each function takes a ``Session`` (the caller owns the
transaction) plus plain values, and returns frozen dataclasses, never ORM objects.

``banks``: create, list, show, rename, delete. ``entries``: add (in bulk), list, change status.
``transfer``: import and export files. ``history``: the audit trail and the change log.
"""
