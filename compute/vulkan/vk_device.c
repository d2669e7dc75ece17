/*
 * vk_device.c - finding and opening Vulkan devices: the run-time loader (dlopen of
 * libvulkan.so.1, so lathe starts without it), enumeration for `lathe devices`, "auto"
 * selection, device creation with the features the backend needs, the optional Khronos
 * validation layer with a counting debug messenger, and teardown.
 * It never records work; vk_exec.c does.
 */
#include "vk_impl.h"
#include "vk_debug.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

const char *lt_vk_result_str(VkResult r)
{
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_INCOMPLETE: return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_VALIDATION_FAILED_EXT: return "VK_ERROR_VALIDATION_FAILED_EXT";
    default: return "VkResult error";
    }
}

lt_status lt_vk_fail(lt_vk *vk, const char *what, VkResult r)
{
    lt_status st = LT_ERR_DEVICE;
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
        st = LT_ERR_OOM;
    return lt_dev_error(vk->dev, st, "%s: %s failed (%s, %d)", vk->dev->name, what,
                        lt_vk_result_str(r), (int)r);
}

/* ---- loader ------------------------------------------------------------------------------ */

/* Open the loader and fetch the global entry points. Returns NULL with a reason. */
static void *open_loader(lt_vk_fns *f, char *why, size_t whylen)
{
    const char *name = getenv("LATHE_VK_LOADER"); /* tests point this at a missing file */
    if (!name || !name[0])
        name = "libvulkan.so.1";
    void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *e = dlerror();
        snprintf(why, whylen, "no Vulkan loader: dlopen(\"%s\") failed: %s", name,
                 e ? e : "unknown error");
        return NULL;
    }
    memset(f, 0, sizeof *f);
    *(void **)&f->vkGetInstanceProcAddr = dlsym(lib, "vkGetInstanceProcAddr");
    if (!f->vkGetInstanceProcAddr) {
        snprintf(why, whylen, "the Vulkan loader %s has no vkGetInstanceProcAddr", name);
        dlclose(lib);
        return NULL;
    }
#define LT_VK_LOAD_GLOBAL(fn) f->fn = (PFN_##fn)f->vkGetInstanceProcAddr(NULL, #fn);
    LT_VK_GLOBAL_FNS(LT_VK_LOAD_GLOBAL)
#undef LT_VK_LOAD_GLOBAL
    if (!f->vkCreateInstance || !f->vkEnumerateInstanceExtensionProperties) {
        snprintf(why, whylen, "the Vulkan loader %s lacks vkCreateInstance", name);
        dlclose(lib);
        return NULL;
    }
    return lib;
}

/* The layer's specVersion, or 0 when it is not installed. */
static uint32_t layer_version(const lt_vk_fns *f, const char *layer)
{
    uint32_t n = 0, version = 0;
    if (!f->vkEnumerateInstanceLayerProperties ||
        f->vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0)
        return 0;
    VkLayerProperties *p = calloc(n, sizeof *p);
    if (p && f->vkEnumerateInstanceLayerProperties(&n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !version; i++)
            if (strcmp(p[i].layerName, layer) == 0)
                version = p[i].specVersion ? p[i].specVersion : 1;
    free(p);
    return version;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL debug_callback(
    VkDebugUtilsMessageSeverityFlagBitsEXT severity, VkDebugUtilsMessageTypeFlagsEXT types,
    const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    (void)types;
    lt_vk *vk = user;
    bool error = severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    bool warning = severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT;
    if (error || warning) {
        vk->validation_messages++;
        fprintf(stderr, "lathe vulkan validation %s: %s\n", error ? "error" : "warning",
                data && data->pMessage ? data->pMessage : "(no message)");
    }
    /* VK_TRUE on errors: the layer skips the call, so the driver never sees it */
    return error ? VK_TRUE : VK_FALSE;
}

static void fill_messenger_info(VkDebugUtilsMessengerCreateInfoEXT *mi, lt_vk *vk)
{
    memset(mi, 0, sizeof *mi);
    mi->sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT;
    mi->messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                          VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    mi->messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                      VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                      VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
    mi->pfnUserCallback = debug_callback;
    mi->pUserData = vk;
}

/* Create an instance; vk (optional) receives validation messages when validation is on. */
static VkResult create_instance(lt_vk_fns *f, lt_vk *vk, bool validation, VkInstance *out)
{
    uint32_t api = VK_API_VERSION_1_1;
    if (f->vkEnumerateInstanceVersion)
        f->vkEnumerateInstanceVersion(&api);
    if (api > VK_API_VERSION_1_3)
        api = VK_API_VERSION_1_3;
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "lathe",
        .applicationVersion = 1,
        .pEngineName = "lathe",
        .engineVersion = 1,
        .apiVersion = api,
    };
    const char *layers[1] = {VALIDATION_LAYER};
    const char *exts[1] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
    VkDebugUtilsMessengerCreateInfoEXT mi;
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pApplicationInfo = &app,
    };
    if (validation && vk) {
        fill_messenger_info(&mi, vk);
        ci.pNext = &mi;
        ci.enabledLayerCount = 1;
        ci.ppEnabledLayerNames = layers;
        ci.enabledExtensionCount = 1;
        ci.ppEnabledExtensionNames = exts;
    }
    VkResult r = f->vkCreateInstance(&ci, NULL, out);
    if (r != VK_SUCCESS)
        return r;
#define LT_VK_LOAD_INSTANCE(fn) f->fn = (PFN_##fn)f->vkGetInstanceProcAddr(*out, #fn);
    LT_VK_INSTANCE_FNS(LT_VK_LOAD_INSTANCE)
#undef LT_VK_LOAD_INSTANCE
    if (validation && vk) {
        f->vkCreateDebugUtilsMessengerEXT = (PFN_vkCreateDebugUtilsMessengerEXT)
            f->vkGetInstanceProcAddr(*out, "vkCreateDebugUtilsMessengerEXT");
        f->vkDestroyDebugUtilsMessengerEXT = (PFN_vkDestroyDebugUtilsMessengerEXT)
            f->vkGetInstanceProcAddr(*out, "vkDestroyDebugUtilsMessengerEXT");
    }
    return VK_SUCCESS;
}

static bool has_device_ext(const lt_vk_fns *f, VkPhysicalDevice pd, const char *name)
{
    uint32_t n = 0;
    if (f->vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || n == 0)
        return false;
    VkExtensionProperties *p = calloc(n, sizeof *p);
    bool found = false;
    if (p && f->vkEnumerateDeviceExtensionProperties(pd, NULL, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(p[i].extensionName, name) == 0;
    free(p);
    return found;
}

static const char *type_name(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
    }
}

/* Fill every field of info for one physical device; *bda receives bufferDeviceAddress. */
static void query_device(const lt_vk_fns *f, VkPhysicalDevice pd, int index,
                         lt_vk_device_info *info, bool *bda)
{
    memset(info, 0, sizeof *info);
    info->index = index;
    VkPhysicalDeviceProperties p0;
    f->vkGetPhysicalDeviceProperties(pd, &p0);
    bool v12 = p0.apiVersion >= VK_API_VERSION_1_2;

    VkPhysicalDeviceDriverProperties drv = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceSubgroupProperties sg = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES, .pNext = v12 ? &drv : NULL};
    VkPhysicalDeviceMaintenance3Properties m3 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES, .pNext = &sg};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                      .pNext = &m3};
    f->vkGetPhysicalDeviceProperties2(pd, &p2);
    const VkPhysicalDeviceProperties *p = &p2.properties;

    snprintf(info->name, sizeof info->name, "%s", p->deviceName);
    snprintf(info->type, sizeof info->type, "%s", type_name(p->deviceType));
    if (v12)
        snprintf(info->driver, sizeof info->driver, "%.120s %.120s", drv.driverName,
                 drv.driverInfo);
    else
        snprintf(info->driver, sizeof info->driver, "driver version 0x%x", p->driverVersion);
    snprintf(info->api_version, sizeof info->api_version, "%u.%u.%u",
             VK_API_VERSION_MAJOR(p->apiVersion), VK_API_VERSION_MINOR(p->apiVersion),
             VK_API_VERSION_PATCH(p->apiVersion));
    info->vendor_id = p->vendorID;
    info->device_id = p->deviceID;

    VkPhysicalDeviceMemoryProperties mp;
    f->vkGetPhysicalDeviceMemoryProperties(pd, &mp);
    info->n_heaps = (int)(mp.memoryHeapCount < LT_VK_MAX_HEAPS ? mp.memoryHeapCount
                                                                : LT_VK_MAX_HEAPS);
    for (int h = 0; h < info->n_heaps; h++) {
        info->heap_bytes[h] = mp.memoryHeaps[h].size;
        info->heap_device_local[h] = mp.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT;
    }
    info->max_allocation_bytes = m3.maxMemoryAllocationSize;
    info->max_storage_buffer_range = p->limits.maxStorageBufferRange;
    info->max_shared_memory_bytes = p->limits.maxComputeSharedMemorySize;
    info->max_workgroup_invocations = p->limits.maxComputeWorkGroupInvocations;
    info->subgroup_size = sg.subgroupSize;
    info->timestamps = p->limits.timestampComputeAndGraphics;

    VkPhysicalDeviceVulkan12Features f12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceVulkan11Features f11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .pNext = &f12};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                    .pNext = v12 ? &f11 : NULL};
    f->vkGetPhysicalDeviceFeatures2(pd, &f2);
    info->fp16 = v12 && f12.shaderFloat16;
    info->int8 = v12 && f12.shaderInt8;
    info->int16_storage = v12 && f11.storageBuffer16BitAccess;
    info->bf16 = has_device_ext(f, pd, "VK_KHR_shader_bfloat16");
    info->cooperative_matrix = has_device_ext(f, pd, "VK_KHR_cooperative_matrix");
    *bda = v12 && f12.bufferDeviceAddress;
}

int lt_vk_enumerate(lt_vk_device_info *out, int max, char *why, size_t whylen)
{
    char dummy[8];
    if (!why || whylen == 0) {
        why = dummy;
        whylen = sizeof dummy;
    }
    why[0] = 0;
    lt_vk_fns f;
    void *lib = open_loader(&f, why, whylen);
    if (!lib)
        return -1;
    int count = -1;
    VkInstance inst = VK_NULL_HANDLE;
    VkPhysicalDevice *pds = NULL;
    VkResult r = create_instance(&f, NULL, false, &inst);
    if (r != VK_SUCCESS) {
        snprintf(why, whylen, "vkCreateInstance failed (%s): no Vulkan driver installed?",
                 lt_vk_result_str(r));
        goto close_lib;
    }
    uint32_t n = 0;
    r = f.vkEnumeratePhysicalDevices(inst, &n, NULL);
    if (r != VK_SUCCESS) {
        snprintf(why, whylen, "vkEnumeratePhysicalDevices failed (%s)", lt_vk_result_str(r));
        goto destroy_instance;
    }
    count = 0;
    if (n == 0)
        goto destroy_instance;
    pds = calloc(n, sizeof *pds);
    if (!pds || f.vkEnumeratePhysicalDevices(inst, &n, pds) < 0) {
        snprintf(why, whylen, "vkEnumeratePhysicalDevices failed");
        count = -1;
        goto free_list;
    }
    for (uint32_t i = 0; i < n && (int)i < max && out; i++) {
        bool bda;
        query_device(&f, pds[i], (int)i, &out[i], &bda);
        count++;
    }
free_list:
    free(pds);
destroy_instance:
    f.vkDestroyInstance(inst, NULL);
close_lib:
    dlclose(lib);
    return count;
}

int lt_vk_auto_index(void)
{
    lt_vk_device_info infos[16];
    char why[256];
    int n = lt_vk_enumerate(infos, 16, why, sizeof why);
    for (int i = 0; i < n; i++)
        if (strcmp(infos[i].type, "discrete") == 0)
            return i;
    for (int i = 0; i < n; i++)
        if (strcmp(infos[i].type, "integrated") == 0)
            return i;
    return -1;
}

/* ---- open / close ------------------------------------------------------------------------ */

static void vk_destroy(lt_vk *vk)
{
    if (!vk)
        return;
    if (vk->device) {
        vk->f.vkDeviceWaitIdle(vk->device);
        lt_vk_exec_free(vk);
        lt_vk_memory_free(vk);
        vk->f.vkDestroyDevice(vk->device, NULL);
    }
    if (vk->messenger && vk->f.vkDestroyDebugUtilsMessengerEXT)
        vk->f.vkDestroyDebugUtilsMessengerEXT(vk->instance, vk->messenger, NULL);
    if (vk->instance)
        vk->f.vkDestroyInstance(vk->instance, NULL);
    if (vk->lib)
        dlclose(vk->lib);
    free(vk);
}

void lt_vk_close(lt_device *dev)
{
    vk_destroy(lt_vk_of(dev));
    dev->impl = NULL;
}

static lt_status create_device(lt_vk *vk, char *err, size_t errlen)
{
    lt_vk_fns *f = &vk->f;
    uint32_t nq = 0;
    f->vkGetPhysicalDeviceQueueFamilyProperties(vk->phys, &nq, NULL);
    VkQueueFamilyProperties qf[32];
    if (nq > 32)
        nq = 32;
    f->vkGetPhysicalDeviceQueueFamilyProperties(vk->phys, &nq, qf);
    int fam = -1;
    for (uint32_t i = 0; i < nq && fam < 0; i++) /* prefer a compute-only queue */
        if ((qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && !(qf[i].queueFlags & VK_QUEUE_GRAPHICS_BIT))
            fam = (int)i;
    for (uint32_t i = 0; i < nq && fam < 0; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT)
            fam = (int)i;
    if (fam < 0) {
        snprintf(err, errlen, "vulkan:%d (%s) has no compute queue", vk->info.index,
                 vk->info.name);
        return LT_ERR_UNSUPPORTED;
    }
    vk->queue_family = (uint32_t)fam;
    vk->timestamps = vk->info.timestamps && qf[fam].timestampValidBits > 0;

    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                   .queueFamilyIndex = vk->queue_family,
                                   .queueCount = 1,
                                   .pQueuePriorities = &prio};
    /* cooperative matrices (only when built in and offered) also need shaderFloat16 and the
     * Vulkan memory model (GL_KHR_memory_scope_semantics) */
    lt_vk_coopmat_query(vk);
    bool cm = vk->cm_want_f16 || vk->cm_want_bf16;
    VkPhysicalDeviceVulkan12Features f12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
        .bufferDeviceAddress = VK_TRUE,
        .shaderFloat16 = cm,
        .vulkanMemoryModel = cm};
    lt_vk_coopmat_chain chain;
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                    .pNext = lt_vk_coopmat_chain_init(vk, &chain, &f12)};
    /* VK_EXT_memory_budget: "free memory" is what the driver says (vk_memory.c) */
    const char *exts[4];
    uint32_t n_exts = 0;
    for (uint32_t i = 0; i < chain.n_exts && n_exts < 3; i++)
        exts[n_exts++] = chain.exts[i];
    const char *nb = getenv("LATHE_VK_NO_MEMORY_BUDGET");
    vk->memory_budget = !(nb && nb[0] && strcmp(nb, "0") != 0) &&
                        has_device_ext(f, vk->phys, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
    if (vk->memory_budget)
        exts[n_exts++] = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                              .pNext = &f2,
                              .queueCreateInfoCount = 1,
                              .pQueueCreateInfos = &qci,
                              .enabledExtensionCount = n_exts,
                              .ppEnabledExtensionNames = n_exts ? exts : NULL};
    VkResult r = f->vkCreateDevice(vk->phys, &dci, NULL, &vk->device);
    if (r != VK_SUCCESS) {
        snprintf(err, errlen, "vulkan:%d (%s): vkCreateDevice failed (%s)", vk->info.index,
                 vk->info.name, lt_vk_result_str(r));
        vk->device = VK_NULL_HANDLE;
        return r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY
                   ? LT_ERR_OOM
                   : LT_ERR_DEVICE;
    }
#define LT_VK_LOAD_DEVICE(fn)                                                                 \
    f->fn = (PFN_##fn)f->vkGetDeviceProcAddr(vk->device, #fn);                                \
    if (!f->fn) {                                                                             \
        snprintf(err, errlen, "vulkan:%d (%s): the driver lacks %s", vk->info.index,          \
                 vk->info.name, #fn);                                                         \
        return LT_ERR_UNSUPPORTED;                                                            \
    }
    LT_VK_DEVICE_FNS(LT_VK_LOAD_DEVICE)
#undef LT_VK_LOAD_DEVICE
    f->vkGetDeviceQueue(vk->device, vk->queue_family, 0, &vk->queue);
    return LT_OK;
}

lt_status lt_vk_backend_init(lt_device *dev, int index, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = 0;
    lt_status st = LT_ERR_DEVICE;
    VkPhysicalDevice *pds = NULL;
    lt_vk *vk = calloc(1, sizeof *vk);
    if (!vk) {
        snprintf(err, errlen, "vulkan:%d: out of host memory", index);
        return LT_ERR_OOM;
    }
    vk->dev = dev;
    vk->lib = open_loader(&vk->f, err, errlen);
    if (!vk->lib) {
        st = LT_ERR_UNSUPPORTED;
        goto fail;
    }
    const char *val = getenv("LATHE_VK_VALIDATION");
    vk->validation_layer =
        val && val[0] && strcmp(val, "0") != 0 ? layer_version(&vk->f, VALIDATION_LAYER) : 0;
    vk->validation = vk->validation_layer != 0;
    VkResult r = create_instance(&vk->f, vk, vk->validation, &vk->instance);
    if (r != VK_SUCCESS) {
        vk->instance = VK_NULL_HANDLE;
        snprintf(err, errlen, "vulkan:%d: vkCreateInstance failed (%s): no Vulkan driver?",
                 index, lt_vk_result_str(r));
        st = LT_ERR_UNSUPPORTED;
        goto fail;
    }
    if (vk->validation && vk->f.vkCreateDebugUtilsMessengerEXT) {
        VkDebugUtilsMessengerCreateInfoEXT mi;
        fill_messenger_info(&mi, vk);
        if (vk->f.vkCreateDebugUtilsMessengerEXT(vk->instance, &mi, NULL, &vk->messenger) !=
            VK_SUCCESS)
            vk->messenger = VK_NULL_HANDLE;
    }
    uint32_t n = 0;
    r = vk->f.vkEnumeratePhysicalDevices(vk->instance, &n, NULL);
    if (r != VK_SUCCESS || index < 0 || (uint32_t)index >= n) {
        snprintf(err, errlen, "no Vulkan device vulkan:%d (%u device%s found%s)", index, n,
                 n == 1 ? "" : "s", n ? "; see `lathe devices`" : "");
        st = LT_ERR_NOT_FOUND;
        goto fail;
    }
    pds = calloc(n, sizeof *pds);
    if (!pds || vk->f.vkEnumeratePhysicalDevices(vk->instance, &n, pds) < 0) {
        snprintf(err, errlen, "vulkan:%d: vkEnumeratePhysicalDevices failed", index);
        goto fail;
    }
    vk->phys = pds[index];
    bool bda = false;
    query_device(&vk->f, vk->phys, index, &vk->info, &bda);
    vk->f.vkGetPhysicalDeviceProperties(vk->phys, &vk->props);
    vk->f.vkGetPhysicalDeviceMemoryProperties(vk->phys, &vk->memprops);
    vk->timestamp_period_ns = vk->props.limits.timestampPeriod;
    if (vk->props.apiVersion < VK_API_VERSION_1_2 || !bda) {
        snprintf(err, errlen,
                 "vulkan:%d (%s) cannot run lathe: it needs Vulkan 1.2 with the "
                 "bufferDeviceAddress feature (device offers Vulkan %s%s)",
                 index, vk->info.name, vk->info.api_version,
                 bda ? "" : ", no bufferDeviceAddress");
        st = LT_ERR_UNSUPPORTED;
        goto fail;
    }
    st = create_device(vk, err, errlen);
    if (st != LT_OK)
        goto fail;
    snprintf(dev->name, sizeof dev->name, "vulkan:%d (%.200s, %.16s)", index, vk->info.name,
             vk->info.type);
    dev->impl = vk;
    dev->be = &lt_vk_backend;
    dev->kind = LT_DEVICE_VULKAN;
    dev->n_threads = 1;
    st = lt_vk_memory_init(vk);
    if (st == LT_OK)
        st = lt_vk_exec_init(vk);
    if (st == LT_OK)
        lt_vk_coopmat_selftest(vk);
    if (st != LT_OK) {
        snprintf(err, errlen, "%s", dev->err[0] ? dev->err : "vulkan: initialisation failed");
        dev->impl = NULL;
        dev->be = NULL;
        goto fail;
    }
    free(pds);
    return LT_OK;
fail:
    free(pds);
    vk_destroy(vk);
    return st;
}

int lt_vk_validation_messages(const lt_device *dev)
{
    if (!dev || dev->kind != LT_DEVICE_VULKAN || !dev->impl)
        return -1;
    const lt_vk *vk = lt_vk_of(dev);
    return vk->validation ? vk->validation_messages : -1;
}
