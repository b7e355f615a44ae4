#include "metrics.h"

#include "log.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

void aurora_metric::observe(double v) {
    size_t i = static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), v) - bounds.begin());
    buckets[i].fetch_add(1, std::memory_order_relaxed);
    sum.fetch_add(v, std::memory_order_relaxed);
    count.fetch_add(1, std::memory_order_relaxed);
}

namespace aurora::host {

const std::vector<double> &default_latency_buckets() {
    static const std::vector<double> b{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                       0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5, 5, 10};
    return b;
}

bool MetricRegistry::valid_name(std::string_view name) {
    if (name.empty()) return false;
    for (size_t i = 0; i < name.size(); ++i) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

// `name="value",name2="value2"`: names valid, values without raw newlines.
bool MetricRegistry::valid_labels(std::string_view labels) {
    size_t i = 0;
    while (i < labels.size()) {
        size_t eq = labels.find('=', i);
        if (eq == std::string_view::npos || !valid_name(labels.substr(i, eq - i))) return false;
        if (eq + 1 >= labels.size() || labels[eq + 1] != '"') return false;
        size_t j = eq + 2;
        while (j < labels.size() && labels[j] != '"') {
            if (labels[j] == '\n') return false;
            j += labels[j] == '\\' ? 2 : 1;
        }
        if (j >= labels.size()) return false;
        i = j + 1;
        if (i < labels.size()) {
            if (labels[i] != ',') return false;
            ++i;
        }
    }
    return true;
}

aurora_metric *MetricRegistry::add(MetricKind kind, const std::string &name, const std::string &help,
                                   const std::string &labels, const double *bounds, size_t n_bounds) {
    if (!valid_name(name) || !valid_labels(labels)) {
        AURORA_HLOG(AURORA_LOG_ERROR, 0, "metric %s{%s}: invalid name or labels", name.c_str(), labels.c_str());
        return nullptr;
    }
    auto [it, inserted] = families_.try_emplace(name, Family{kind, help, {}});
    if (!inserted && it->second.kind != kind) {
        AURORA_HLOG(AURORA_LOG_ERROR, 0, "metric %s registered twice with different kinds", name.c_str());
        return nullptr;
    }
    auto m = std::make_unique<aurora_metric>();
    m->kind = kind;
    m->labels = labels;
    if (kind == MetricKind::Histogram) {
        if (bounds && n_bounds) {
            m->bounds.assign(bounds, bounds + n_bounds);
            if (!std::is_sorted(m->bounds.begin(), m->bounds.end())) {
                AURORA_HLOG(AURORA_LOG_ERROR, 0, "histogram %s: bounds must ascend", name.c_str());
                return nullptr;
            }
        } else {
            m->bounds = default_latency_buckets();
        }
        m->buckets = std::make_unique<std::atomic<uint64_t>[]>(m->bounds.size() + 1);
    }
    aurora_metric *raw = m.get();
    it->second.series.push_back(std::move(m));
    return raw;
}

namespace {

void append_number(std::string &out, double v) {
    char buf[64];
    if (std::isnan(v)) {
        out += "NaN";
    } else if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
    } else if (v == std::floor(v) && std::fabs(v) < 1e15) {
        std::snprintf(buf, sizeof buf, "%.0f", v);
        out += buf;
    } else {
        std::snprintf(buf, sizeof buf, "%.9g", v);
        out += buf;
    }
}

void append_series(std::string &out, const std::string &name, const std::string &labels, std::string_view extra,
                   double v) {
    out += name;
    if (!labels.empty() || !extra.empty()) {
        out += '{';
        out += labels;
        if (!labels.empty() && !extra.empty()) out += ',';
        out += extra;
        out += '}';
    }
    out += ' ';
    append_number(out, v);
    out += '\n';
}

void append_help(std::string &out, const std::string &help) {
    for (char c : help) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
}

}  // namespace

std::string MetricRegistry::render() const {
    std::string out;
    out.reserve(4096);
    for (const auto &[name, fam] : families_) {
        out += "# HELP " + name + ' ';
        append_help(out, fam.help);
        out += "\n# TYPE " + name + ' ';
        out += fam.kind == MetricKind::Counter ? "counter" : fam.kind == MetricKind::Gauge ? "gauge" : "histogram";
        out += '\n';
        for (const auto &m : fam.series) {
            if (fam.kind != MetricKind::Histogram) {
                append_series(out, name, m->labels, {}, m->value.load(std::memory_order_relaxed));
                continue;
            }
            uint64_t cumulative = 0;
            for (size_t i = 0; i <= m->bounds.size(); ++i) {
                cumulative += m->buckets[i].load(std::memory_order_relaxed);
                std::string le = "le=\"";
                if (i < m->bounds.size()) {
                    append_number(le, m->bounds[i]);
                } else {
                    le += "+Inf";
                }
                le += '"';
                append_series(out, name + "_bucket", m->labels, le, static_cast<double>(cumulative));
            }
            append_series(out, name + "_sum", m->labels, {}, m->sum.load(std::memory_order_relaxed));
            append_series(out, name + "_count", m->labels, {},
                          static_cast<double>(cumulative));  // consistent with +Inf
        }
    }
    return out;
}

}  // namespace aurora::host
