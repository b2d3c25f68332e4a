/* The one activation-code space of every kernel (C side; _act.pxd declares the same names to
 * Cython). The conv, dense, depthwise and separable kernels fuse every code (relu and relu6 in
 * their register tiles, the others through act_map.h on each finished block); the transposed
 * conv and locally-connected kernels fuse the codes below KL_ACT_EPILOGUE_END; the recurrent kernels
 * (recurrent, convlstm) take the codes below KL_ACT_GATE_END as gate activations; the
 * elementwise kernel (activation.pyx, act_map.h) takes every code below KL_ACT_END. */
#ifndef KLAYERS_ACTIVATION_CODES_H
#define KLAYERS_ACTIVATION_CODES_H
enum kl_activation {
    KL_ACT_LINEAR = 0,
    KL_ACT_RELU = 1,              /* max(x, 0); NaN stays NaN, as tf.nn.relu */
    KL_ACT_RELU6 = 2,             /* min(max(x, 0), 6); NaN stays NaN */
    KL_ACT_TANH = 3,
    KL_ACT_SIGMOID = 4,
    KL_ACT_HARD_SIGMOID = 5,      /* Keras 2: clip(0.2 x + 0.5, 0, 1) */
    KL_ACT_HARD_SIGMOID_K3 = 6,   /* Keras 3: relu6(x + 3) / 6 */
    KL_ACT_SWISH = 7,             /* swish / silu: x * sigmoid(x) */
    KL_ACT_HARD_SWISH = 8,        /* hard swish / hard silu: x * relu6(x + 3) / 6 */
    KL_ACT_GELU = 9,              /* 0.5 x erfc(-x / sqrt 2) */
    KL_ACT_GELU_TANH = 10,        /* 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) */
    KL_ACT_ELU = 11,              /* alpha 1 */
    KL_ACT_SELU = 12,
    KL_ACT_SOFTPLUS = 13,
    KL_ACT_SOFTSIGN = 14,
    KL_ACT_EXPONENTIAL = 15,
    KL_ACT_MISH = 16,
    KL_ACT_END = 17
};
#define KL_ACT_EPILOGUE_END KL_ACT_TANH
#define KL_ACT_GATE_END KL_ACT_SWISH
#endif
