/*
 * echo.c - the reference plugin: every part of a plugin, in one small file.
 *
 *   {"type":"echo","text":"hi"}     -> {"type":"echo","text":"hi"}        (REPLY)
 *   {"type":"join","room":"lobby"}  -> {"type":"joined","room":"lobby"}   (REPLY)
 *                                      or {"type":"error","code":...}
 *   {"type":"drop"}                 -> nothing                            (DROP)
 *   anything else                   -> the next plugin                    (CONTINUE)
 *
 * With "mode": "raw" every message, text or binary, JSON or not, is sent back
 * verbatim in a frame of its kind (what WebSocket conformance suites such as
 * Autobahn expect); the host hands such messages over because init asks for
 * them (host->accept_raw_messages, ABI 1.1).
 *
 * With `tick_ms` > 0 a worker thread broadcasts {"type":"tick","n":N} to the
 * room `tick_room` every tick_ms milliseconds. Replies echo the request's
 * "ref" when it has one. docs/plugin-guide.md walks through this file hook
 * by hook; README.md lists the settings.
 *
 * JSON goes through cJSON in both directions, so every string we emit is
 * escaped by the library, never by hand.
 */
#include <aurora/aurora.h>

#include <cjson/cJSON.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Settings: declared once as a table, validated in init ---------------- */

typedef enum echo_setting_type { ECHO_SETTING_INT, ECHO_SETTING_STRING } echo_setting_type;

/* The parsed settings. Written by init on the main thread, read-only after. */
typedef struct echo_config {
    int64_t tick_ms;  /* milliseconds between two ticks; 0 = no ticks */
    char *tick_room;  /* owned (malloc); the room that receives the ticks */
    size_t tick_room_len;
    char *mode;       /* owned (malloc); "json" or "raw" */
    int raw;          /* mode is "raw" */
} echo_config;

typedef struct echo_setting {
    const char *key;
    echo_setting_type type;
    size_t offset;            /* of the value in echo_config */
    int64_t min, max;         /* INT: the value's range; STRING: its length in bytes */
    int64_t default_int;
    const char *default_text;
} echo_setting;

static const echo_setting echo_settings[] = {
    {"tick_ms", ECHO_SETTING_INT, offsetof(echo_config, tick_ms), 0, 86400000, 0, NULL},
    {"tick_room", ECHO_SETTING_STRING, offsetof(echo_config, tick_room), 1, 256, 0, "ticks"},
    {"mode", ECHO_SETTING_STRING, offsetof(echo_config, mode), 3, 4, 0, "json"},
};
#define ECHO_SETTING_COUNT (sizeof echo_settings / sizeof echo_settings[0])

/* ---- The plugin's state ---------------------------------------------------- */

/* Thread contract: filled by init (main thread) before any other hook runs
 * and before the tick worker starts; afterwards only read, by the service
 * thread (on_message) and by the tick worker. shutdown frees it after the
 * host joined the worker. No lock is needed because nothing is written. */
typedef struct echo_state {
    const aurora_host_api *host;
    aurora_plugin_ctx *self;
    echo_config config;
} echo_state;

static int str_equals(aurora_str s, const char *lit) {
    size_t n = strlen(lit);
    return s.len == n && (n == 0 || memcmp(s.ptr, lit, n) == 0);
}

static char *copy_text(const char *text, size_t len) {
    char *copy = malloc(len + 1);
    if (copy != NULL) {
        memcpy(copy, text, len);
        copy[len] = '\0';
    }
    return copy;
}

static const echo_setting *find_setting(const char *key) {
    for (size_t i = 0; i < ECHO_SETTING_COUNT; i++)
        if (strcmp(echo_settings[i].key, key) == 0)
            return &echo_settings[i];
    return NULL;
}

/* Stores `value` (or the default when NULL) for one setting. Logs and
 * returns an error when the value has the wrong type or is out of range. */
static aurora_status apply_setting(echo_state *st, const echo_setting *s, const cJSON *value) {
    char *field = (char *)&st->config + s->offset;
    if (s->type == ECHO_SETTING_INT) {
        int64_t v = s->default_int;
        if (value != NULL) {
            double d = cJSON_IsNumber(value) ? value->valuedouble : -1.0;
            /* Range first: converting an out-of-range double is undefined. */
            if (!cJSON_IsNumber(value) || d < (double)s->min || d > (double)s->max || d != (double)(int64_t)d) {
                st->host->log_msg(st->self, AURORA_LOG_ERROR,
                              "config: \"%s\" must be an integer from %" PRId64 " to %" PRId64, s->key, s->min,
                              s->max);
                return AURORA_ERR_INVALID;
            }
            v = (int64_t)d;
        }
        memcpy(field, &v, sizeof v);
        return AURORA_OK;
    }
    const char *text = s->default_text;
    if (value != NULL) {
        size_t len = cJSON_IsString(value) ? strlen(value->valuestring) : 0;
        if (!cJSON_IsString(value) || len < (size_t)s->min || len > (size_t)s->max) {
            st->host->log_msg(st->self, AURORA_LOG_ERROR,
                          "config: \"%s\" must be a string of %" PRId64 " to %" PRId64 " bytes", s->key, s->min,
                          s->max);
            return AURORA_ERR_INVALID;
        }
        text = value->valuestring;
    }
    char *copy = copy_text(text, strlen(text));
    if (copy == NULL)
        return AURORA_ERR_NOMEM;
    memcpy(field, &copy, sizeof copy);
    return AURORA_OK;
}

/* Logs the unknown key `key` with the list of known ones. */
static void log_unknown_setting(const echo_state *st, const char *key) {
    char known[128] = "";
    for (size_t i = 0; i < ECHO_SETTING_COUNT; i++) {
        size_t used = strlen(known);
        snprintf(known + used, sizeof known - used, "%s%s", i == 0 ? "" : ", ", echo_settings[i].key);
    }
    st->host->log_msg(st->self, AURORA_LOG_ERROR, "config: unknown setting \"%s\" (known: %s)", key, known);
}

/* Parses host->config_json into st->config. Every key must be a known
 * setting: a typo is an error at start-up, not a silent default. */
static aurora_status parse_config(echo_state *st) {
    aurora_str text = st->host->config_json(st->self);
    cJSON *root = cJSON_ParseWithLength(text.ptr, text.len);
    if (!cJSON_IsObject(root)) {
        st->host->log_msg(st->self, AURORA_LOG_ERROR, "config: expected a JSON object");
        cJSON_Delete(root);
        return AURORA_ERR_INVALID;
    }
    aurora_status rc = AURORA_OK;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (find_setting(item->string) == NULL) {
            log_unknown_setting(st, item->string);
            rc = AURORA_ERR_INVALID;
            break;
        }
    }
    for (size_t i = 0; rc == AURORA_OK && i < ECHO_SETTING_COUNT; i++)
        rc = apply_setting(st, &echo_settings[i], cJSON_GetObjectItemCaseSensitive(root, echo_settings[i].key));
    cJSON_Delete(root);
    if (rc != AURORA_OK)
        return rc;
    st->config.tick_room_len = strlen(st->config.tick_room);
    st->config.raw = strcmp(st->config.mode, "raw") == 0;
    if (!st->config.raw && strcmp(st->config.mode, "json") != 0) {
        st->host->log_msg(st->self, AURORA_LOG_ERROR, "config: \"mode\" must be \"json\" or \"raw\", not \"%s\"",
                          st->config.mode);
        return AURORA_ERR_INVALID;
    }
    return AURORA_OK;
}

/* ---- The tick worker (its own thread, started by host->spawn) ------------- */

static void tick_worker(aurora_worker *w, void *arg) {
    const echo_state *st = arg;
    const aurora_host_api *host = st->host;
    const uint64_t period_ns = (uint64_t)st->config.tick_ms * 1000000u;
    const aurora_str room = aurora_str_make(st->config.tick_room, st->config.tick_room_len);
    uint64_t next = host->now_monotonic_ns() + period_ns;
    uint64_t n = 0;
    int warned = 0;

    for (;;) {
        uint64_t now = host->now_monotonic_ns();
        if (now < next) {
            /* Sleep until the next tick, rounded up so we never wake early;
             * worker_wait returns 1 as soon as the host asks us to stop. */
            if (host->worker_wait(w, (uint32_t)((next - now + 999999u) / 1000000u)))
                return;
            continue; /* woken early (worker_wake) or on time: look at the clock again */
        }
        if (host->worker_should_stop(w))
            return;

        char payload[64];
        int len = snprintf(payload, sizeof payload, "{\"type\":\"tick\",\"n\":%" PRIu64 "}", ++n);
        /* Queued and copied by the host; OK means queued, not delivered. */
        aurora_status rc = host->broadcast(st->self, room, aurora_str_make(payload, (size_t)len), 0);
        if (rc != AURORA_OK && rc != AURORA_ERR_CLOSED && !warned) {
            host->log_msg(st->self, AURORA_LOG_WARN, "tick %" PRIu64 ": broadcast to \"%s\" failed (status %d)", n,
                      st->config.tick_room, (int)rc);
            warned = 1;
        }
        next += period_ns;
        if (next <= now) /* we fell behind (a stopped process): skip the missed ticks */
            next = now + period_ns;
    }
}

/* ---- Hooks --------------------------------------------------------------------- */

static void free_state(echo_state *st) {
    free(st->config.tick_room);
    free(st->config.mode);
    free(st);
}

/* Main thread, once. Parse and check the settings, start the worker. */
static aurora_status echo_init(const aurora_host_api *host, aurora_plugin_ctx *self, void **state_out) {
    echo_state *st = calloc(1, sizeof *st);
    if (st == NULL) {
        host->log_msg(self, AURORA_LOG_ERROR, "out of memory");
        return AURORA_ERR_NOMEM;
    }
    st->host = host;
    st->self = self;

    aurora_status rc = parse_config(st);
    if (rc == AURORA_OK && st->config.raw) {
        /* A host older than ABI 1.1 would keep non-JSON messages from us. */
        rc = AURORA_HOST_HAS(host, accept_raw_messages) ? host->accept_raw_messages(self) : AURORA_ERR;
        if (rc != AURORA_OK)
            host->log_msg(self, AURORA_LOG_ERROR, "\"mode\": \"raw\": the host refused accept_raw_messages (ABI 1.1)");
    }
    if (rc == AURORA_OK && st->config.tick_ms > 0) {
        rc = host->spawn(self, "echo-tick", tick_worker, st);
        if (rc != AURORA_OK)
            host->log_msg(self, AURORA_LOG_ERROR, "could not start the tick worker (status %d)", (int)rc);
    }
    if (rc != AURORA_OK) {
        /* The host calls no other hook after a failed init, not even
         * shutdown: free everything here. */
        free_state(st);
        return rc;
    }
    if (st->config.raw)
        host->log_msg(self, AURORA_LOG_INFO, "ready; raw mode: every message is sent back verbatim");
    else if (st->config.tick_ms > 0)
        host->log_msg(self, AURORA_LOG_INFO, "ready; a tick every %" PRId64 " ms to room \"%s\"", st->config.tick_ms,
                  st->config.tick_room);
    else
        host->log_msg(self, AURORA_LOG_INFO, "ready; ticks off");
    *state_out = st;
    return AURORA_OK;
}

/* Main thread, once, after the host joined the tick worker. */
static void echo_shutdown(void *state) {
    free_state(state);
}

/* The host's error frame, {"type":"error","code":...,"message":...,"ref":...}
 * with the message's ref, as the reply (ABI 1.1). */
static aurora_verdict refuse(const echo_state *st, aurora_msg *msg, const char *code, const char *message) {
    return st->host->msg_reply_error(msg, code, message) == AURORA_OK ? AURORA_REPLY : AURORA_DROP;
}

/* `reply` (taken) with the message's ref, as the host parsed it, as the reply. */
static aurora_verdict answer(const echo_state *st, aurora_conn *conn, aurora_msg *msg, cJSON *reply) {
    aurora_str ref = st->host->msg_ref(msg);
    char *ref_text = NULL, *text = NULL;
    if (reply != NULL && ref.ptr != NULL && (ref_text = malloc(ref.len + 1)) != NULL) {
        memcpy(ref_text, ref.ptr, ref.len);
        ref_text[ref.len] = '\0';
        if (cJSON_AddRawToObject(reply, "ref", ref_text) == NULL) {
            cJSON_Delete(reply);
            reply = NULL;
        }
    }
    if (reply != NULL && (ref.ptr == NULL || ref_text != NULL))
        text = cJSON_PrintUnformatted(reply);
    aurora_verdict verdict = AURORA_DROP;
    if (text != NULL && st->host->msg_set_reply(msg, aurora_str_make(text, strlen(text))) == AURORA_OK)
        verdict = AURORA_REPLY;
    else
        st->host->log_conn(st->self, AURORA_LOG_ERROR, st->host->conn_id(conn), "could not build a reply");
    cJSON_free(text);
    free(ref_text);
    cJSON_Delete(reply);
    return verdict;
}

static aurora_verdict echo_reply(const echo_state *st, aurora_conn *conn, aurora_msg *msg, const cJSON *frame) {
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(frame, "text");
    if (!cJSON_IsString(text))
        return refuse(st, msg, "bad_field", "echo needs a string \"text\"");
    cJSON *reply = cJSON_CreateObject();
    if (reply != NULL && (cJSON_AddStringToObject(reply, "type", "echo") == NULL ||
                          cJSON_AddStringToObject(reply, "text", text->valuestring) == NULL)) {
        cJSON_Delete(reply);
        reply = NULL;
    }
    return answer(st, conn, msg, reply);
}

static aurora_verdict join_reply(const echo_state *st, aurora_conn *conn, aurora_msg *msg, const cJSON *frame) {
    const cJSON *room = cJSON_GetObjectItemCaseSensitive(frame, "room");
    if (!cJSON_IsString(room) || room->valuestring[0] == '\0')
        return refuse(st, msg, "bad_field", "join needs a non-empty string \"room\"");

    aurora_str name = aurora_str_make(room->valuestring, strlen(room->valuestring));
    /* Runs every plugin's on_join (ours included, if we had one). */
    aurora_status rc = st->host->room_join(st->self, st->host->conn_id(conn), name);
    switch (rc) {
    case AURORA_OK:
        break;
    case AURORA_ERR_DENIED:
        return refuse(st, msg, "join_denied", "a plugin refused the join");
    case AURORA_ERR_LIMIT:
        return refuse(st, msg, "too_many_rooms", "this connection is in too many rooms");
    case AURORA_ERR_INVALID:
        return refuse(st, msg, "bad_room", "not a valid room name");
    default:
        st->host->log_conn(st->self, AURORA_LOG_WARN, st->host->conn_id(conn), "room_join(\"%s\") failed (status %d)",
                           room->valuestring, (int)rc);
        return refuse(st, msg, "join_failed", "could not join the room");
    }
    cJSON *reply = cJSON_CreateObject();
    if (reply != NULL && (cJSON_AddStringToObject(reply, "type", "joined") == NULL ||
                          cJSON_AddStringToObject(reply, "room", room->valuestring) == NULL)) {
        cJSON_Delete(reply);
        reply = NULL;
    }
    return answer(st, conn, msg, reply);
}

/* Service thread, for every inbound frame, in pipeline order. Must not
 * block: everything here is in memory. */
static aurora_verdict echo_on_message(void *state, aurora_conn *conn, aurora_msg *msg) {
    const echo_state *st = state;
    if (st->config.raw) {
        /* Verbatim, in a frame of the kind it came in; the host copies it. */
        aurora_str payload = st->host->msg_payload(msg);
        aurora_conn_id id = st->host->conn_id(conn);
        if (st->host->msg_is_binary(msg))
            st->host->send_binary(st->self, id, payload);
        else
            st->host->send(st->self, id, payload);
        return AURORA_DROP;
    }
    aurora_str type = st->host->msg_type(msg);
    if (str_equals(type, "drop"))
        return AURORA_DROP;
    int is_echo = str_equals(type, "echo");
    if (!is_echo && !str_equals(type, "join"))
        return AURORA_CONTINUE;

    /* The host has checked that the payload is a JSON object. */
    aurora_str payload = st->host->msg_payload(msg);
    cJSON *frame = cJSON_ParseWithLength(payload.ptr, payload.len);
    aurora_verdict verdict = frame == NULL ? AURORA_DROP
                             : is_echo     ? echo_reply(st, conn, msg, frame)
                                           : join_reply(st, conn, msg, frame);
    cJSON_Delete(frame);
    return verdict;
}

/* ---- The descriptor and the one exported symbol ----------------------------- */

static const aurora_plugin echo_descriptor = {
    .struct_size = sizeof(aurora_plugin),
    .abi_major = AURORA_ABI_MAJOR,
    .abi_minor = AURORA_ABI_MINOR,
    .name = "echo",
    .version = "1.0.0",
    .description = "replies to echo, joins rooms on request, broadcasts ticks",
    .init = echo_init,
    .shutdown = echo_shutdown,
    .on_message = echo_on_message,
};

AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) {
    return &echo_descriptor;
}
