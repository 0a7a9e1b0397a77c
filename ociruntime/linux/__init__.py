"""One module per kernel feature. Nothing here knows the CLI or the state store."""
