// The embedded CPython of python_policy: the interpreter's lifetime (one per
// process, shared by every python_policy instance) and one policy module.
//
// GIL: nothing here holds it between calls. Every entry point takes it
// (PyGILState) for exactly the Python it runs, on whatever thread calls
// (init/shutdown: main thread; hooks: the service thread). The plugin starts
// no thread of its own, so when the host calls shutdown every native thread
// that could enter Python has stopped, and the last shutdown finalizes the
// interpreter (if this plugin started it).
#pragma once

#include <memory>
#include <string>

#include "policy_settings.h"

namespace aurora::policy {

// What on_message decided.
struct Decision {
    enum class Kind { Allow, Drop, Replace, Reply, Error } kind = Kind::Allow;
    std::string text;  // Drop: reason ("" = silent); Replace: new text; Reply: JSON object; Error: traceback
};

// What the policy sees of a message (read-only in Python).
struct MessageView {
    std::string user, user_id, type, payload;
    std::string room, text;
    bool has_room = false, has_text = false;
    unsigned long long conn = 0;
};

class Policy {
public:
    // Starts (or joins) the interpreter and imports settings.module. On
    // failure returns nullptr and sets `error` (with the Python traceback).
    static std::unique_ptr<Policy> load(const Settings &settings, std::string &error);
    ~Policy();  // drops the module; the last one finalizes the interpreter
    Policy(const Policy &) = delete;
    Policy &operator=(const Policy &) = delete;

    Decision on_message(const MessageView &msg);
    bool has_on_join() const { return has_on_join_; }
    // on_join(view) -> admit? Error: `error` gets the traceback, returns -1.
    int on_join(const MessageView &view, std::string &error);

private:
    Policy() = default;
    struct Objects;  // the Python objects, touched only with the GIL
    std::unique_ptr<Objects> py_;
    bool has_on_join_ = false;
};

}  // namespace aurora::policy
