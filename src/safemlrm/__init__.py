"""safemlrm: measure how safe multimodal reasoning models are."""

__version__ = "0.1.0"
