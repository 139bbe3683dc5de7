def get_cusparse_handle():
    return 1


def get_cublas_handle():
    return 2
