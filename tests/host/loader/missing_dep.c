/* Loader fixture: needs libaurora_loader_gone.so, which the dynamic loader
 * cannot find (no RPATH, not in the system folders). dlopen fails; the host
 * must report dlerror()'s text ("cannot open shared object file") and the
 * file. */
#include <aurora/aurora.h>

int aurora_loader_gone_answer(void); /* from libaurora_loader_gone.so */

static aurora_status missing_dep_init(const aurora_host_api *host, aurora_plugin_ctx *self, void **state_out) {
    (void)state_out;
    host->log_msg(self, AURORA_LOG_INFO, "the answer is %d", aurora_loader_gone_answer());
    return AURORA_OK;
}

static const aurora_plugin descriptor = {
    .struct_size = sizeof(aurora_plugin),
    .abi_major = AURORA_ABI_MAJOR,
    .abi_minor = AURORA_ABI_MINOR,
    .name = "missing_dep",
    .version = "1.0.0",
    .init = missing_dep_init,
};

AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) {
    return &descriptor;
}
