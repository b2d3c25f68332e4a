# The one activation-code space of every kernel, defined once in activation_codes.h (so the C
# tiles and the Cython loops read the same numbers). The epilogue kernels (conv, depthwise,
# separable, transposed conv, dense, locally-connected) fuse the codes below ACT_EPILOGUE_END;
# the recurrent kernels (recurrent, convlstm) take the gate codes, below ACT_GATE_END; the
# elementwise kernel (activation.pyx) every code below ACT_END. Each kernel module
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
        ACT_SWISH "KL_ACT_SWISH"
        ACT_HARD_SWISH "KL_ACT_HARD_SWISH"
        ACT_GELU "KL_ACT_GELU"
        ACT_GELU_TANH "KL_ACT_GELU_TANH"
        ACT_ELU "KL_ACT_ELU"
        ACT_SELU "KL_ACT_SELU"
        ACT_SOFTPLUS "KL_ACT_SOFTPLUS"
        ACT_SOFTSIGN "KL_ACT_SOFTSIGN"
        ACT_EXPONENTIAL "KL_ACT_EXPONENTIAL"
        ACT_MISH "KL_ACT_MISH"
        ACT_END "KL_ACT_END"
    int ACT_EPILOGUE_END "KL_ACT_EPILOGUE_END"
    int ACT_GATE_END "KL_ACT_GATE_END"


cdef inline dict activation_codes():
    """name -> code, for a module's Python-level ``ACTIVATIONS``."""
    return {"linear": ACT_LINEAR, "relu": ACT_RELU, "relu6": ACT_RELU6, "tanh": ACT_TANH,
            "sigmoid": ACT_SIGMOID, "hard_sigmoid": ACT_HARD_SIGMOID,
            "hard_sigmoid_k3": ACT_HARD_SIGMOID_K3, "swish": ACT_SWISH, "hard_swish": ACT_HARD_SWISH,
            "gelu": ACT_GELU, "gelu_tanh": ACT_GELU_TANH, "elu": ACT_ELU, "selu": ACT_SELU,
            "softplus": ACT_SOFTPLUS, "softsign": ACT_SOFTSIGN, "exponential": ACT_EXPONENTIAL,
            "mish": ACT_MISH}


cdef inline int check_epilogue_act(int act, str where) except -1:
    """ValueError unless ``act`` fuses into a GEMM epilogue (linear, relu or relu6)."""
    if act < 0 or act >= ACT_EPILOGUE_END:
        raise ValueError(f"{where}: activation code {act} does not fuse into the epilogue "
                         f"(expected {<int>ACT_LINEAR} linear, {<int>ACT_RELU} relu or {<int>ACT_RELU6} relu6)")
    return 0


cdef inline int check_gate_act(int act, str where) except -1:
    """ValueError unless ``act`` is a gate code (the recurrent kernels': below ACT_GATE_END)."""
    if act < 0 or act >= ACT_GATE_END:
        raise ValueError(f"{where}: activation code {act} is not a gate activation "
                         f"(expected 0 to {<int>ACT_GATE_END - 1})")
    return 0


cdef inline int check_act(int act, str where) except -1:
    """ValueError unless ``act`` is a code of this space."""
    if act < 0 or act >= ACT_END:
        raise ValueError(f"{where}: unknown activation code {act} (expected 0 to {<int>ACT_END - 1})")
    return 0
