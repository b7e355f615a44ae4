/* Loader fixture: a name outside [a-z0-9_]+. The host must refuse it, naming
 * the file and the offending name. */
#include <aurora/aurora.h>

static const aurora_plugin descriptor = {
    .struct_size = sizeof(aurora_plugin),
    .abi_major = AURORA_ABI_MAJOR,
    .abi_minor = AURORA_ABI_MINOR,
    .name = "Bad Name!",
    .version = "1.0.0",
};

AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) {
    return &descriptor;
}
