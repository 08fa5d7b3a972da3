"""Rules ("contracts"): the calculations behind cold-chain, expiry and reorder decisions.

This package starts with the pure calculations, which take numbers and return numbers, so
they can be checked against worked examples: mean kinetic temperature (USP <1079>) and the
reorder plan (periodic review with safety stock, first-expiry-first-out usable stock).
"""

from .coldchain import mean_kinetic_temperature
from .reorder import ReorderPlan, reorder_plan

__all__ = ["ReorderPlan", "mean_kinetic_temperature", "reorder_plan"]
