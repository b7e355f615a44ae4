/* Loader fixture: built for a minor the host does not know yet
 * (AURORA_ABI_MINOR + 1): it may call functions the host lacks, so the host
 * must refuse it, naming the file and both versions. */
#include <aurora/aurora.h>

static const aurora_plugin descriptor = {
    .struct_size = sizeof(aurora_plugin),
    .abi_major = AURORA_ABI_MAJOR,
    .abi_minor = AURORA_ABI_MINOR + 1,
    .name = "newer_minor",
    .version = "1.0.0",
};

AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) {
    return &descriptor;
}
