"""Exit codes shared by every command, so shell scripts can rely on them."""

OK = 0
"""Everything asked was done."""
SOME_INPUTS_FAILED = 1
"""A batch finished, but at least one input could not be processed (each is reported)."""
USAGE = 2
"""Bad command line (unknown option, missing argument): typer/click's own code."""
ERROR = 3
"""A fatal error: nothing (or nothing more) was done; the message says why."""
MATCH = 4
"""`ncii match`/`ncii scan`: at least one input matched an active bank entry."""
TAMPERED = 5
"""`ncii audit verify`: the audit log was edited or rows were deleted (the message says which)."""
