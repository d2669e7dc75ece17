/*
 * shaders.h - the SPIR-V of every compute shader, embedded at build time (shaders/embed.cmake).
 * Read-only data; nothing here touches Vulkan.
 */
#ifndef LATHE_SHADERS_H
#define LATHE_SHADERS_H

#include <stddef.h>
#include <stdint.h>

typedef struct lt_shader_blob {
    const char *name;      /* file name without .comp */
    const uint32_t *words; /* SPIR-V */
    size_t bytes;
} lt_shader_blob;

/* The shader named name, or NULL. */
const lt_shader_blob *lt_shader_find(const char *name);
/* Every shader; *n receives the count. */
const lt_shader_blob *lt_shader_all(int *n);

#endif
