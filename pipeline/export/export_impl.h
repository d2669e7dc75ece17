/*
 * export_impl.h - file helpers shared by the export module's writers (peft.c, merged.c).
 * Only pipeline/export includes this file.
 */
#ifndef LATHE_EXPORT_IMPL_H
#define LATHE_EXPORT_IMPL_H

#include "model/config.h"

#include <stddef.h>

/* Write len bytes to path atomically: a temporary file beside it, fsync, rename. */
lt_model_status lt_export_write_file(const char *path, const void *data, size_t len, char *err,
                                     size_t errlen);
/* Create dir unless it is already a folder. */
lt_model_status lt_export_mkdir(const char *dir, char *err, size_t errlen);
/* The whole file, NUL-terminated (caller frees), or NULL with errno set. */
char *lt_export_read_file(const char *path, size_t *len);

#endif
