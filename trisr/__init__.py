"""trisr: trilevel neural architecture search for efficient single-image super-resolution."""

__version__ = "0.1.0"
