#version 450
// matmul_coopmat.comp - the cooperative-matrix matmul for f16 inputs (fp32 accumulation).
// Built only when glslc accepts GL_KHR_cooperative_matrix. See lt_matmul_coopmat.glsl.
#define ELT float16_t
#include "lt_matmul_coopmat.glsl"
