"""Exceptions of sdgmm."""


class ConvergenceError(RuntimeError):
    """A fixed point did not converge. The partial result is attached as ``.result``."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result
