#pragma once
// Line plots as standalone SVG, written by hand (no plotting dependency): axes with "nice"
// ticks and labels, one polyline per series, optional error bars, a legend, linear or log
// axes, or categorical x (init methods, say). Used by the experiment reports and by
// `softprompt plot` (loss curves).
//
//   PlotSeries s{"class_label", {1, 5, 20, 100}, {60.1, 70.4, 72.0, 72.3}, {1.2, 0.8, 0.5, 0.6}};
//   PlotOptions o;
//   o.x_label = "prompt length"; o.y_label = "accuracy"; o.log_x = true;
//   write_line_plot("runs/q/accuracy.svg", {s}, o);
//
// Every point is a <circle class="point"> carrying data-series, data-x, data-y (and
// data-err) attributes and a <title> tooltip, so tests and scripts can read the values
// back from the file.
#include <string>
#include <vector>

namespace sp {

struct PlotSeries {
  std::string name;
  std::vector<double> x;
  std::vector<double> y;
  std::vector<double> err;  // empty, or one half-height of an error bar per point
};

struct PlotOptions {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_x = false;
  bool log_y = false;
  // Non-empty: a categorical x axis; a point's x is the index of its category.
  std::vector<std::string> x_categories;
  bool markers = true;  // circles at the points (long loss curves look better without)
  int width = 760;
  int height = 440;
};

// The SVG document. Throws sp::Error "[plot] ..." for mismatched series lengths, a
// non-positive value on a log axis, or a categorical x outside the categories. NaN or
// infinite points are skipped (the line breaks there).
std::string render_line_plot(const std::vector<PlotSeries>& series, const PlotOptions& options);

// render_line_plot written atomically to path.
void write_line_plot(const std::string& path, const std::vector<PlotSeries>& series,
                     const PlotOptions& options);

// Tick positions covering [lo, hi] at a 1/2/5 x 10^k step, about target of them.
std::vector<double> nice_ticks(double lo, double hi, int target);
// Ticks for a log axis over [lo, hi] (both > 0): powers of ten, with 2 and 5 multiples
// when the range spans less than two decades; at least two (every integer multiple, else
// linear ticks) when that leaves fewer.
std::vector<double> log_ticks(double lo, double hi);
// A short tick label: "0.25", "1e+04", "150".
std::string tick_text(double v);

}  // namespace sp
