// One log line per event, same shape for the host and every plugin:
// time, level, source (host or plugin name), optional connection id, message.
// JSON lines or plain text. Thread-safe: each line is one write(2).
#pragma once

#include <aurora/common.h>

#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace aurora::host {

enum class LogFormat { Json, Text };

class Logger {
public:
    static Logger &instance();

    void configure(aurora_log_level level, LogFormat format);
    bool enabled(aurora_log_level level) const { return level <= level_.load(std::memory_order_relaxed); }
    aurora_log_level level() const { return level_.load(std::memory_order_relaxed); }

    void write(aurora_log_level level, std::string_view source, aurora_conn_id conn, std::string_view message);
    void vlog(aurora_log_level level, std::string_view source, aurora_conn_id conn, const char *fmt, va_list ap);

private:
    std::atomic<aurora_log_level> level_{AURORA_LOG_INFO};
    std::atomic<LogFormat> format_{LogFormat::Text};
};

std::optional<aurora_log_level> parse_log_level(std::string_view s);
const char *log_level_name(aurora_log_level level);

}  // namespace aurora::host

// Host-internal logging: AURORA_LOG(AURORA_LOG_WARN, conn, "fmt", ...).
#define AURORA_HLOG(level, conn, ...)                                                      \
    do {                                                                                    \
        if (::aurora::host::Logger::instance().enabled(level)) ::aurora::host::hlog(level, conn, __VA_ARGS__); \
    } while (0)

namespace aurora::host {
void hlog(aurora_log_level level, aurora_conn_id conn, const char *fmt, ...) AURORA_PRINTF(3, 4);
}
