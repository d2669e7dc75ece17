#version 450
// matmul_big.comp - the tiled matmul with 128 x 128 tiles and 8 x 8 register tiles (256
// invocations, 17 KiB of shared memory) for large products on GPUs. See lt_matmul_body.glsl.
#define BM 128u
#define BN 128u
#define BK 16u
#define TM 8u
#define TN 8u
#include "lt_matmul_body.glsl"
