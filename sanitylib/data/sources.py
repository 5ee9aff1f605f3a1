"""What every data loader shares: the offline switch and the error naming every source tried."""

from __future__ import annotations

import os

__all__ = ["DataUnavailableError", "offline"]


class DataUnavailableError(RuntimeError):
    """No source could provide the requested data; the message lists every source tried."""


def offline() -> bool:
    """True when ``SANITYLIB_OFFLINE=1``: no network source is tried."""
    return os.environ.get("SANITYLIB_OFFLINE", "0") == "1"
