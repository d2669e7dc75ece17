#version 450
// matmul_tx.comp - the tiled matmul reading A and B through texel buffers; tile sizes come
// from specialization constants chosen from the device's limits. See lt_matmul_tx.glsl.
#include "lt_matmul_tx.glsl"
