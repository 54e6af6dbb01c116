"""Figure builders, one module per task. Each function takes data and returns a figure."""
