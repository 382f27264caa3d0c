"""Pure optimal-transport math on POT backends (no Flower, no ``torch.nn``, no pydantic)."""
