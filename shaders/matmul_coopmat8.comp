#version 450
// matmul_coopmat8.comp - the cooperative-matrix matmul for f16 inputs on (8, 8, 8) matrices,
// the only configuration lavapipe (Mesa 26.1) lists. See lt_matmul_coopmat.glsl.
#define ELT float16_t
#define CM 8
#include "lt_matmul_coopmat.glsl"
