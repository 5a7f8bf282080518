// Reports of a run directory: results.jsonl reading, summary.csv numbers, SVG plots read
// back, report.md sections, and `softprompt plot`'s series from metric logs.
#include "experiments/report/report.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "experiments/report/metrics_plot.h"
#include "experiments/report/results.h"
#include "experiments/report/summary.h"
#include "experiments/report/svg_plot.h"
#include "temp_dir.h"
#include "tensor/error.h"

namespace sp {
namespace {

namespace fs = std::filesystem;

// A minimal XML reader: checks that tags nest and attributes are quoted, and returns the
// elements (name + attributes) in document order. Enough to prove the SVG is well formed.
struct XmlElement {
  std::string name;
  std::map<std::string, std::string> attrs;
};

std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    const size_t semi = s.find(';', i);
    const std::string ent = s.substr(i + 1, semi - i - 1);
    out += ent == "amp" ? '&' : ent == "lt" ? '<' : ent == "gt" ? '>' : ent == "quot" ? '"' : '\'';
    i = semi;
  }
  return out;
}

std::vector<XmlElement> parse_xml(const std::string& xml) {
  std::vector<XmlElement> elements;
  std::vector<std::string> open;
  size_t i = 0;
  while ((i = xml.find('<', i)) != std::string::npos) {
    const size_t end = xml.find('>', i);
    EXPECT_NE(end, std::string::npos) << "unterminated tag at " << i;
    if (end == std::string::npos) break;
    std::string tag = xml.substr(i + 1, end - i - 1);
    i = end + 1;
    if (tag.starts_with("?") || tag.starts_with("!")) continue;
    if (tag.starts_with("/")) {
      EXPECT_FALSE(open.empty()) << "closing </" << tag.substr(1) << "> without an opening tag";
      if (open.empty()) continue;
      EXPECT_EQ(open.back(), tag.substr(1)) << "mismatched closing tag";
      open.pop_back();
      continue;
    }
    const bool self_closing = tag.ends_with("/");
    if (self_closing) tag.pop_back();
    XmlElement e;
    size_t p = tag.find_first_of(" \n");
    e.name = tag.substr(0, p);
    while (p != std::string::npos && p < tag.size()) {
      p = tag.find_first_not_of(" \n", p);
      if (p == std::string::npos) break;
      const size_t eq = tag.find('=', p);
      EXPECT_NE(eq, std::string::npos) << "attribute without a value in <" << tag << ">";
      if (eq == std::string::npos) break;
      EXPECT_EQ(tag[eq + 1], '"') << "unquoted attribute in <" << tag << ">";
      const size_t close = tag.find('"', eq + 2);
      EXPECT_NE(close, std::string::npos);
      e.attrs[tag.substr(p, eq - p)] = unescape(tag.substr(eq + 2, close - eq - 2));
      p = close + 1;
    }
    EXPECT_EQ(tag.find('<'), std::string::npos) << "'<' inside a tag";
    elements.push_back(e);
    if (!self_closing) open.push_back(e.name);
  }
  EXPECT_TRUE(open.empty()) << "unclosed <" << (open.empty() ? "" : open.back()) << ">";
  return elements;
}

ResultRecord record(const std::string& trial, int length, const std::string& init, int seed,
                    double accuracy) {
  ResultRecord r;
  r.trial = trial;
  r.point = {{"peft.length", length}, {"peft.init", init}};
  r.seed = seed;
  r.stage = "tune";
  r.task = "wordnet_wic";
  r.split = "validation";
  r.step = 100;
  r.metrics = {{"accuracy", accuracy}};
  r.method = "prompt_tuning";
  r.trainable_params = length * 64;
  r.total_params = 1000000;
  r.trainable_share = length * 64 / 1e6;
  r.seconds = {{"tune", 10.0 + seed}};
  r.finished = "2026-11-26T10:00:00Z";
  return r;
}

std::vector<ResultRecord> handmade() {
  return {record("a", 1, "random", 1, 50),       record("b", 1, "random", 2, 60),
          record("c", 1, "random", 3, 70),       record("d", 20, "random", 1, 65),
          record("e", 20, "random", 2, 75),      record("f", 1, "class_label", 1, 80),
          record("g", 20, "class_label", 1, 90), record("h", 20, "class_label", 2, 91)};
}

std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::string cell;
    std::istringstream ls(line);
    while (std::getline(ls, cell, ',')) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.push_back("");
    rows.push_back(cells);
  }
  return rows;
}

TEST(ReportResults, RoundTripsAndKeepsTheLastLinePerTrialStage) {
  TempDir dir;
  const std::string path = (dir.path / "results.jsonl").string();
  EXPECT_TRUE(read_results(path).empty());
  append_result(path, record("a", 1, "random", 1, 50));
  append_result(path, record("b", 5, "random", 1, 60));
  append_result(path, record("a", 1, "random", 1, 55));  // a rerun's duplicate
  // An interrupted append: a partial last line without its newline is skipped.
  { std::ofstream(path, std::ios::app) << "{\"trial\": \"c\", \"sta"; }
  const std::vector<ResultRecord> got = read_results(path);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].trial, "b");
  EXPECT_EQ(got[1].trial, "a");
  EXPECT_DOUBLE_EQ(got[1].metrics.at("accuracy"), 55);
  EXPECT_EQ(got[1].point, (nlohmann::json{{"peft.length", 1}, {"peft.init", "random"}}));
  EXPECT_EQ(got[1].trainable_params, 64);
  EXPECT_DOUBLE_EQ(got[1].seconds.at("tune"), 11.0);
  // The file itself only grew: three complete lines and the partial one.
  const std::string text = read_text(path);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
}

TEST(ReportResults, AppendAfterAnInterruptedAppendKeepsTheFileReadable) {
  TempDir dir;
  const std::string path = (dir.path / "results.jsonl").string();
  append_result(path, record("a", 1, "random", 1, 50));
  { std::ofstream(path, std::ios::app) << "{\"trial\": \"c\", \"sta"; }
  // The rerun's record must not be glued onto the partial line.
  append_result(path, record("b", 5, "random", 1, 60));
  const std::vector<ResultRecord> got = read_results(path);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].trial, "a");
  EXPECT_EQ(got[1].trial, "b");
  const std::string text = read_text(path);
  EXPECT_EQ(text.find("\"trial\": \"c\""), std::string::npos) << text;
  EXPECT_EQ(text.back(), '\n');
}

// A last line that is a complete record but lacks its newline (a file edited or merged by
// hand) counts as a record for read_results, so the next append must keep it.
TEST(ReportResults, AppendKeepsACompleteLastLineWithoutItsNewline) {
  TempDir dir;
  const std::string path = (dir.path / "results.jsonl").string();
  { std::ofstream(path) << to_json(record("a", 1, "random", 1, 50)).dump(); }
  ASSERT_EQ(read_results(path).size(), 1u);
  append_result(path, record("b", 5, "random", 1, 60));
  const std::vector<ResultRecord> got = read_results(path);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].trial, "a");
  EXPECT_EQ(got[1].trial, "b");
  const std::string text = read_text(path);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);
}

TEST(ReportResults, MalformedLineNamesTheFileAndLine) {
  TempDir dir;
  const std::string path = (dir.path / "results.jsonl").string();
  append_result(path, record("a", 1, "random", 1, 50));
  { std::ofstream(path, std::ios::app) << "{\"stage\": \"tune\"}\n"; }
  try {
    read_results(path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("results.jsonl:2: [results] expected \"trial\""),
              std::string::npos)
        << e.what();
  }
}

TEST(ReportSummary, MeanStdAndCountOverSeeds) {
  const std::vector<SummaryRow> rows = summarize(handmade());
  ASSERT_EQ(rows.size(), 4u);
  // Ordered by point: peft.init (strings) then peft.length (numbers).
  EXPECT_EQ(rows[0].point["peft.init"], "class_label");
  EXPECT_EQ(rows[0].point["peft.length"], 1);
  EXPECT_EQ(rows[0].n, 1);
  EXPECT_DOUBLE_EQ(rows[0].mean, 80);
  EXPECT_DOUBLE_EQ(rows[0].std, 0);
  EXPECT_EQ(rows[1].point["peft.length"], 20);
  EXPECT_DOUBLE_EQ(rows[1].mean, 90.5);
  EXPECT_DOUBLE_EQ(rows[1].std, std::sqrt(0.5));  // sample std of {90, 91}
  EXPECT_EQ(rows[2].point["peft.init"], "random");
  EXPECT_EQ(rows[2].n, 3);
  EXPECT_DOUBLE_EQ(rows[2].mean, 60);
  EXPECT_DOUBLE_EQ(rows[2].std, 10);  // {50, 60, 70}
  EXPECT_EQ(rows[2].seeds, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_DOUBLE_EQ(rows[3].mean, 70);
  EXPECT_DOUBLE_EQ(rows[3].std, std::sqrt(50.0));

  const auto csv = parse_csv(summary_csv(rows, swept_keys(handmade())));
  ASSERT_EQ(csv.size(), 5u);
  EXPECT_EQ(csv[0], (std::vector<std::string>{"stage", "task", "split", "peft.init", "peft.length",
                                              "metric", "mean", "std", "n"}));
  EXPECT_EQ(csv[3], (std::vector<std::string>{"tune", "wordnet_wic", "validation", "random", "1",
                                              "accuracy", "60", "10", "3"}));
  EXPECT_NEAR(std::stod(csv[2][7]), std::sqrt(0.5), 1e-9);
  EXPECT_NEAR(std::stod(csv[4][7]), std::sqrt(50.0), 1e-9);
}

TEST(ReportSummary, NanMetricsAreLeftOutOfMeanAndCount) {
  std::vector<ResultRecord> r = {record("a", 1, "random", 1, 50), record("b", 1, "random", 2, 70),
                                 record("c", 1, "random", 3, std::nan(""))};
  const std::vector<SummaryRow> rows = summarize(r);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].n, 2);
  EXPECT_DOUBLE_EQ(rows[0].mean, 60);
}

// Keys and values with commas, quotes and line breaks (CR included: spreadsheet and Python
// readers end a row at a bare CR) are quoted, so every row keeps its columns.
TEST(ReportSummary, CsvQuotesCommasQuotesAndLineBreaks) {
  ResultRecord r = record("a", 1, "random", 1, 50);
  r.point = {{"data, \"dir\"", "x\ry"}, {"note", "two\nlines"}};
  const std::string csv = summary_csv(summarize({r}), swept_keys({r}));
  EXPECT_EQ(csv,
            "stage,task,split,\"data, \"\"dir\"\"\",note,metric,mean,std,n\n"
            "tune,wordnet_wic,validation,\"x\ry\",\"two\nlines\",accuracy,50,0,1\n");
}

// Seeds that all give the same accuracy (a small model stuck at the majority class) have no
// spread: std is exactly 0, not rounding noise such as 2e-15 in summary.csv and an error
// bar in the plot.
TEST(ReportSummary, IdenticalSeedsHaveZeroStd) {
  for (const double v : {100.0 * 1 / 9, 100.0 * 2 / 9, 0.1, 71.25}) {
    const std::vector<ResultRecord> r = {record("t0", 1, "random", 0, v),
                                         record("t1", 1, "random", 1, v),
                                         record("t2", 1, "random", 2, v)};
    const std::vector<SummaryRow> rows = summarize(r);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].n, 3);
    EXPECT_EQ(rows[0].mean, v);
    EXPECT_EQ(rows[0].std, 0.0) << v;
    char row_end[64];
    std::snprintf(row_end, sizeof row_end, ",accuracy,%.10g,0,3\n", v);
    const std::string csv = summary_csv(rows, swept_keys(r));
    EXPECT_NE(csv.find(row_end), std::string::npos) << csv;
  }
}

// A point whose every seed produced NaN has no numbers: NaN mean and std, not a std of 0.
TEST(ReportSummary, AllNanSeedsGiveNanMeanAndStd) {
  const std::vector<ResultRecord> r = {record("a", 1, "random", 1, std::nan("")),
                                       record("b", 1, "random", 2, std::nan(""))};
  const std::vector<SummaryRow> rows = summarize(r);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].n, 0);
  EXPECT_TRUE(std::isnan(rows[0].mean));
  EXPECT_TRUE(std::isnan(rows[0].std));
  EXPECT_NE(summary_csv(rows, swept_keys(r)).find(",accuracy,nan,nan,0\n"), std::string::npos);
}

TEST(ReportSvg, WellFormedWithEveryPointReadBack) {
  PlotSeries a{"random & <friends>", {1, 5, 20, 100, 150}, {50, 60, 65, 66, 67}, {1, 2, 0, 1, 1}};
  PlotSeries b{"class_label", {1, 20, 150}, {70, 80, 81}, {}};
  PlotOptions o;
  o.title = "accuracy";
  o.x_label = "prompt length";
  o.y_label = "accuracy";
  o.log_x = true;
  const std::vector<XmlElement> el = parse_xml(render_line_plot({a, b}, o));
  ASSERT_FALSE(el.empty());
  EXPECT_EQ(el[0].name, "svg");
  std::vector<std::tuple<std::string, double, double>> points;
  int errorbars = 0, polylines = 0;
  std::vector<std::string> ticks, legend;
  for (const XmlElement& e : el) {
    if (e.name == "circle" && e.attrs.count("data-x"))
      points.emplace_back(e.attrs.at("data-series"), std::stod(e.attrs.at("data-x")),
                          std::stod(e.attrs.at("data-y")));
    if (e.name == "path" && e.attrs.count("class") && e.attrs.at("class") == "errorbar")
      ++errorbars;
    if (e.name == "polyline") ++polylines;
  }
  ASSERT_EQ(points.size(), 8u);
  EXPECT_EQ(points[0], std::make_tuple(std::string("random & <friends>"), 1.0, 50.0));
  EXPECT_EQ(points[4], std::make_tuple(std::string("random & <friends>"), 150.0, 67.0));
  EXPECT_EQ(points[6], std::make_tuple(std::string("class_label"), 20.0, 80.0));
  EXPECT_EQ(errorbars, 4);  // the zero-width one is not drawn
  EXPECT_EQ(polylines, 2);
  const std::string svg = render_line_plot({a, b}, o);
  EXPECT_NE(svg.find(">prompt length (log scale)</text>"), std::string::npos);
  EXPECT_NE(svg.find(">150</text>"), std::string::npos);  // log-x ticks at the data values
  EXPECT_NE(svg.find("class=\"legend-entry\""), std::string::npos);
}

TEST(ReportSvg, PointsMapMonotonicallyAndNanBreaksTheLine) {
  PlotSeries s{"s", {0, 1, 2, 3}, {0, 10, std::nan(""), 30}, {}};
  const std::vector<XmlElement> el = parse_xml(render_line_plot({s}, PlotOptions{}));
  std::vector<double> cx, cy;
  int polylines = 0;
  for (const XmlElement& e : el) {
    if (e.name == "circle" && e.attrs.count("data-x")) {
      cx.push_back(std::stod(e.attrs.at("cx")));
      cy.push_back(std::stod(e.attrs.at("cy")));
    }
    if (e.name == "polyline") ++polylines;
  }
  ASSERT_EQ(cx.size(), 3u);
  EXPECT_LT(cx[0], cx[1]);
  EXPECT_LT(cx[1], cx[2]);
  EXPECT_GT(cy[0], cy[1]);  // larger y is higher up: smaller pixel y
  EXPECT_GT(cy[1], cy[2]);
  EXPECT_EQ(polylines, 2);
}

TEST(ReportSvg, BadInputsThrowNamingTheSeries) {
  PlotOptions log;
  log.log_x = true;
  EXPECT_THROW(render_line_plot({PlotSeries{"zero", {0, 1}, {1, 2}, {}}}, log), Error);
  EXPECT_THROW(render_line_plot({PlotSeries{"short", {0, 1}, {1}, {}}}, PlotOptions{}), Error);
  try {
    PlotOptions cat;
    cat.x_categories = {"a", "b"};
    render_line_plot({PlotSeries{"c", {0, 2}, {1, 2}, {}}}, cat);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("series 'c' has x = 2 outside the 2 categories"),
              std::string::npos)
        << e.what();
  }
}

TEST(ReportSvg, NiceAndLogTicks) {
  const std::vector<double> unit = nice_ticks(0, 1, 5);
  ASSERT_EQ(unit.size(), 6u);
  for (size_t i = 0; i < unit.size(); ++i) EXPECT_NEAR(unit[i], 0.2 * i, 1e-12);
  const std::vector<double> t = nice_ticks(47.5, 92.5, 6);
  EXPECT_EQ(t.front(), 50);
  EXPECT_EQ(t.back(), 90);
  EXPECT_EQ(log_ticks(0.8, 1200), (std::vector<double>{1, 10, 100, 1000}));
  EXPECT_EQ(log_ticks(3, 40), (std::vector<double>{5, 10, 20}));
  EXPECT_EQ(tick_text(150), "150");
  EXPECT_EQ(tick_text(100000), "1e+05");
}

// A log axis over less than a decade still gets at least two labelled ticks (a loss curve
// between 2.6 and 4.7 had none: no multiple of 1, 2 or 5 falls inside).
TEST(ReportSvg, LogAxisWithinADecadeHasTicks) {
  for (const auto& [lo, hi] :
       std::vector<std::pair<double, double>>{{2.56, 4.75}, {3.1, 3.3}, {0.031, 0.045}, {6, 9}}) {
    const std::vector<double> t = log_ticks(lo, hi);
    EXPECT_GE(t.size(), 2u) << lo << ".." << hi;
    for (double v : t) {
      EXPECT_GE(v, lo * (1 - 1e-9));
      EXPECT_LE(v, hi * (1 + 1e-9));
    }
  }
  EXPECT_EQ(log_ticks(0.8, 1200), (std::vector<double>{1, 10, 100, 1000}));  // unchanged
  PlotOptions o;
  o.log_y = true;
  const std::string svg = render_line_plot({PlotSeries{"loss", {1, 2, 3}, {3.2, 3.5, 3.8}, {}}}, o);
  const size_t y_axis = svg.find("<g class=\"y-axis\"");
  const std::string y_part = svg.substr(y_axis, svg.find("</g>", y_axis) - y_axis);
  size_t ticks = 0;
  for (size_t p = 0; (p = y_part.find("class=\"tick\"", p)) != std::string::npos; ++p) ++ticks;
  EXPECT_GE(ticks, 2u) << y_part;
}

// A legend entry too long for the legend column is shortened with an ellipsis so it stays
// inside the image; the full name is kept in its tooltip.
TEST(ReportSvg, LongLegendEntriesStayInsideTheImage) {
  const std::string name =
      "stages.tune.peft.init=class_labels, stages.tune.optimizer.lr=0.3 & <more>";
  PlotOptions o;
  const std::string svg = render_line_plot(
      {PlotSeries{name, {1, 2}, {1, 2}, {}}, PlotSeries{"b", {1, 2}, {2, 3}, {}}}, o);
  parse_xml(svg);
  const size_t entry = svg.find("class=\"legend-entry\"");
  ASSERT_NE(entry, std::string::npos);
  const size_t x_at = svg.find("x=\"", entry) + 3;
  const double x = std::stod(svg.substr(x_at));
  const size_t text_at = svg.find('>', entry) + 1;
  const std::string text = svg.substr(text_at, svg.find('<', text_at) - text_at);
  // Sans-serif at 12px is about 7px per character at most (UTF-8: count lead bytes).
  const auto chars = std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  });
  EXPECT_LE(x + 7.0 * static_cast<double>(chars), o.width) << text;
  EXPECT_TRUE(text.ends_with("\u2026")) << text;
  EXPECT_NE(svg.find("<title>stages.tune.peft.init=class_labels, stages.tune.optimizer.lr=0.3 "
                     "&amp; &lt;more&gt;</title>"),
            std::string::npos);
  // Short names are left alone.
  EXPECT_NE(svg.find(">b</text>"), std::string::npos);
}

TEST(ReportPlots, OneLinePerSeriesKeyAgainstTheChosenX) {
  const std::vector<ResultRecord> results = handmade();
  const std::vector<SummaryRow> rows = summarize(results);
  const std::vector<std::string> keys = swept_keys(results);
  EXPECT_EQ(choose_x_key(rows, keys, ""), "peft.length");  // the numeric key
  EXPECT_EQ(choose_x_key(rows, keys, "peft.init"), "peft.init");
  ReportContext c;
  c.sweep_values["peft.init"] = {"random", "class_label"};
  const std::vector<SummaryPlot> plots = summary_plots(rows, keys, c);
  ASSERT_EQ(plots.size(), 1u);
  EXPECT_EQ(plots[0].file, "tune-wordnet_wic-validation-accuracy.svg");
  EXPECT_TRUE(plots[0].options.log_x);  // 1 .. 20
  ASSERT_EQ(plots[0].series.size(), 2u);
  EXPECT_EQ(plots[0].series[0].name, "peft.init=random");  // the spec's order
  EXPECT_EQ(plots[0].series[0].x, (std::vector<double>{1, 20}));
  EXPECT_EQ(plots[0].series[0].y, (std::vector<double>{60, 70}));
  EXPECT_EQ(plots[0].series[0].err, (std::vector<double>{10, std::sqrt(50.0)}));
  EXPECT_EQ(plots[0].series[1].y, (std::vector<double>{80, 90.5}));

  // Categorical x: init on the axis, one line per length.
  c.preferred_x = "peft.init";
  const std::vector<SummaryPlot> cat = summary_plots(rows, keys, c);
  EXPECT_EQ(cat[0].options.x_categories, (std::vector<std::string>{"random", "class_label"}));
  EXPECT_EQ(cat[0].series[1].name, "peft.length=20");
  EXPECT_EQ(cat[0].series[1].x, (std::vector<double>{0, 1}));
  EXPECT_EQ(cat[0].series[1].y, (std::vector<double>{70, 90.5}));
}

// sweep.x: total_params (Figure 1): each record's parameter count on a log axis; a key
// swept with the model (the size) is no series, the method is, though prompt tuning's
// totals (backbone + prompt) differ from model tuning's at every size.
TEST(ReportPlots, TotalParamsAxisFromTheRecords) {
  std::vector<ResultRecord> results;
  const std::pair<const char*, int64_t> sizes[] = {
      {"small", 60000000}, {"base", 220000000}, {"xl", 3000000000}};
  constexpr int64_t kPrompt = 100 * 512;
  for (const auto& [size, total] : sizes)
    for (const char* method : {"prompt_tuning", "model_tuning"})
      for (int64_t seed : {1, 2}) {
        ResultRecord r = record(std::string(size) + method + std::to_string(seed), 1, "random",
                                seed, total > 1e9 ? 80.0 : 60.0);
        r.point = {{"tags.size", size}, {"method", method}};
        r.total_params = total + (std::string(method) == "prompt_tuning" ? kPrompt : 0);
        results.push_back(r);
      }
  results.back().total_params = 0;  // a record that counts nothing keeps its point
  const std::vector<ResultRecord> axis = with_total_params_axis(results);
  EXPECT_EQ(axis.front().point[kTotalParamsAxis], 60000000 + kPrompt);
  EXPECT_FALSE(axis.back().point.contains(kTotalParamsAxis));
  const std::vector<ResultRecord> counted(axis.begin(), axis.end() - 1);
  const std::vector<SummaryRow> rows = summarize(counted);
  const std::vector<std::string> keys = swept_keys(counted);
  ReportContext c;
  c.preferred_x = kTotalParamsAxis;
  c.sweep_groups = {{"tags.size", "model.checkpoint"}, {"method"}};
  const std::vector<SummaryPlot> plots = summary_plots(rows, keys, c);
  ASSERT_EQ(plots.size(), 1u);
  EXPECT_TRUE(plots[0].options.log_x);
  ASSERT_EQ(plots[0].series.size(), 2u);
  EXPECT_EQ(plots[0].series[0].name, "method=model_tuning");
  EXPECT_EQ(plots[0].series[0].x, (std::vector<double>{6e7, 2.2e8, 3e9}));
  EXPECT_EQ(plots[0].series[1].name, "method=prompt_tuning");
  EXPECT_EQ(plots[0].series[1].x,
            (std::vector<double>{6e7 + kPrompt, 2.2e8 + kPrompt, 3e9 + kPrompt}));
  EXPECT_EQ(plots[0].series[1].y, (std::vector<double>{60, 60, 80}));

  // A key zipped with an ordinary x is no series either.
  c.preferred_x = "tags.size";
  c.sweep_groups = {{"tags.size", "method"}};
  const std::vector<SummaryPlot> zipped =
      summary_plots(summarize(results), {"tags.size", "method"}, c);
  ASSERT_EQ(zipped.size(), 1u);
  EXPECT_EQ(zipped[0].series.size(), 1u);
}

TEST(ReportFilesTest, WritesCsvPlotsAndReportSections) {
  TempDir dir;
  for (const ResultRecord& r : handmade()) append_result((dir.path / "results.jsonl").string(), r);
  ReportContext c;
  c.name = "quickstart";
  c.config_text = "{\"name\": \"quickstart\"}";
  c.trials_total = 10;
  c.shared_stages = {{"pretrain", "pretrain", "stages/pretrain-abc", 42.0, true}};
  c.failures = {"z: [trainer] step 3: loss is NaN"};
  const ReportFiles files = write_reports(dir.path.string(), c);
  ASSERT_EQ(files.plots.size(), 1u);
  EXPECT_TRUE(fs::exists(files.plots[0]));
  parse_xml(read_text(files.plots[0]));
  EXPECT_EQ(parse_csv(read_text(files.summary_csv)).size(), 5u);
  const std::string md = read_text(files.report_md);
  for (const char* section :
       {"# quickstart\n", "## Results\n", "## Plots\n", "## Trainable parameters\n", "## Timings\n",
        "## Failures\n", "## Configuration\n"})
    EXPECT_NE(md.find(section), std::string::npos) << section;
  EXPECT_NE(md.find("8 of 10 trials"), std::string::npos);
  EXPECT_NE(md.find("| 60.00 \u00b1 10.00 | 3 |"), std::string::npos);
  EXPECT_NE(md.find("![accuracy on wordnet_wic (validation), tune"), std::string::npos);
  EXPECT_NE(md.find("(tune-wordnet_wic-validation-accuracy.svg)"), std::string::npos);
  EXPECT_NE(
      md.find("| prompt_tuning | peft.init=random, peft.length=20 | 1280 | 1000000 | 0.128% |"),
      std::string::npos);
  EXPECT_NE(md.find("`stages/pretrain-abc` | 42.0 | done"), std::string::npos);
  EXPECT_NE(md.find("{\"name\": \"quickstart\"}"), std::string::npos);
  EXPECT_NE(md.find("Total trial time 93.0 s."), std::string::npos);  // 8 trials, 10 + seed each
}

TEST(ReportTrainingCurves, OnePlotPerGroupFromTheStagesLogs) {
  TempDir dir;
  fs::create_directories(dir.path / "stages/pretrain-a");
  // Eval lines carry no loss; step 20 was logged again after a resume; the last line was
  // cut short by an interrupted append.
  std::ofstream(dir.path / "stages/pretrain-a/metrics.jsonl")
      << "{\"step\": 10, \"loss\": 7.5}\n{\"step\": 20, \"loss\": 6.0}\n"
         "{\"step\": 20, \"eval\": {\"accuracy\": 50}}\n{\"step\": 20, \"loss\": 5.5}\n"
         "{\"step\": 30, \"loss\": 5.0}\n{\"step\": 40, \"lo";
  std::vector<CurveSource> sources = {{"pretrain", "pretrain", "stages/pretrain-a/metrics.jsonl"},
                                      {"tune rte", "never ran", "stages/tune-x/metrics.jsonl"}};
  for (int i = 0; i < 12; ++i) {
    const std::string sub = "stages/tune-" + std::to_string(i);
    fs::create_directories(dir.path / sub);
    std::ofstream(dir.path / sub / "metrics.jsonl")
        << "{\"step\": 1, \"loss\": " << 3 + i << "}\n{\"step\": 2, \"loss\": 2}\n";
    sources.push_back({"tune rte", "t" + std::to_string(i), sub + "/metrics.jsonl"});
  }
  const std::vector<SummaryPlot> plots = training_curve_plots(dir.path.string(), sources);
  ASSERT_EQ(plots.size(), 3u);
  EXPECT_EQ(plots[0].file, "curve-pretrain.svg");
  ASSERT_EQ(plots[0].series.size(), 1u);
  EXPECT_EQ(plots[0].series[0].x, (std::vector<double>{10, 20, 30}));
  EXPECT_EQ(plots[0].series[0].y, (std::vector<double>{7.5, 5.5, 5.0}));
  // 12 tune lines (the missing log left out): 10 in the first plot, 2 in the second.
  EXPECT_EQ(plots[1].file, "curve-tune_rte-1.svg");
  EXPECT_EQ(plots[2].file, "curve-tune_rte-2.svg");
  ASSERT_EQ(plots[1].series.size(), kCurvesPerPlot);
  ASSERT_EQ(plots[2].series.size(), 2u);
  EXPECT_EQ(plots[1].series[0].name, "t0");
  EXPECT_EQ(plots[2].series[1].name, "t11");
  EXPECT_EQ(plots[2].series[1].y, (std::vector<double>{14, 2}));
  EXPECT_NE(plots[2].caption.find("(2 of 2)"), std::string::npos);

  // A long log is drawn as window means: 1000 steps -> windows of 3, the last one short.
  {
    std::ofstream long_log(dir.path / "stages/pretrain-a/metrics.jsonl");
    for (int step = 1; step <= 1000; ++step)
      long_log << "{\"step\": " << step << ", \"loss\": " << 2 * step << "}\n";
  }
  const std::vector<SummaryPlot> long_plots = training_curve_plots(dir.path.string(), {sources[0]});
  ASSERT_EQ(long_plots.size(), 1u);
  const PlotSeries& means = long_plots[0].series[0];
  ASSERT_EQ(means.x.size(), 334u);
  EXPECT_EQ(means.x[0], 2.0);  // steps 1, 2, 3
  EXPECT_EQ(means.y[0], 4.0);
  EXPECT_EQ(means.x.back(), 1000.0);  // step 1000 alone
  EXPECT_EQ(means.y.back(), 2000.0);

  // write_reports draws them and report.md links them under their own section. It removes
  // the group's files of an earlier pass with fewer (or more) lines, and no other file.
  for (const char* name : {"curve-tune_rte.svg", "curve-tune_rte-3.svg", "curve-pretrain-1.svg",
                           "curve-tune_rte-notes.svg", "curve-tune_rte.txt", "curve-other.svg"})
    std::ofstream(dir.path / name) << "old";
  ReportContext c;
  c.curves = sources;
  const ReportFiles files = write_reports(dir.path.string(), c);
  EXPECT_EQ(files.plots.size(), 3u);
  for (const char* gone : {"curve-tune_rte.svg", "curve-tune_rte-3.svg", "curve-pretrain-1.svg"})
    EXPECT_FALSE(fs::exists(dir.path / gone)) << gone;
  for (const char* kept : {"curve-tune_rte-1.svg", "curve-tune_rte-2.svg",
                           "curve-tune_rte-notes.svg", "curve-tune_rte.txt", "curve-other.svg"})
    EXPECT_TRUE(fs::exists(dir.path / kept)) << kept;
  parse_xml(read_text(dir.path / "curve-pretrain.svg"));
  const std::string md = read_text(files.report_md);
  EXPECT_NE(md.find("## Training curves\n"), std::string::npos);
  EXPECT_NE(md.find("(curve-tune_rte-2.svg)"), std::string::npos);
}

TEST(ReportMetricsPlot, SeriesFromJsonlLogsSkipLinesWithoutTheKeys) {
  TempDir dir;
  const fs::path a = dir.path / "pretrain.jsonl", b = dir.path / "tune.jsonl";
  {
    std::ofstream(a) << "{\"step\": 10, \"loss\": 5.5}\n{\"step\": 20, \"eval\": {\"acc\": 3}}\n"
                        "{\"step\": 20, \"loss\": 4.25}\n";
    std::ofstream(b) << "{\"step\": 1, \"loss\": 2, \"eval\": {\"acc\": 50}}\n";
  }
  const auto one = series_from_jsonl({a.string()}, "step", {"loss", "eval.acc"});
  ASSERT_EQ(one.size(), 2u);
  EXPECT_EQ(one[0].name, "loss");
  EXPECT_EQ(one[0].x, (std::vector<double>{10, 20}));
  EXPECT_EQ(one[0].y, (std::vector<double>{5.5, 4.25}));
  EXPECT_EQ(one[1].y, (std::vector<double>{3}));
  const auto two = series_from_jsonl({a.string(), b.string()}, "step", {"loss"});
  EXPECT_EQ(two[1].name, "tune");
  EXPECT_THROW(series_from_jsonl({a.string()}, "step", {"nope"}), Error);
}

// A dotted key names a field inside nested objects: "loss.smoothed" is not "loss" on a line
// whose "loss" is a plain number, so such a line has no "loss.smoothed".
TEST(ReportMetricsPlot, DottedKeyDoesNotStopAtANumber) {
  TempDir dir;
  const fs::path a = dir.path / "metrics.jsonl";
  std::ofstream(a) << "{\"step\": 10, \"loss\": 5.5}\n"
                      "{\"step\": 20, \"loss\": 4.0, \"eval\": {\"loss\": {\"smoothed\": 3}}}\n";
  EXPECT_THROW(series_from_jsonl({a.string()}, "step", {"loss.smoothed"}), Error);
  const auto nested = series_from_jsonl({a.string()}, "step", {"eval.loss.smoothed"});
  ASSERT_EQ(nested.size(), 1u);
  EXPECT_EQ(nested[0].x, (std::vector<double>{20}));
  EXPECT_EQ(nested[0].y, (std::vector<double>{3}));
}

}  // namespace
}  // namespace sp
