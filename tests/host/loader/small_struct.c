/* Loader fixture: struct_size smaller than the v1.0 descriptor
 * (AURORA_PLUGIN_V1_0_SIZE). No real plugin can produce it; the host must
 * refuse it rather than read past the plugin's descriptor. */
#include <aurora/aurora.h>

static const aurora_plugin descriptor = {
    .struct_size = (uint32_t)offsetof(aurora_plugin, is_ready), /* one hook short */
    .abi_major = AURORA_ABI_MAJOR,
    .abi_minor = AURORA_ABI_MINOR,
    .name = "small_struct",
    .version = "1.0.0",
};

AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) {
    return &descriptor;
}
