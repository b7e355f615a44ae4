/* Loader fixture: aurora_plugin_entry returns NULL instead of a descriptor.
 * The host must refuse it (not crash), naming the file. */
#include <aurora/aurora.h>

AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) {
    return NULL;
}
