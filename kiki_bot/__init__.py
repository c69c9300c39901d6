"""kiki-bot: keeps fine-tuned adapters' training-content paperwork true to their data."""

__version__ = "0.1.0"
