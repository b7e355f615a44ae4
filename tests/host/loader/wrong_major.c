/* Loader fixture: built for a future ABI major (2.0). The host must refuse it,
 * naming the file and both versions ("2.0" and its own "1.x"). */
#include <aurora/aurora.h>

static const aurora_plugin descriptor = {
    .struct_size = sizeof(aurora_plugin),
    .abi_major = 2,
    .abi_minor = 0,
    .name = "wrong_major",
    .version = "1.0.0",
};

AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) {
    return &descriptor;
}
