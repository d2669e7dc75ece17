#version 450
// fill.comp - t[i] = value for an f32 tensor bound at an element offset.
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer Out { float data[]; };
layout(push_constant) uniform Params {
    uint offset; // elements
    uint n;
    float value;
} p;
void main()
{
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 256u;
    if (i < p.n)
        data[p.offset + i] = p.value;
}
