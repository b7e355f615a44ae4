/* Loader fixture: a library that does not export aurora_plugin_entry (here a
 * typo of it). The host must refuse it, naming the file and the symbol. */
#include <aurora/aurora.h>

static const aurora_plugin descriptor = {
    .struct_size = sizeof(aurora_plugin),
    .abi_major = AURORA_ABI_MAJOR,
    .abi_minor = AURORA_ABI_MINOR,
    .name = "no_entry",
};

AURORA_EXPORT const aurora_plugin *aurora_plugin_entrypoint(void) {
    return &descriptor;
}
