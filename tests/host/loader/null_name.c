/* Loader fixture: a descriptor without a name. The name is required (it
 * names the plugin in logs, metrics and config); the host must refuse it. */
#include <aurora/aurora.h>

static const aurora_plugin descriptor = {
    .struct_size = sizeof(aurora_plugin),
    .abi_major = AURORA_ABI_MAJOR,
    .abi_minor = AURORA_ABI_MINOR,
    .name = NULL,
    .version = "1.0.0",
};

AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) {
    return &descriptor;
}
