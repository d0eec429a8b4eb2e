"""dynaforge: learn the dynamics of physical systems, and say honestly how well each model does."""

from __future__ import annotations

__version__ = "0.1.0"
