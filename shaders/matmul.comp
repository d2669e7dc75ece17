#version 450
// matmul.comp - the tiled matmul, 64 x 64 tiles with 8 x 8 register tiles (64 invocations,
// 9 KiB of shared memory): fits every Vulkan device. See lt_matmul_body.glsl.
#define BM 64u
#define BN 64u
#define BK 16u
#define TM 8u
#define TN 8u
#include "lt_matmul_body.glsl"
