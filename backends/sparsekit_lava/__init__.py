"""sparsekit backends ``lava`` and ``lava-fixed`` (placeholder until implemented)."""
def info_float():
    return {"name": "lava", "device": "?", "kernels": {}, "dtypes": [], "probe": lambda: "not implemented yet"}
def info_fixed():
    return {"name": "lava-fixed", "device": "?", "kernels": {}, "dtypes": [], "probe": lambda: "not implemented yet"}
