"""Socket.IO handlers of every feature, one module per feature, each with `register(node)`."""
