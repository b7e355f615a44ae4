// The bearer tokens a plugin trusts, from the host's `jwt` section
// (docs/auth.md, "Tokens from an identity provider"):
//
//   jwt.secret          the HMAC key of the user service's tokens (passed in)
//   jwt.keys_file       an identity provider's public keys: a JWKS document
//                       or PEM (public keys or certificates)
//   jwt.jwks_url        the same, fetched over HTTP(S) and cached
//   jwt.keys_refresh_s  how often the file is checked and the URL fetched
//                       (default 300); a token whose kid no key has makes
//                       it happen at once, at most every 10 s
//   jwt.issuer, jwt.audience, jwt.user_id_claim, jwt.username_claim
//                       checked and read in key-signed tokens
//
// verify() is for any thread, the service thread included (no I/O: the key
// set is swapped in whole by the refresher). The refresher is a thread of the
// plugin's own, started by start() when keys come from a file or a URL.
#pragma once

#include <aurora/aurora.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "plugin_handle.h"
#include "token_verifier.h"

namespace aurora::plugin {

class TokenTrust {
    struct Pass {  // only create() makes one (the constructor is public for make_unique)
        explicit Pass() = default;
    };

public:
    TokenTrust(Pass, const aurora_host_api *host, aurora_plugin_ctx *self) : h_{host, self} {}

    // Main thread, init. nullptr with `error` for a bad setting, or a keys
    // file that cannot be read or holds no valid key. A JWKS URL that cannot
    // be fetched yet is not an error: it is logged and retried.
    // `secret` is the HMAC key (the plugin's reading of jwt.secret; empty:
    // HMAC tokens are refused), `hmac_alg` its algorithm.
    static std::unique_ptr<TokenTrust> create(const aurora_host_api *host, aurora_plugin_ctx *self,
                                              std::string secret, jwt_alg_t hmac_alg, std::string &error);

    TokenTrust(const TokenTrust &) = delete;
    TokenTrust &operator=(const TokenTrust &) = delete;

    // A secret or a key source is configured: some token can be accepted.
    bool accepts_any() const { return !policy_.secret.empty() || has_key_source(); }
    bool has_key_source() const { return !keys_file_.empty() || !jwks_url_.empty(); }

    // Main thread, init, last: spawns the refresher if keys come from a file
    // or a URL (the plugin's state must then outlive a failed init).
    aurora_status start();

    VerifiedToken verify(std::string_view token, int64_t now_s, int64_t leeway_s) const;

    // An HTTP request's "Authorization: Bearer <token>", verified now. On a
    // refusal, `error` is the 401 body's text ("missing bearer token" or
    // "invalid token: ..."). Any thread.
    VerifiedToken verify_request(const aurora_host_api *host, const aurora_http_req *req, int64_t leeway_s) const;

    // Keys currently loaded (for logs and tests).
    size_t key_count() const;

    // The refresher's own thread: the host asked it to stop (ends a fetch).
    bool stopping() const;

private:
    static void run(aurora_worker *w, void *arg);
    void refresh_loop(aurora_worker *w);
    // Re-reads the file if it changed (or `force`), fetches the URL; keeps
    // the old keys on any failure. True if a load was attempted and failed.
    bool load(bool force_file, bool fetch);
    bool read_file(std::string &error);
    bool fetch_url(std::string &error);
    void install(KeySet keys, const char *from);

    PluginHandle h_;  // the plugin's host and handle, and its log()
    TokenPolicy policy_;
    std::string keys_file_, jwks_url_;
    int64_t refresh_ms_ = 300000;
    int64_t file_mtime_ns_ = -1, file_size_ = -1;
    bool fetched_ = false;

    mutable std::mutex mu_;
    std::shared_ptr<const KeySet> keys_;
    std::atomic<aurora_worker *> worker_{nullptr};
    mutable std::atomic<bool> kid_missed_{false};
    aurora_metric *loads_ok_ = nullptr, *loads_failed_ = nullptr;
};

}  // namespace aurora::plugin
