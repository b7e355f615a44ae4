/*
 * ok_fixture: the plugin placed after ratelimit in the tests, so that
 * "delivered" and "rate_limited" can be told apart before the chat plugin
 * exists.
 *
 *   authenticate: ?user=NAME -> ACCEPT as NAME; otherwise ABSTAIN (the
 *                 tests' configs allow anonymous connections).
 *   on_message:   every frame -> {"type":"ok","of":<its type>,"ref":<its ref>} (REPLY)
 */
#include <aurora/aurora.h>

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    const aurora_host_api *host;
} fixture;

static fixture g_fixture; /* one instance per process is enough for a fixture */

static aurora_status ok_init(const aurora_host_api *host, aurora_plugin_ctx *self, void **state) {
    (void)self;
    g_fixture.host = host;
    *state = &g_fixture;
    return AURORA_OK;
}

static aurora_auth_verdict ok_authenticate(void *state, const aurora_handshake *hs, aurora_identity *id) {
    const fixture *f = state;
    aurora_str user = f->host->hs_query(hs, "user");
    if (user.len == 0) return AURORA_AUTH_ABSTAIN;
    id->user_id = user;
    return AURORA_AUTH_ACCEPT;
}

static aurora_verdict ok_on_message(void *state, aurora_conn *conn, aurora_msg *msg) {
    const fixture *f = state;
    (void)conn;
    aurora_str payload = f->host->msg_payload(msg);
    aurora_str type = f->host->msg_type(msg);
    cJSON *frame = cJSON_ParseWithLength(payload.ptr, payload.len);
    cJSON *reply = cJSON_CreateObject();
    char *type_text = malloc(type.len + 1);
    if (frame == NULL || reply == NULL || type_text == NULL) {
        cJSON_Delete(frame);
        cJSON_Delete(reply);
        free(type_text);
        return AURORA_DROP;
    }
    memcpy(type_text, type.ptr, type.len);
    type_text[type.len] = '\0';
    cJSON_AddStringToObject(reply, "type", "ok");
    cJSON_AddStringToObject(reply, "of", type_text);
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(frame, "ref");
    if (ref != NULL) cJSON_AddItemToObject(reply, "ref", cJSON_Duplicate(ref, 1));
    char *text = cJSON_PrintUnformatted(reply);
    aurora_verdict v = AURORA_DROP;
    if (text != NULL && f->host->msg_set_reply(msg, aurora_str_make(text, strlen(text))) == AURORA_OK) v = AURORA_REPLY;
    cJSON_free(text);
    cJSON_Delete(reply);
    cJSON_Delete(frame);
    free(type_text);
    return v;
}

static const aurora_plugin ok_plugin = {
    .struct_size = sizeof(aurora_plugin),
    .abi_major = AURORA_ABI_MAJOR,
    .abi_minor = AURORA_ABI_MINOR,
    .name = "ok_fixture",
    .version = "1.0.0",
    .description = "test fixture: answers every frame with {\"type\":\"ok\"}",
    .init = ok_init,
    .authenticate = ok_authenticate,
    .on_message = ok_on_message,
};

AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) { return &ok_plugin; }
