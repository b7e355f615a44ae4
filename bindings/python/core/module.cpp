// aurora._core: the pybind11 layer over RecordingHost (aurora.Plugin) and
// EmbeddedHost (aurora.Host). Stubs: src/aurora/_core.pyi.
//
// GIL rules (docs/python.md):
//   - released around every call into a plugin (init, hooks, shutdown) and
//     around every wait, so the plugin's own threads can call back;
//   - taken (gil_scoped_acquire) by the event listener, which a plugin may
//     fire from any native thread;
//   - a Python exception in the listener never crosses into the plugin: it
//     is reported as unraisable and the host function still returns OK.
#include <cstdlib>

#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cjson/cJSON.h>

#include "embedded_host.h"
#include "frame_check.h"
#include "recording_host.h"

namespace py = pybind11;
using namespace aurora::py;

namespace {

std::string payload_text(const py::object &payload) {
    if (py::isinstance<py::str>(payload)) return payload.cast<std::string>();
    if (py::isinstance<py::bytes>(payload)) return payload.cast<std::string>();
    return py::module_::import("json").attr("dumps")(payload, py::arg("separators") = py::make_tuple(",", ":"))
        .cast<std::string>();
}

[[noreturn]] void raise_timeout(const char *what) {
    PyErr_SetString(PyExc_TimeoutError, what);
    throw py::error_already_set();
}

py::object loads_or_none(const std::string &s) {
    if (s.empty()) return py::none();
    return py::module_::import("json").attr("loads")(s);
}

py::dict event_dict(const Event &e) {
    py::dict d;
    d["kind"] = e.kind;
    d["conn"] = e.conn;
    d["room"] = e.room;
    if (e.kind == "send_binary") d["payload"] = py::bytes(e.payload);  // bytes, as they were sent
    else d["payload"] = e.payload;
    d["code"] = e.code;
    d["thread"] = e.thread;
    if (e.kind == "broadcast") d["to"] = e.to;
    return d;
}

const char *auth_verdict_name(aurora_auth_verdict v) {
    return v == AURORA_AUTH_ACCEPT ? "accept" : v == AURORA_AUTH_REJECT ? "reject" : "abstain";
}

// aurora.Plugin
class PyPlugin {
public:
    PyPlugin(const std::string &path, const std::string &config, std::map<std::string, std::string> settings,
             const std::string &name) {
        py::gil_scoped_release release;  // init may block (connects to Redis, MongoDB)
        host_ = std::make_unique<RecordingHost>(path, config, std::move(settings), name);
    }
    ~PyPlugin() {
        if (host_ && Py_IsInitialized()) close();
    }

    RecordingHost &h() {
        if (!host_ || host_->closed()) throw std::runtime_error("the plugin is closed");
        if (!host_->on_service_thread())
            throw std::runtime_error("drive a plugin from the thread that loaded it (its service thread)");
        return *host_;
    }
    RecordingHost &any() {
        if (!host_) throw std::runtime_error("the plugin is closed");
        return *host_;
    }

    void close() {
        if (!host_) return;
        {
            py::gil_scoped_release release;  // joins the plugin's threads, which may be in the listener
            host_->close();
        }
        host_.reset();
        listeners_.clear();  // only now: no native thread can call them any more
    }

    void on_event(py::object callback) {
        RecordingHost &host = any();
        if (callback.is_none()) {
            host.set_listener(nullptr);
            return;
        }
        // The std::function holds a borrowed pointer: listeners_ keeps the
        // object alive until close(), after every native thread has stopped,
        // so the function never owns a Python reference it would have to
        // drop without the GIL.
        listeners_.append(callback);
        PyObject *fn = callback.ptr();
        host.set_listener([fn](const Event &e) {
            if (!Py_IsInitialized()) return;
            py::gil_scoped_acquire gil;
            try {
                py::handle target(fn);
                target(event_dict(e));
            } catch (py::error_already_set &err) {
                err.discard_as_unraisable("aurora.Plugin event callback");
            }
        });
    }

    std::unique_ptr<RecordingHost> host_;
    py::list listeners_;
};

struct PyMessage {
    std::shared_ptr<FakeMsg> m;
    py::object plugin;  // keeps the RecordingHost alive

    std::string verdict() const {
        std::lock_guard lock(m->host->mu_);
        if (m->pending && !m->resumed) return "pending";
        return verdict_name(m->verdict);
    }
    bool done() const { return verdict() != "pending"; }
};

struct PyHttp {
    std::shared_ptr<FakeHttpReq> r;
    py::object plugin;

    bool done() const {
        if (!r->host) return true;
        std::lock_guard lock(r->host->mu_);
        return r->replied;
    }
};

// PluginLoadError, PluginInitError, HostStartError (with exit_code).
void register_errors(py::module_ &m) {
    static py::exception<RecordingHost::LoadError> load_error(m, "PluginLoadError", PyExc_RuntimeError);
    static py::exception<RecordingHost::InitError> init_error(m, "PluginInitError", PyExc_RuntimeError);
    static py::exception<EmbeddedHost::StartError> start_error(m, "HostStartError", PyExc_RuntimeError);
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const RecordingHost::LoadError &e) {
            py::set_error(load_error, e.what());
        } catch (const RecordingHost::InitError &e) {
            py::set_error(init_error, e.what());
        } catch (const EmbeddedHost::StartError &e) {
            py::object err = static_cast<py::object &>(start_error)(e.what());
            err.attr("exit_code") = e.exit_code;
            PyErr_SetObject(start_error.ptr(), err.ptr());
        }
    });
}

// aurora.Message: one frame through a plugin, its verdict and replies.
void bind_message(py::module_ &m) {
    py::class_<PyMessage>(m, "Message")
        .def_property_readonly("verdict", &PyMessage::verdict)
        .def_property_readonly("done", &PyMessage::done)
        .def_property_readonly("conn", [](const PyMessage &s) { return s.m->conn; })
        .def_property_readonly("type", [](const PyMessage &s) { return s.m->type; })
        .def_property_readonly("ref", [](const PyMessage &s) -> py::object {  // what msg_ref gives, parsed
            if (s.m->ref_json.empty()) return py::none();
            return py::module_::import("json").attr("loads")(s.m->ref_json);
        })
        .def_property_readonly("payload", [](const PyMessage &s) {
            std::lock_guard lock(s.m->host->mu_);
            return loads_or_none(s.m->payload);
        })
        .def_property_readonly("reply", [](const PyMessage &s) {
            std::string reply;
            {
                std::lock_guard lock(s.m->host->mu_);
                if (s.m->pending && !s.m->resumed) return py::object(py::none());
                if (s.m->verdict != AURORA_REPLY) return py::object(py::none());
                reply = s.m->reply;
            }
            return loads_or_none(reply);
        })
        .def("wait", [](PyMessage &s, double timeout) {
            FakeMsg *fm = s.m.get();
            bool ok;
            {
                py::gil_scoped_release release;
                ok = fm->host->wait_until([fm] { return !fm->pending || fm->resumed; }, timeout);
            }
            if (!ok) raise_timeout("the plugin did not resume the message within the timeout");
            return s.verdict();
        }, py::arg("timeout") = 5.0)
        .def("__repr__", [](const PyMessage &s) { return "<aurora.Message " + s.m->type + " " + s.verdict() + ">"; });
}

// aurora.HttpResponse: a plugin route's reply.
void bind_http_response(py::module_ &m) {
    py::class_<PyHttp>(m, "HttpResponse")
        .def_property_readonly("done", &PyHttp::done)
        .def_property_readonly("status", [](const PyHttp &s) {
            std::lock_guard lock(s.r->host->mu_);
            return s.r->status;
        })
        .def_property_readonly("body", [](const PyHttp &s) {
            std::lock_guard lock(s.r->host->mu_);
            return s.r->reply_body;
        })
        .def_property_readonly("content_type", [](const PyHttp &s) {
            std::lock_guard lock(s.r->host->mu_);
            return s.r->content_type;
        })
        .def_property_readonly("headers", [](const PyHttp &s) {
            std::string extra;
            {
                std::lock_guard lock(s.r->host->mu_);
                extra = s.r->extra_headers;
            }
            py::dict d;
            size_t pos = 0;
            while (pos < extra.size()) {
                size_t end = extra.find("\r\n", pos);
                if (end == std::string::npos) end = extra.size();
                std::string line = extra.substr(pos, end - pos);
                size_t colon = line.find(':');
                if (colon != std::string::npos) {
                    std::string v = line.substr(colon + 1);
                    while (!v.empty() && v.front() == ' ') v.erase(0, 1);
                    d[py::str(line.substr(0, colon))] = v;
                }
                pos = end + 2;
            }
            return d;
        })
        .def("json", [](const PyHttp &s) {
            std::string body;
            {
                std::lock_guard lock(s.r->host->mu_);
                body = s.r->reply_body;
            }
            return loads_or_none(body);
        })
        .def("wait", [](PyHttp &s, double timeout) {
            FakeHttpReq *r = s.r.get();
            bool ok;
            {
                py::gil_scoped_release release;
                ok = r->host->wait_until([r] { return r->replied; }, timeout);
            }
            if (!ok) raise_timeout("the plugin did not answer the request within the timeout");
            return r->status;
        }, py::arg("timeout") = 5.0);
}

// aurora.Plugin (over RecordingHost) and AuthResult.
void bind_plugin(py::module_ &m) {
    py::class_<AuthResult>(m, "AuthResult")
        .def_property_readonly("verdict", [](const AuthResult &a) { return auth_verdict_name(a.verdict); })
        .def_readonly("user_id", &AuthResult::user_id)
        .def_readonly("username", &AuthResult::username)
        .def_readonly("status", &AuthResult::status)
        .def_readonly("reason", &AuthResult::reason)
        .def("__repr__", [](const AuthResult &a) {
            return std::string("<aurora.AuthResult ") + auth_verdict_name(a.verdict) + " " + a.user_id + ">";
        });

    py::class_<PyPlugin>(m, "Plugin")
        .def(py::init<const std::string &, const std::string &, std::map<std::string, std::string>,
                      const std::string &>(),
             py::arg("path"), py::arg("config") = "{}", py::arg("settings") = std::map<std::string, std::string>{},
             py::arg("name") = "")
        .def_property_readonly("name", [](PyPlugin &p) { return p.any().instance_name(); })
        .def_property_readonly("plugin_name", [](PyPlugin &p) { return std::string(p.any().hooks().name); })
        .def_property_readonly("version", [](PyPlugin &p) {
            const char *v = p.any().hooks().version;
            return v ? std::string(v) : std::string();
        })
        .def_property_readonly("description", [](PyPlugin &p) {
            const char *v = p.any().hooks().description;
            return v ? std::string(v) : std::string();
        })
        .def_property_readonly("abi_version", [](PyPlugin &p) { return p.any().abi_version(); })
        .def_property_readonly("path", [](PyPlugin &p) { return p.any().path(); })
        .def_property_readonly("closed", [](PyPlugin &p) { return !p.host_; })
        .def("authenticate",
             [](PyPlugin &p, const std::string &token, std::map<std::string, std::string> headers,
                std::map<std::string, std::string> query, const std::string &path, const std::string &remote_addr) {
                 RecordingHost &h = p.h();
                 FakeHandshake hs;
                 for (auto &[k, v] : headers) {
                     std::string low = k;
                     for (char &c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                     hs.headers[low] = v;
                 }
                 hs.query = std::move(query);
                 hs.path = path;
                 hs.token = token;
                 hs.remote_addr = remote_addr;
                 py::gil_scoped_release release;
                 return h.authenticate(hs);
             },
             py::arg("token") = "", py::arg("headers") = std::map<std::string, std::string>{},
             py::arg("query") = std::map<std::string, std::string>{}, py::arg("path") = "/",
             py::arg("remote_addr") = "127.0.0.1")
        .def("connect",
             [](PyPlugin &p, const std::string &user_id, const std::string &username, const std::string &addr) {
                 RecordingHost &h = p.h();
                 py::gil_scoped_release release;
                 return h.connect(user_id, username, addr);
             },
             py::arg("user_id") = "", py::arg("username") = "", py::arg("remote_addr") = "127.0.0.1")
        .def("disconnect", [](PyPlugin &p, aurora_conn_id id) {
            RecordingHost &h = p.h();
            py::gil_scoped_release release;
            h.disconnect(id);
        })
        .def("join", [](PyPlugin &p, aurora_conn_id id, const std::string &room) {
            RecordingHost &h = p.h();
            py::gil_scoped_release release;
            return std::string(status_name(h.join(id, room)));
        })
        .def("leave", [](PyPlugin &p, aurora_conn_id id, const std::string &room) {
            RecordingHost &h = p.h();
            py::gil_scoped_release release;
            return std::string(status_name(h.leave(id, room)));
        })
        .def("rooms", [](PyPlugin &p, aurora_conn_id id) { return p.h().rooms_of(id); })
        .def_property(
            "max_rooms_per_conn", [](PyPlugin &p) { return p.h().max_rooms_per_conn_; },
            [](PyPlugin &p, size_t n) {
                if (n == 0) throw py::value_error("max_rooms_per_conn must be at least 1");
                p.h().max_rooms_per_conn_ = n;
            },
            "aurora-host's limits.max_rooms_per_conn (default 32): room_join past it is \"limit\"")
        .def("members", [](PyPlugin &p, const std::string &room) { return p.h().members(room); })
        .def("message",
             [](py::object self, aurora_conn_id id, py::object payload, bool binary) {
                 PyPlugin &p = self.cast<PyPlugin &>();
                 RecordingHost &h = p.h();
                 std::string text = payload_text(payload);
                 // aurora-host's own check of a text message (host/src/frame_check.cpp):
                 // what it refuses reaches only a plugin that accepts raw messages,
                 // with type "" and no ref.
                 aurora::host::FrameCheck check;
                 if (!binary) {
                     check = aurora::host::check_frame(text);
                     if (check.error && !h.raw_messages_) {
                         throw py::value_error(std::string(check.message) + " (aurora-host answers it itself with error \"" +
                                               check.error + "\")");
                     }
                 }
                 const bool raw = binary || check.error;
                 std::shared_ptr<FakeMsg> msg;
                 {
                     py::gil_scoped_release release;
                     msg = h.message(id, text, raw ? std::string() : check.type, raw ? std::string() : check.ref_json,
                                     binary);
                 }
                 if (!msg) throw py::key_error("no such connection: " + std::to_string(id));
                 return PyMessage{msg, self};
             },
             py::arg("conn"), py::arg("payload"), py::arg("binary") = false)
        .def("http",
             [](py::object self, const std::string &method, const std::string &path, py::object body,
                std::map<std::string, std::string> headers, std::map<std::string, std::string> query,
                const std::string &remote_addr) {
                 PyPlugin &p = self.cast<PyPlugin &>();
                 RecordingHost &h = p.h();
                 auto req = std::make_shared<FakeHttpReq>();
                 req->method = method;
                 req->path = path;
                 req->body = body.is_none() ? std::string() : payload_text(body);
                 for (auto &[k, v] : headers) {
                     std::string low = k;
                     for (char &c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                     req->headers[low] = v;
                 }
                 req->query = std::move(query);
                 req->remote_addr = remote_addr;
                 {
                     py::gil_scoped_release release;
                     h.http(req);
                 }
                 return PyHttp{req, self};
             },
             py::arg("method"), py::arg("path"), py::arg("body") = py::none(),
             py::arg("headers") = std::map<std::string, std::string>{},
             py::arg("query") = std::map<std::string, std::string>{}, py::arg("remote_addr") = "127.0.0.1")
        .def("is_ready", [](PyPlugin &p) {
            RecordingHost &h = p.h();
            py::gil_scoped_release release;
            return h.is_ready() != 0;
        })
        .def("poll", [](PyPlugin &p) {
            RecordingHost &h = p.h();
            py::gil_scoped_release release;
            return h.run_queued_calls();
        })
        .def("wait_for",
             [](PyPlugin &p, const std::string &kind, size_t count, double timeout) {
                 RecordingHost &h = p.h();
                 py::gil_scoped_release release;
                 // count() takes mu_, which wait_until holds: count here by hand.
                 return h.wait_until([&h, &kind, count] {
                     size_t n = 0;
                     for (const auto &e : h.events_unlocked()) n += e.kind == kind;
                     return n >= count;
                 }, timeout);
             },
             py::arg("kind"), py::arg("count") = 1, py::arg("timeout") = 5.0)
        .def("events",
             [](PyPlugin &p, const std::string &kind) {
                 py::list out;
                 for (const auto &e : p.any().events()) {
                     if (kind.empty() || e.kind == kind) out.append(event_dict(e));
                 }
                 return out;
             },
             py::arg("kind") = "")
        .def("sent",
             [](PyPlugin &p, aurora_conn_id conn) {
                 py::list out;
                 for (const auto &e : p.any().events()) {
                     if (e.kind == "send" && (conn == 0 || e.conn == conn)) out.append(loads_or_none(e.payload));
                 }
                 return out;
             },
             py::arg("conn") = 0)
        .def("broadcasts",
             [](PyPlugin &p, const std::string &room) {
                 py::list out;
                 for (const auto &e : p.any().events()) {
                     if (e.kind == "broadcast" && (room.empty() || e.room == room)) out.append(loads_or_none(e.payload));
                 }
                 return out;
             },
             py::arg("room") = "")
        .def("logs",
             [](PyPlugin &p, int max_level) {
                 py::list out;
                 for (const auto &e : p.any().events()) {
                     if (e.kind == "log" && e.code <= max_level) out.append(e.payload);
                 }
                 return out;
             },
             py::arg("max_level") = 3)
        .def("closes", [](PyPlugin &p) {
            py::list out;
            for (const auto &e : p.any().events()) {
                if (e.kind == "close") out.append(py::make_tuple(e.conn, e.code, e.payload));
            }
            return out;
        })
        .def("metrics", [](PyPlugin &p) {
            py::dict out;
            for (const auto &mt : p.any().metrics()) {
                std::string key = mt.name + (mt.labels.empty() ? "" : "{" + mt.labels + "}");
                if (mt.kind == "histogram") {
                    out[py::str(key + "_count")] = static_cast<double>(mt.count);
                    out[py::str(key + "_sum")] = mt.value;
                } else {
                    out[py::str(key)] = mt.value;
                }
            }
            return out;
        })
        .def("routes", [](PyPlugin &p) {
            py::list out;
            for (const auto &r : p.any().routes()) out.append(py::make_tuple(r.method, r.path, r.prefix));
            return out;
        })
        .def("on_event", &PyPlugin::on_event, py::arg("callback"))
        .def("close", &PyPlugin::close)
        .def("__enter__", [](py::object self) { return self; })
        .def("__exit__", [](PyPlugin &p, py::args) { p.close(); });
}

// aurora.EmbeddedHost: a whole host in this process (aurora/embed.h).
void bind_embedded_host(py::module_ &m) {
    py::class_<EmbeddedHost>(m, "EmbeddedHost")
        .def(py::init<const std::string &>(), py::arg("config_json"), py::call_guard<py::gil_scoped_release>())
        .def_property_readonly("port", &EmbeddedHost::port)
        .def_property_readonly("running", &EmbeddedHost::running)
        .def_property_readonly("exit_code", &EmbeddedHost::exit_code)
        .def("start", &EmbeddedHost::start, py::call_guard<py::gil_scoped_release>())
        .def("stop", &EmbeddedHost::stop, py::call_guard<py::gil_scoped_release>());
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    // As aurora-host does before loading plugins (host/src/main.cpp): no
    // libmongoc counters in /dev/shm. Import time is the earliest point.
    setenv("MONGOC_DISABLE_SHM", "1", 0);
    m.doc() = "Aurora's native layer: plugins in-process (Plugin) and embedded hosts (EmbeddedHost).";
    m.attr("__version__") = AURORA_PY_VERSION;
    m.attr("ABI_VERSION") = std::to_string(AURORA_ABI_MAJOR) + "." + std::to_string(AURORA_ABI_MINOR);
    m.attr("ABI_MAJOR") = AURORA_ABI_MAJOR;
    m.attr("ABI_MINOR") = AURORA_ABI_MINOR;
    m.def("host_version", [] { return std::string(aurora_host_version()); });

    register_errors(m);
    bind_message(m);
    bind_http_response(m);
    bind_plugin(m);
    bind_embedded_host(m);
}
