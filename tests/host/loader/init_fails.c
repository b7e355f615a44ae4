/* Loader fixture: a valid descriptor whose init logs why and fails. The host
 * must show the plugin's log line, call no other hook (not even shutdown),
 * and exit with code 2. */
#include <aurora/aurora.h>

#include <stdio.h>
#include <stdlib.h>

static aurora_status init_fails_init(const aurora_host_api *host, aurora_plugin_ctx *self, void **state_out) {
    (void)state_out;
    host->log_msg(self, AURORA_LOG_ERROR, "init_fails: refusing to start: this fixture always fails its init");
    return AURORA_ERR;
}

/* Must never run: a plugin whose init failed gets no further call. */
static void init_fails_shutdown(void *state) {
    (void)state;
    fputs("init_fails: BUG: shutdown called after a failed init\n", stderr);
    abort();
}

static const aurora_plugin descriptor = {
    .struct_size = sizeof(aurora_plugin),
    .abi_major = AURORA_ABI_MAJOR,
    .abi_minor = AURORA_ABI_MINOR,
    .name = "init_fails",
    .version = "1.0.0",
    .init = init_fails_init,
    .shutdown = init_fails_shutdown,
};

AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) {
    return &descriptor;
}
