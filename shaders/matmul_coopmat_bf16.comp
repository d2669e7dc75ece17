#version 450
// matmul_coopmat_bf16.comp - the cooperative-matrix matmul for bf16 inputs (fp32
// accumulation). Built only when glslc accepts GL_KHR_cooperative_matrix and GL_EXT_bfloat16.
// See lt_matmul_coopmat.glsl.
#extension GL_EXT_bfloat16 : require
#define ELT bfloat16_t
#include "lt_matmul_coopmat.glsl"
