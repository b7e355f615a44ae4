// The authenticate hook: the bearer token of the upgrade request (subprotocol
// "Bearer.<jwt>", Authorization header, or ?token= when allowed), verified
// in memory, and its user not banned (enforce_bans: a map lookup). Service
// thread; no I/O.
#include <ctime>

#include "auth_state.h"
#include "json.h"

namespace aurora::auth {

aurora_auth_verdict authenticate_handshake(AuthPlugin &st, const aurora_handshake *hs, aurora_identity *identity) {
    const aurora_host_api *host = st.host;
    std::string_view token = plugin::view(host->hs_token(hs));
    auto reject = [&](const char *reason) {
        host->metric_add(st.m.handshake_rejected, 1);
        identity->reject_status = 401;
        identity->reject_reason = aurora_str{reason, std::char_traits<char>::length(reason)};
        return AURORA_AUTH_REJECT;
    };
    if (token.empty()) return reject("missing token");
    if (!st.cfg.query_token) {
        // hs_token falls back to ?token= last: the same text there means the
        // URL is where it came from (or where it was copied too).
        std::string_view q = plugin::view(host->hs_query(hs, "token"));
        if (!q.empty() && q == token) return reject("tokens in the URL are disabled; use the Bearer subprotocol");
    }
    const int64_t now = static_cast<int64_t>(host->now_wall_ms() / 1000);
    plugin::VerifiedToken v = st.trust->verify(token, now, st.cfg.leeway_s);
    if (!v.ok) {
        // The host copies the reason when the hook returns.
        st.scratch_reason = "invalid token: " + v.error;
        host->metric_add(st.m.handshake_rejected, 1);
        identity->reject_status = 401;
        identity->reject_reason = plugin::str(st.scratch_reason);
        return AURORA_AUTH_REJECT;
    }
    if (st.bans && st.bans->banned(v.user_id, host->now_wall_ms())) {
        host->metric_add(st.m.handshake_rejected, 1);
        identity->reject_status = 403;
        identity->reject_reason = AURORA_STR_LIT("banned");
        return AURORA_AUTH_REJECT;
    }
    st.scratch_user_id = std::move(v.user_id);
    st.scratch_username = std::move(v.username);
    identity->user_id = plugin::str(st.scratch_user_id);
    identity->username = plugin::str(st.scratch_username);
    host->metric_add(st.m.handshake_accepted, 1);
    return AURORA_AUTH_ACCEPT;
}

}  // namespace aurora::auth
