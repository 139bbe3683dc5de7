"""sparsekit backend ``cupy`` (placeholder until implemented)."""
def info():
    return {"name": "cupy", "device": "?", "kernels": {}, "dtypes": [], "probe": lambda: "not implemented yet"}
