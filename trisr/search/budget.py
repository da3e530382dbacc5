"""Adaptive weight of the cost term (method.md §8.3): after each control interval the argmax network's
cost is compared with a band below the budget; the weight doubles above the band and halves below it."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class BudgetController:
    budget: float | None
    band: float = 0.1
    weight: float = 0.0  # 0 until calibrated from the first architecture step
    calibrated: bool = False
    doublings: int = 0
    halvings: int = 0

    @property
    def lower(self) -> float:
        assert self.budget is not None
        return self.budget * (1.0 - self.band)

    def calibrate(self, rec_loss: float, expected_cost: float, fraction: float) -> None:
        """Start where the cost term is ``fraction`` of the reconstruction loss (not at the code's 1e-20,
        which only matters after dozens of doublings)."""
        if self.budget is None or self.calibrated:
            return
        self.weight = fraction * rec_loss / max(expected_cost, 1e-12)
        self.calibrated = True

    def update(self, derived_cost: float) -> str:
        """Adjust the weight for the current argmax cost; returns 'up', 'down' or 'hold'."""
        if self.budget is None or not self.calibrated:
            return "hold"
        if derived_cost > self.budget:
            self.weight *= 2.0
            self.doublings += 1
            return "up"
        if derived_cost < self.lower:
            self.weight /= 2.0
            self.halvings += 1
            return "down"
        return "hold"

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)
