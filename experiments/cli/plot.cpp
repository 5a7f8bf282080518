// `softprompt plot`: line plots of JSON-lines metric logs as SVG.
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "experiments/cli/command.h"
#include "experiments/report/metrics_plot.h"
#include "experiments/report/svg_plot.h"

namespace sp::cli {
namespace {

struct PlotArgs {
  std::vector<std::string> files;
  std::string x = "step";
  std::vector<std::string> ys;
  std::string out;
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_x = false;
  bool log_y = false;
  bool markers = false;
};

int run_plot(const PlotArgs& a) {
  const std::vector<PlotSeries> series = series_from_jsonl(a.files, a.x, a.ys);
  PlotOptions o;
  o.title = a.title;
  o.x_label = a.x_label.empty() ? a.x : a.x_label;
  if (a.y_label.empty()) {
    for (const std::string& y : a.ys) o.y_label += (o.y_label.empty() ? "" : ", ") + y;
  } else {
    o.y_label = a.y_label;
  }
  o.log_x = a.log_x;
  o.log_y = a.log_y;
  o.markers = a.markers;
  write_line_plot(a.out, series, o);
  size_t points = 0;
  for (const PlotSeries& s : series) points += s.x.size();
  std::cout << "wrote " << a.out << " (" << series.size() << " series, " << points
            << " points)\n";
  return 0;
}

std::function<int()> setup_plot(CLI::App& sub) {
  auto a = std::make_shared<PlotArgs>();
  sub.add_option("--metrics", a->files, "JSON-lines files, comma-separated")
      ->required()
      ->delimiter(',')
      ->check(CLI::ExistingFile);
  sub.add_option("--x", a->x, "Field on the x axis (a dotted path reaches nested fields)")
      ->capture_default_str();
  sub.add_option("--y", a->ys, "Fields to plot, comma-separated (e.g. loss,metrics.accuracy)")
      ->required()
      ->delimiter(',');
  sub.add_option("--out", a->out, "The SVG file to write")->required();
  sub.add_option("--title", a->title, "Plot title");
  sub.add_option("--x-label", a->x_label, "x axis label (default: the x field)");
  sub.add_option("--y-label", a->y_label, "y axis label (default: the y fields)");
  sub.add_flag("--log-x", a->log_x, "Logarithmic x axis");
  sub.add_flag("--log-y", a->log_y, "Logarithmic y axis");
  sub.add_flag("--markers", a->markers, "Draw a circle at every point");
  return [a] { return run_plot(*a); };
}

}  // namespace

SP_REGISTER_COMMAND(plot, "Plot fields of JSON-lines metric logs (loss curves) as SVG", setup_plot);

}  // namespace sp::cli
