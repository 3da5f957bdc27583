"""What goes wrong with an owner's validator, in words the owner can act on."""


class ValidatorError(Exception):
    """The custom validator could not judge (crashed, timed out, over its memory, returned
    a non-bool, broke the protocol, or no sandbox is available). `reason` is shown to the
    owner on the batch page; results it could not judge are never marked invalid for it."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class SandboxUnavailable(ValidatorError):
    """No isolation mechanism works on this server: custom validators fail closed."""


class SandboxBusy(ValidatorError):
    """Every sandbox process this server may run is busy: the results wait for the next
    pass. Not the validator's fault, so it trips no breaker."""


class BudgetSpent(ValidatorError):
    """The validator's comparisons for a work unit did not fit in this pass's time budget;
    the verdicts so far are remembered and the rest are judged in the next passes. Not a
    failure: it trips no breaker."""
