/*
 * vk_debug.h - test hooks of the Vulkan backend. Not part of the compute contract: only tests
 * and diagnostics include it.
 *
 * Setting LATHE_VK_VALIDATION=1 before lt_device_open("vulkan:N") enables the Khronos
 * validation layer (when installed) with a debug messenger that counts every error and
 * warning; errors are also stopped before they reach the driver.
 * LATHE_VK_LOADER names the loader library to dlopen instead of libvulkan.so.1.
 */
#ifndef LATHE_VK_DEBUG_H
#define LATHE_VK_DEBUG_H

#include "compute.h"

/* Errors + warnings counted so far on a Vulkan device, or -1 when validation is not active
 * (not requested, layer not installed, or not a Vulkan device). */
int lt_vk_validation_messages(const lt_device *dev);

#endif
