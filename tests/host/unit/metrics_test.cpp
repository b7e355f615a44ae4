#include <gtest/gtest.h>

#include "metrics.h"

namespace aurora::host {
namespace {

TEST(Metrics, RendersPrometheusText) {
    MetricRegistry r;
    aurora_metric *c = r.add(MetricKind::Counter, "x_total", "Things\nwith newline", "kind=\"a\"");
    aurora_metric *g = r.add(MetricKind::Gauge, "x_open", "Open things", "");
    const double bounds[] = {0.1, 1};
    aurora_metric *h = r.add(MetricKind::Histogram, "x_seconds", "Latency", "", bounds, 2);
    ASSERT_TRUE(c && g && h);
    c->add(3);
    g->set(-2.5);
    h->observe(0.05);
    h->observe(0.5);
    h->observe(7);
    std::string text = r.render();
    EXPECT_NE(text.find("# HELP x_total Things\\nwith newline\n# TYPE x_total counter\nx_total{kind=\"a\"} 3\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("x_open -2.5\n"), std::string::npos) << text;
    EXPECT_NE(text.find("x_seconds_bucket{le=\"0.1\"} 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("x_seconds_bucket{le=\"1\"} 2\n"), std::string::npos) << text;
    EXPECT_NE(text.find("x_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos) << text;
    EXPECT_NE(text.find("x_seconds_count 3\n"), std::string::npos) << text;
    EXPECT_NE(text.find("x_seconds_sum 7.55\n"), std::string::npos) << text;
}

TEST(Metrics, RefusesBadNamesLabelsAndKindClashes) {
    MetricRegistry r;
    EXPECT_FALSE(r.add(MetricKind::Counter, "9lives", "", ""));
    EXPECT_FALSE(r.add(MetricKind::Counter, "has space", "", ""));
    EXPECT_FALSE(r.add(MetricKind::Counter, "ok", "", "unquoted=1"));
    EXPECT_FALSE(r.add(MetricKind::Counter, "ok", "", "a=\"open"));
    ASSERT_TRUE(r.add(MetricKind::Counter, "ok", "", "a=\"1\",b=\"x\\\"y\""));
    EXPECT_FALSE(r.add(MetricKind::Gauge, "ok", "", ""));  // same name, other kind
    const double unsorted[] = {1, 0.5};
    EXPECT_FALSE(r.add(MetricKind::Histogram, "h", "", "", unsorted, 2));
}

}  // namespace
}  // namespace aurora::host
