/*
 * vk_ops.c - the Vulkan backend's op table (temporary skeleton while the backend lands).
 */
#include "vk_impl.h"



lt_status lt_vk_memory_init(lt_vk *vk)
{
    return lt_dev_error(vk->dev, LT_ERR_UNSUPPORTED, "%s: the Vulkan backend is not built yet",
                        vk->dev->name);
}
void lt_vk_memory_free(lt_vk *vk) { (void)vk; }
lt_status lt_vk_exec_init(lt_vk *vk) { (void)vk; return LT_ERR_UNSUPPORTED; }
void lt_vk_exec_free(lt_vk *vk) { (void)vk; }

const lt_backend lt_vk_backend = {.name = "vulkan", .close = lt_vk_close};
