"""Bounded retries: exponential backoff with full jitter, and the server's `Retry-After` when it gives one."""
import random
from dataclasses import dataclass, field
from typing import Optional

from .errors import HarkenError


@dataclass
class RetryPolicy:
    """How often and how patiently to resend a request that failed in a retryable way.

    `tries` counts every attempt, the first included. The n-th wait (n from 0) is drawn
    uniformly from [0, min(max_delay_s, base_delay_s * 2**n)] ("full jitter"), so many
    clients that failed together do not come back together; a server's `Retry-After`
    replaces the draw, capped at `max_retry_after_s`. A 429 `Backpressure` answer uses up no
    tries: it is honoured for up to `max_backpressure_s` from the first 429 of a request.
    """

    tries: int = 6
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0
    max_retry_after_s: float = 30.0
    max_backpressure_s: float = 300.0
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def delay_s(self, attempt: int, error: Optional[BaseException] = None) -> float:
        """Seconds to wait before attempt `attempt + 1`, after `error` failed attempt `attempt` (0-based)."""
        retry_after_s = getattr(error, "retry_after_s", None)
        if retry_after_s is not None:
            return min(retry_after_s, self.max_retry_after_s)
        return self.rng.uniform(0.0, min(self.max_delay_s, self.base_delay_s * 2 ** attempt))

    def should_retry(self, attempt: int, error: BaseException) -> bool:
        """True when `error` (from 0-based attempt `attempt`) is retryable and tries remain."""
        return isinstance(error, HarkenError) and error.retryable and attempt + 1 < self.tries

