#version 450
// matmul.comp - the tiled matmul, 64 x 64 tiles with 4 x 4 register tiles (256 invocations,
// 9 KiB of shared memory): fits every Vulkan device. See lt_matmul_body.glsl.
#define BM 64u
#define BN 64u
#define BK 16u
#define TM 4u
#define TN 4u
#include "lt_matmul_body.glsl"
