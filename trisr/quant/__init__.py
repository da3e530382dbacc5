"""Quantization-aware fine-tuning: int8 fake quantization as the CPU exporters quantize (:mod:`.fakequant`)."""
