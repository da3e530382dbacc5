"""Single-phase search and training: warm-up, alternating architecture/weight steps, derive, inherit, fine-tune."""
