def check_availability(name):
    return name in ("spmm", "spmv")
