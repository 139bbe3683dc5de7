"""Stand-in CUDA runtime: answers by ``$SPARSEKIT_STANDIN_CUPY`` (see ``cupy/__init__.py``)."""
import os


def _mode():
    return os.environ.get("SPARSEKIT_STANDIN_CUPY", "nodevice")


def getDeviceCount():
    mode = _mode()
    if mode == "crash":
        os._exit(3)
    if mode == "zero":
        return 0
    if mode == "device":
        return 1
    raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")


def getDeviceProperties(index):
    if index >= getDeviceCount():
        raise RuntimeError("cudaErrorInvalidDevice: invalid device ordinal")
    return {"name": b"Stand-in GPU", "major": 9, "minor": 0, "totalGlobalMem": 16 << 30, "multiProcessorCount": 132,
            "sharedMemPerBlock": 48 << 10}


def runtimeGetVersion():
    return 13000


def driverGetVersion():
    return 13000


def memGetInfo():
    return (8 << 30, 16 << 30)
