/* The one activation-code space of every kernel (C side; _act.pxd declares the same names to
 * Cython). The epilogue kernels (conv, depthwise, separable, transposed conv, dense,
 * locally-connected) fuse the codes below KL_ACT_EPILOGUE_END; the recurrent kernels
 * (recurrent, convlstm) take every code below KL_ACT_END. */
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
    KL_ACT_END = 7
};
#define KL_ACT_EPILOGUE_END KL_ACT_TANH
#endif
