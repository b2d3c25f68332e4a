# The one activation-code space of every kernel, defined once in activation_codes.h (so the C
# tiles and the Cython loops read the same numbers). The epilogue kernels (conv, depthwise,
# separable, transposed conv, dense, locally-connected) fuse the codes below ACT_EPILOGUE_END;
# the recurrent kernels (recurrent, convlstm) take every code below ACT_END. Each kernel module
# exposes them to Python as ``ACTIVATIONS = activation_codes()``; klayers.ops.common maps
# klayers.activations functions to them (the only mapping).

cdef extern from "activation_codes.h":
    cdef enum kl_activation:
        ACT_LINEAR "KL_ACT_LINEAR"
        ACT_RELU "KL_ACT_RELU"
        ACT_RELU6 "KL_ACT_RELU6"
        ACT_TANH "KL_ACT_TANH"
        ACT_SIGMOID "KL_ACT_SIGMOID"
        ACT_HARD_SIGMOID "KL_ACT_HARD_SIGMOID"
        ACT_HARD_SIGMOID_K3 "KL_ACT_HARD_SIGMOID_K3"
        ACT_END "KL_ACT_END"
    int ACT_EPILOGUE_END "KL_ACT_EPILOGUE_END"


cdef inline dict activation_codes():
    """name -> code, for a module's Python-level ``ACTIVATIONS``."""
    return {"linear": ACT_LINEAR, "relu": ACT_RELU, "relu6": ACT_RELU6, "tanh": ACT_TANH,
            "sigmoid": ACT_SIGMOID, "hard_sigmoid": ACT_HARD_SIGMOID,
            "hard_sigmoid_k3": ACT_HARD_SIGMOID_K3}


cdef inline int check_epilogue_act(int act, str where) except -1:
    """ValueError unless ``act`` fuses into a GEMM epilogue (linear, relu or relu6)."""
    if act < 0 or act >= ACT_EPILOGUE_END:
        raise ValueError(f"{where}: activation code {act} does not fuse into the epilogue "
                         f"(expected {<int>ACT_LINEAR} linear, {<int>ACT_RELU} relu or {<int>ACT_RELU6} relu6)")
    return 0


cdef inline int check_act(int act, str where) except -1:
    """ValueError unless ``act`` is a code of this space."""
    if act < 0 or act >= ACT_END:
        raise ValueError(f"{where}: unknown activation code {act} (expected 0 to {<int>ACT_END - 1})")
    return 0
