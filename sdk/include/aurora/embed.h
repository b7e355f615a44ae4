/*
 * aurora/embed.h - run an Aurora host inside your own program
 * (libaurora_host; aurora-host is a thin main() over these functions).
 *
 *     char err[512];
 *     int code = 0;
 *     aurora_host *h = aurora_host_create(config_json, strlen(config_json), err, sizeof err, &code);
 *     if (!h) { fprintf(stderr, "%s\n", err); return code; }
 *     // on another thread, or from a signal-handling thread:
 *     //     aurora_host_stop(h);
 *     int rc = aurora_host_run(h);   // blocks: this thread becomes the service thread
 *     aurora_host_destroy(h);
 *
 * The config is the JSON document of docs/configuration.md; relative paths
 * in it are relative to the current directory. The environment overrides
 * (AURORA_HOST, AURORA_PORT, AURORA_REDIS_URL, ...: docs/configuration.md)
 * are applied by aurora-host to its config file, not by aurora_host_create:
 * an embedding program decides its own configuration, and what its plugins
 * read with host->setting is the config as it gave it. Link with
 * -laurora_host (CMake: Aurora::host).
 *
 * aurora-host sets MONGOC_DISABLE_SHM=1 before it loads plugins (libmongoc's
 * /dev/shm counters outlive a killed process); an embedding program that
 * loads the MongoDB plugins should do the same early in main(), before any
 * thread exists (setenv is not thread-safe).
 */
#ifndef AURORA_EMBED_H
#define AURORA_EMBED_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aurora_host aurora_host;

/* Result codes of aurora_host_create/run, equal to aurora-host's exit codes. */
enum {
    AURORA_HOST_EXIT_OK = 0,         /* clean shutdown */
    AURORA_HOST_EXIT_FATAL = 1,      /* could not listen, or another fatal error */
    AURORA_HOST_EXIT_BAD_CONFIG = 2  /* invalid config, or a plugin refused to load */
};

/* Any thread. Parses and validates the config, loads every plugin (dlopen +
 * ABI check) and runs their init hooks, and binds the listening socket (so
 * aurora_host_port is known when this returns). `config_json` is copied.
 * On failure returns NULL and writes a NUL-terminated reason (naming the file
 * and both ABI versions for plugin errors) into err[0..err_len); if
 * `exit_code` is not NULL it receives AURORA_HOST_EXIT_BAD_CONFIG or
 * AURORA_HOST_EXIT_FATAL. The caller owns the result: aurora_host_destroy. */
aurora_host *aurora_host_create(const char *config_json, size_t config_len, char *err, size_t err_len,
                                int *exit_code);

/* The TCP port the host listens on (useful with "port": 0). Any thread. */
int aurora_host_port(const aurora_host *host);

/* Runs the service loop on the calling thread until aurora_host_stop, then
 * drains: stops accepting, closes every WebSocket with 1001, waits up to
 * `shutdown_grace_ms` (config) for them, stops plugin threads. Returns
 * AURORA_HOST_EXIT_OK or AURORA_HOST_EXIT_FATAL. Call at most once. */
int aurora_host_run(aurora_host *host);

/* Any thread (but not inside a signal handler: aurora-host waits for
 * signals with sigwait on a thread of its own and calls this from there):
 * asks a running host to drain and return from aurora_host_run. Calling it
 * before run makes run return at once. Idempotent. */
void aurora_host_stop(aurora_host *host);

/* Main thread, after aurora_host_run returned (or instead of running):
 * calls every plugin's shutdown hook, unloads the plugins, frees the host. */
void aurora_host_destroy(aurora_host *host);

/* The host's version string ("0.1.0"). Static; never free it. */
const char *aurora_host_version(void);

#ifdef __cplusplus
}
#endif

#endif /* AURORA_EMBED_H */
