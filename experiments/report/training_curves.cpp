// training_curve_plots (report.h): the training loss the stages logged, for report.md.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "experiments/report/report.h"

namespace sp {
namespace {

namespace fs = std::filesystem;

// step -> loss from a metrics.jsonl; empty when the file is missing or has no such line.
std::map<double, double> loss_by_step(const fs::path& file) {
  std::map<double, double> out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) continue;  // an interrupted append, or not JSON at all
    const auto step = j.find("step"), loss = j.find("loss");
    if (step == j.end() || loss == j.end() || !step->is_number() || !loss->is_number()) continue;
    out[step->get<double>()] = loss->get<double>();  // a resumed stage logs a step again
  }
  return out;
}

}  // namespace

std::vector<SummaryPlot> training_curve_plots(const std::string& dir,
                                              const std::vector<CurveSource>& curves) {
  std::vector<std::string> groups;
  std::map<std::string, std::vector<PlotSeries>> lines;
  for (const CurveSource& c : curves) {
    fs::path file = c.metrics_file;
    if (file.is_relative()) file = fs::path(dir) / file;
    const std::map<double, double> losses = loss_by_step(file);
    if (losses.empty()) continue;
    PlotSeries s;
    s.name = c.label;
    const size_t window = (losses.size() + kCurvePoints - 1) / kCurvePoints;
    double sum_x = 0, sum_y = 0;
    size_t in_window = 0;
    for (const auto& [step, loss] : losses) {
      sum_x += step;
      sum_y += loss;
      if (++in_window == window) {
        s.x.push_back(sum_x / static_cast<double>(window));
        s.y.push_back(sum_y / static_cast<double>(window));
        sum_x = sum_y = 0;
        in_window = 0;
      }
    }
    if (in_window > 0) {  // the last, shorter window
      s.x.push_back(sum_x / static_cast<double>(in_window));
      s.y.push_back(sum_y / static_cast<double>(in_window));
    }
    if (!lines.count(c.group)) groups.push_back(c.group);
    lines[c.group].push_back(std::move(s));
  }
  std::vector<SummaryPlot> plots;
  for (const std::string& group : groups) {
    const std::vector<PlotSeries>& all = lines[group];
    const size_t parts = (all.size() + kCurvesPerPlot - 1) / kCurvesPerPlot;
    for (size_t part = 0; part < parts; ++part) {
      SummaryPlot plot;
      const std::string suffix = parts == 1 ? "" : "-" + std::to_string(part + 1);
      plot.file = "curve-" + file_safe_name(group) + suffix + ".svg";
      const auto first = all.begin() + static_cast<std::ptrdiff_t>(part * kCurvesPerPlot);
      plot.series.assign(first, first + static_cast<std::ptrdiff_t>(std::min(
                                            kCurvesPerPlot, all.size() - part * kCurvesPerPlot)));
      const std::string of =
          parts == 1 ? "" : " (" + std::to_string(part + 1) + " of " + std::to_string(parts) + ")";
      plot.options.title = "training loss, " + group + of;
      plot.options.x_label = "step";
      plot.options.y_label = "training loss";
      plot.options.markers = false;
      plot.caption = "training loss against the step, " + group + of;
      plots.push_back(std::move(plot));
    }
  }
  return plots;
}

void remove_stale_curve_files(const std::string& dir, const std::vector<CurveSource>& curves,
                              const std::vector<SummaryPlot>& plots) {
  std::set<std::string> prefixes;  // "curve-<group>"
  for (const CurveSource& c : curves) prefixes.insert("curve-" + file_safe_name(c.group));
  std::set<std::string> keep;
  for (const SummaryPlot& p : plots) keep.insert(p.file);
  auto is_curve_file = [&](const std::string& name) {
    if (!name.ends_with(".svg")) return false;
    const std::string stem = name.substr(0, name.size() - 4);
    if (prefixes.count(stem)) return true;
    const size_t dash = stem.rfind('-');
    if (dash == std::string::npos || dash + 1 == stem.size()) return false;
    return prefixes.count(stem.substr(0, dash)) &&
           std::all_of(stem.begin() + static_cast<std::ptrdiff_t>(dash) + 1, stem.end(),
                       [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  };
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file(ec) && !keep.count(name) && is_curve_file(name)) fs::remove(e.path(), ec);
  }
}

}  // namespace sp
