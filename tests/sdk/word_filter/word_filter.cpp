// An out-of-tree plugin built with the helper library (Aurora::kit): refuses
// every message that holds one of the configured words.
#include <aurora/aurora.h>
#include <aurora/kit/plugin_handle.h>
#include <aurora/kit/settings.h>

using namespace aurora::plugin;

struct Filter : PluginHandle { std::vector<std::string> words; };
const Field<Filter> kFields[] = {{{"words", Setting::StringList, "[]", "words refused in messages"}, &Filter::words}};

aurora_status init(const aurora_host_api *host, aurora_plugin_ctx *self, void **state) {
    std::string err;
    std::optional<Filter> f = parse_settings(host->config_json(self), kFields, err);
    if (!f) return host->log_msg(self, AURORA_LOG_ERROR, "config: %s", err.c_str()), AURORA_ERR_INVALID;
    f->host = host, f->self = self;
    *state = give_state(std::make_unique<Filter>(std::move(*f)));
    return AURORA_OK;
}
void shutdown(void *state) { take_state<Filter>(state); }
aurora_verdict on_message(void *state, aurora_conn *, aurora_msg *msg) {
    auto *f = static_cast<Filter *>(state);
    aurora_str text = f->host->msg_payload(msg);
    for (const std::string &w : f->words)
        if (std::string_view(text.ptr, text.len).find(w) != std::string_view::npos)
            return f->host->msg_reply_error(msg, "refused", "that word is not allowed here"), AURORA_REPLY;
    return AURORA_CONTINUE;
}
extern "C" AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) {
    static const aurora_plugin d = [] {
        aurora_plugin p = describe("word_filter", "1.0.0", "refuses messages with configured words");
        p.init = init, p.shutdown = shutdown, p.on_message = on_message;
        return p;
    }();
    return &d;
}
