/*
 * frozen_v1_0_plugin.c - a plugin built against the FROZEN v1.0 headers in
 * tests/abi/v1_0/include (never against sdk/include). Every later host must
 * load it and call it correctly: that is what "an older plugin in a newer
 * host always loads" means in aurora/common.h.
 *
 * It touches the v1.0 host functions at their v1.0 offsets (log,
 * config_json, msg_type, msg_set_reply) and answers one message type:
 *   {"type":"frozen_ping"}  ->  {"type":"frozen","abi":"1.0"}   (REPLY)
 * and passes everything else on (CONTINUE).
 *
 * Do not "update" this file or the headers it includes when the ABI grows:
 * its value is that it does not change. See docs/abi.md.
 */
#include <aurora/host_api.h>
#include <aurora/plugin.h>

#include <stdlib.h>
#include <string.h>

/* Written once in init (main thread), then only read by on_message (service
 * thread); freed in shutdown. */
typedef struct frozen_state {
    const aurora_host_api *host;
    aurora_plugin_ctx *self;
} frozen_state;

static int str_equals(aurora_str s, const char *lit) {
    size_t n = strlen(lit);
    return s.len == n && (n == 0 || memcmp(s.ptr, lit, n) == 0);
}

static aurora_status frozen_init(const aurora_host_api *host, aurora_plugin_ctx *self, void **state_out) {
    frozen_state *st = malloc(sizeof *st);
    if (st == NULL) {
        host->log_msg(self, AURORA_LOG_ERROR, "out of memory");
        return AURORA_ERR_NOMEM;
    }
    st->host = host;
    st->self = self;
    aurora_str config = host->config_json(self);
    host->log_msg(self, AURORA_LOG_INFO, "built against ABI 1.0, running in a host with ABI %u.%u (config %.*s)",
              (unsigned)host->abi_major, (unsigned)host->abi_minor, (int)config.len,
              config.ptr != NULL ? config.ptr : "");
    *state_out = st;
    return AURORA_OK;
}

static void frozen_shutdown(void *state) {
    free(state);
}

static aurora_verdict frozen_on_message(void *state, aurora_conn *conn, aurora_msg *msg) {
    frozen_state *st = state;
    (void)conn;
    if (!str_equals(st->host->msg_type(msg), "frozen_ping"))
        return AURORA_CONTINUE;
    if (st->host->msg_set_reply(msg, AURORA_STR_LIT("{\"type\":\"frozen\",\"abi\":\"1.0\"}")) != AURORA_OK)
        return AURORA_DROP;
    return AURORA_REPLY;
}

static const aurora_plugin frozen_descriptor = {
    .struct_size = sizeof(aurora_plugin),
    .abi_major = AURORA_ABI_MAJOR, /* 1, from the frozen header */
    .abi_minor = AURORA_ABI_MINOR, /* 0, from the frozen header */
    .name = "frozen_v1_0",
    .version = "1.0.0",
    .description = "built against the frozen ABI v1.0 headers (tests/abi)",
    .init = frozen_init,
    .shutdown = frozen_shutdown,
    .on_message = frozen_on_message,
};

AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) {
    return &frozen_descriptor;
}
