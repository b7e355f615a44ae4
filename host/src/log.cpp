#include "log.h"

#include "json_text.h"

#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

namespace aurora::host {

Logger &Logger::instance() {
    static Logger logger;
    return logger;
}

void Logger::configure(aurora_log_level level, LogFormat format) {
    level_.store(level, std::memory_order_relaxed);
    format_.store(format, std::memory_order_relaxed);
}

std::optional<aurora_log_level> parse_log_level(std::string_view s) {
    if (s == "error") return AURORA_LOG_ERROR;
    if (s == "warn" || s == "warning") return AURORA_LOG_WARN;
    if (s == "info") return AURORA_LOG_INFO;
    if (s == "debug") return AURORA_LOG_DEBUG;
    return std::nullopt;
}

const char *log_level_name(aurora_log_level level) {
    switch (level) {
    case AURORA_LOG_ERROR: return "error";
    case AURORA_LOG_WARN: return "warn";
    case AURORA_LOG_INFO: return "info";
    default: return "debug";
    }
}

void Logger::write(aurora_log_level level, std::string_view source, aurora_conn_id conn, std::string_view message) {
    timeval tv{};
    gettimeofday(&tv, nullptr);
    tm utc{};
    gmtime_r(&tv.tv_sec, &utc);
    char ts[80];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                  utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(tv.tv_usec / 1000));
    std::string line;
    line.reserve(message.size() + 96);
    if (format_.load(std::memory_order_relaxed) == LogFormat::Json) {
        line += "{\"ts\":\"";
        line += ts;
        line += "\",\"level\":\"";
        line += log_level_name(level);
        line += "\",\"source\":";
        append_json_string(line, source);
        if (conn) {
            line += ",\"conn\":";
            line += std::to_string(conn);
        }
        line += ",\"msg\":";
        append_json_string(line, message);
        line += "}\n";
    } else {
        line += ts;
        line += ' ';
        line += log_level_name(level);
        line += " [";
        line += source;
        line += ']';
        if (conn) {
            line += " conn=";
            line += std::to_string(conn);
        }
        line += ' ';
        line += message;
        line += '\n';
    }
    // One write per line so lines from threads never interleave.
    const char *p = line.data();
    size_t left = line.size();
    while (left > 0) {
        ssize_t n = ::write(STDERR_FILENO, p, left);
        if (n <= 0) break;
        p += n;
        left -= static_cast<size_t>(n);
    }
}

void Logger::vlog(aurora_log_level level, std::string_view source, aurora_conn_id conn, const char *fmt,
                  va_list ap) {
    char stack[512];
    va_list copy;
    va_copy(copy, ap);
    int n = std::vsnprintf(stack, sizeof stack, fmt, copy);
    va_end(copy);
    if (n < 0) return;
    if (static_cast<size_t>(n) < sizeof stack) {
        write(level, source, conn, std::string_view(stack, static_cast<size_t>(n)));
        return;
    }
    std::string big(static_cast<size_t>(n) + 1, '\0');
    std::vsnprintf(big.data(), big.size(), fmt, ap);
    big.resize(static_cast<size_t>(n));
    write(level, source, conn, big);
}

void hlog(aurora_log_level level, aurora_conn_id conn, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    Logger::instance().vlog(level, "host", conn, fmt, ap);
    va_end(ap);
}

}  // namespace aurora::host
