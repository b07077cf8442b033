"""The Effect core: a lazy, re-runnable description of I/O, and its combinators.

Generic: nothing here knows about git or workflows. See docs/effects.md.
"""

from effects._bracket import bracket
from effects._cleanup import CleanupFailure, CleanupRegistry, with_cleanups
from effects._effect import Effect
from effects._errors import BracketError, ContextError, RetryExhausted, Timeout
from effects._exit import Exit, ExitKind
from effects._parallel import Mode, par_all, par_all_limit, par_all_settled, race
from effects._retry import RetryPolicy
from effects._sequence import sequence

__all__ = [
    "BracketError",
    "CleanupFailure",
    "CleanupRegistry",
    "ContextError",
    "Effect",
    "Exit",
    "ExitKind",
    "Mode",
    "RetryExhausted",
    "RetryPolicy",
    "Timeout",
    "bracket",
    "par_all",
    "par_all_limit",
    "par_all_settled",
    "race",
    "sequence",
    "with_cleanups",
]
