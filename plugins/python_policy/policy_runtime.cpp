#include "policy_runtime.h"

#include <dlfcn.h>
#include <pybind11/embed.h>
#include <pybind11/pybind11.h>

#include <mutex>

namespace py = pybind11;

namespace aurora::policy {

namespace {

// ---- The interpreter: started by the first Policy, finalized by the last ----

std::mutex g_interp_mu;          // init/shutdown run on the main thread; the lock is cheap insurance
int g_users = 0;                 // guarded by g_interp_mu
bool g_owns = false;             // we called Py_Initialize (not inside a Python process)
PyThreadState *g_main = nullptr; // the main thread's state while the GIL is released

// Extension modules in lib-dynload (math, _json, ...) expect libpython's
// symbols in the global scope, but aurora-host dlopens plugins RTLD_LOCAL,
// which drags libpython in locally. Promote it to RTLD_GLOBAL.
void promote_libpython() {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void *>(&Py_IsInitialized), &info) && info.dli_fname) {
        dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);  // a reference kept for the process
    }
}

bool start_interpreter(const Settings &s, std::string &error) {
    std::lock_guard lock(g_interp_mu);
    if (g_users++ > 0) return true;
    if (Py_IsInitialized()) {  // e.g. aurora.Host inside pytest: use that interpreter
        g_owns = false;
        return true;
    }
    promote_libpython();
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;  // aurora-host takes SIGTERM/SIGINT with sigwait
    config.parse_argv = 0;
    PyStatus st = PyStatus_Ok();
    if (!s.python_home.empty()) st = PyConfig_SetBytesString(&config, &config.home, s.python_home.c_str());
    if (!PyStatus_Exception(st)) st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st)) {
        error = std::string("cannot start Python: ") + (st.err_msg ? st.err_msg : "unknown error");
        --g_users;
        return false;
    }
    g_owns = true;
    g_main = PyEval_SaveThread();  // release the GIL: hooks take it when they run Python
    return true;
}

void stop_interpreter() {
    std::lock_guard lock(g_interp_mu);
    if (--g_users > 0 || !g_owns) return;
    PyEval_RestoreThread(g_main);
    Py_FinalizeEx();
    g_main = nullptr;
    g_owns = false;
}

// The GIL for the current thread. The first time on a thread, its Python
// thread state is created and kept (not rebuilt on every call: the service
// thread enters Python once per message); Py_FinalizeEx clears it.
class Gil {
public:
    Gil() {
        thread_local bool pinned = false;
        if (!pinned) {
            PyGILState_Ensure();  // counter 1 forever: the state outlives each call
            PyEval_SaveThread();
            pinned = true;
        }
        state_ = PyGILState_Ensure();
    }
    ~Gil() { PyGILState_Release(state_); }
    Gil(const Gil &) = delete;
    Gil &operator=(const Gil &) = delete;

private:
    PyGILState_STATE state_;
};

std::string format_exception(py::error_already_set &e) {
    try {
        py::object lines = py::module_::import("traceback")
                               .attr("format_exception")(e.type(), e.value(), e.trace());
        return py::str("").attr("join")(lines).cast<std::string>();
    } catch (const py::error_already_set &) {
        return e.what();
    }
}

// ---- The module aurora_policy: the view and the verdicts ----

struct Verdict {
    std::string kind;  // allow drop replace reply
    std::string text;  // reason / replacement / reply JSON
};

PyModuleDef g_module_def{};

py::module_ policy_module() {
    py::module_ sys = py::module_::import("sys");
    py::dict modules = sys.attr("modules");
    if (modules.contains("aurora_policy")) return modules["aurora_policy"];
    py::module_ m = py::module_::create_extension_module(
        "aurora_policy", "Verdicts and the message view for Aurora policies (python_policy).", &g_module_def);
    auto opt = [](const MessageView &v, bool has, const std::string &s) -> py::object {
        (void)v;
        return has ? py::object(py::str(s)) : py::object(py::none());
    };
    py::class_<MessageView>(m, "Message")
        .def_property_readonly("user", [](const MessageView &v) { return v.user; })
        .def_property_readonly("user_id", [](const MessageView &v) { return v.user_id; })
        .def_property_readonly("type", [](const MessageView &v) { return v.type; })
        .def_property_readonly("payload", [](const MessageView &v) { return v.payload; })
        .def_property_readonly("conn", [](const MessageView &v) { return v.conn; })
        .def_property_readonly("room", [opt](const MessageView &v) { return opt(v, v.has_room, v.room); })
        .def_property_readonly("text", [opt](const MessageView &v) { return opt(v, v.has_text, v.text); })
        .def("__repr__", [](const MessageView &v) {
            return "<aurora_policy.Message " + v.type + " from " + v.user + ">";
        });
    py::class_<Verdict>(m, "Verdict")
        .def_readonly("kind", &Verdict::kind)
        .def_readonly("text", &Verdict::text)
        .def("__repr__", [](const Verdict &v) { return "<aurora_policy.Verdict " + v.kind + ">"; });
    m.def("allow", [] { return Verdict{"allow", ""}; });
    m.def("drop", [](const std::string &reason) { return Verdict{"drop", reason}; }, py::arg("reason") = "");
    m.def("replace", [](const std::string &text) { return Verdict{"replace", text}; }, py::arg("text"));
    m.def("reply", [](py::object obj) {
        std::string json = py::isinstance<py::str>(obj)
                               ? obj.cast<std::string>()
                               : py::module_::import("json").attr("dumps")(obj).cast<std::string>();
        return Verdict{"reply", json};
    }, py::arg("frame"));
    m.attr("IN_HOST") = true;
    modules["aurora_policy"] = m;
    return m;
}

// A verdict from this module, or from the pure-Python twin (pip's
// aurora_policy, when a Python process imported it before the plugin
// loaded): anything with a string `kind` in allow/drop/replace/reply and a
// string `text`. Anything else is a cast_error.
Verdict as_verdict(const py::object &r) {
    if (py::isinstance<Verdict>(r)) return r.cast<Verdict>();
    if (!py::hasattr(r, "kind") || !py::hasattr(r, "text")) throw py::cast_error("not a verdict");
    Verdict v{py::str(r.attr("kind")).cast<std::string>(), py::str(r.attr("text")).cast<std::string>()};
    if (v.kind != "allow" && v.kind != "drop" && v.kind != "replace" && v.kind != "reply")
        throw py::cast_error("not a verdict");
    return v;
}

}  // namespace

struct Policy::Objects {
    py::object module, on_message, on_join;
};

std::unique_ptr<Policy> Policy::load(const Settings &s, std::string &error) {
    if (!start_interpreter(s, error)) return nullptr;
    std::unique_ptr<Policy> p(new Policy());
    {
    Gil gil;
    try {
        policy_module();
        py::list sys_path = py::module_::import("sys").attr("path");
        for (auto it = s.path.rbegin(); it != s.path.rend(); ++it) {
            py::object abs = py::module_::import("os.path").attr("abspath")(*it);
            sys_path.insert(0, abs);
        }
        auto objs = std::make_unique<Objects>();
        objs->module = py::module_::import(s.module.c_str());
        if (!py::hasattr(objs->module, "on_message")) {
            error = "policy module " + s.module + " has no on_message(msg) function";
        } else {
            objs->on_message = objs->module.attr("on_message");
            if (py::hasattr(objs->module, "on_join")) objs->on_join = objs->module.attr("on_join");
            if (py::hasattr(objs->module, "configure")) {
                objs->module.attr("configure")(py::module_::import("json").attr("loads")(s.options_json));
            }
            p->has_on_join_ = static_cast<bool>(objs->on_join);
            p->py_ = std::move(objs);
        }
    } catch (py::error_already_set &e) {
        error = "cannot load policy module " + s.module + ":\n" + format_exception(e);
    }
    }
    if (!p->py_) return nullptr;  // ~Policy (outside the GIL) leaves the interpreter
    return p;
}

Policy::~Policy() {
    {
        Gil gil;
        py_.reset();
    }
    stop_interpreter();
}

Decision Policy::on_message(const MessageView &msg) {
    Decision d;
    Gil gil;
    try {
        py::object r = py_->on_message(py::cast(msg, py::return_value_policy::copy));
        if (r.is_none()) return d;
        if (py::isinstance<py::bool_>(r)) {
            if (!r.cast<bool>()) d.kind = Decision::Kind::Drop;
            return d;
        }
        Verdict v = as_verdict(r);
        if (v.kind == "drop") d.kind = Decision::Kind::Drop;
        else if (v.kind == "replace") d.kind = Decision::Kind::Replace;
        else if (v.kind == "reply") d.kind = Decision::Kind::Reply;
        d.text = v.text;
    } catch (py::error_already_set &e) {
        d.kind = Decision::Kind::Error;
        d.text = format_exception(e);
    } catch (const py::cast_error &) {
        d.kind = Decision::Kind::Error;
        d.text = "on_message must return None, a bool or an aurora_policy verdict (allow, drop, replace, reply)";
    }
    return d;
}

int Policy::on_join(const MessageView &view, std::string &error) {
    Gil gil;
    try {
        py::object r = py_->on_join(py::cast(view, py::return_value_policy::copy));
        if (r.is_none()) return 1;
        if (py::isinstance<py::bool_>(r)) return r.cast<bool>() ? 1 : 0;
        return as_verdict(r).kind == "drop" ? 0 : 1;
    } catch (py::error_already_set &e) {
        error = format_exception(e);
    } catch (const py::cast_error &) {
        error = "on_join must return None, a bool or an aurora_policy verdict";
    }
    return -1;
}

}  // namespace aurora::policy
