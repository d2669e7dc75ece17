// lt_reduce.glsl - workgroup reductions in a fixed tree order, so results are bit-identical
// run after run. Define WG (a power of two, the local size) before including.
shared float lt_red[WG];

float lt_wg_sum(float v)
{
    uint t = gl_LocalInvocationID.x;
    lt_red[t] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (t < s)
            lt_red[t] += lt_red[t + s];
        barrier();
    }
    float r = lt_red[0];
    barrier();
    return r;
}

float lt_wg_max(float v)
{
    uint t = gl_LocalInvocationID.x;
    lt_red[t] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (t < s)
            lt_red[t] = max(lt_red[t], lt_red[t + s]);
        barrier();
    }
    float r = lt_red[0];
    barrier();
    return r;
}
