"""sparsekit backend ``torch`` (placeholder until implemented)."""
def info():
    return {"name": "torch", "device": "?", "kernels": {}, "dtypes": [], "probe": lambda: "not implemented yet"}
