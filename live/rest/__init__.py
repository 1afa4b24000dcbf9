"""HTTP (REST) handlers of every feature, one module per feature, each with `register(app, node)`."""
