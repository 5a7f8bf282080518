#pragma once
// The reports of a run directory, regenerated from results.jsonl after every trial:
// summary.csv (summary.h), one SVG plot per (stage, task, split, metric) with the metric
// against the swept key (one line per combination of the other swept keys, error bars =
// standard deviation over seeds), training-loss curves from the stages' logs, and
// report.md tying them together with the configuration, trainable parameter counts and
// timings. Every file is written atomically.
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "experiments/report/results.h"
#include "experiments/report/summary.h"
#include "experiments/report/svg_plot.h"

namespace sp {

// A stage shared by trials (pretrain, lm_adapt), for the timings table.
struct SharedStageInfo {
  std::string name;    // the stage's name in the spec
  std::string kind;    // pretrain, lm_adapt
  std::string dir;     // relative to the run directory
  double seconds = 0;  // wall time of the run that produced it
  bool done = false;
};

// A stage's training log (its metrics.jsonl, lines {"step", "loss", ...}) for the report's
// training curves: one plot per group, one line per source.
struct CurveSource {
  std::string group;         // "pretrain", "lm_adapt", "tune <task>"
  std::string label;         // the line's legend entry
  std::string metrics_file;  // relative to the run directory, or absolute
};

struct ReportContext {
  std::string name;         // the spec's name: the report's title
  std::string description;  // optional prose under the title
  std::string config_text;  // the resolved spec, shown verbatim (JSON)
  std::string preferred_x;  // the swept key to put on the x axis; "" = choose
  // The order in which the spec lists each swept key's values: categorical axes and series
  // follow it (model sizes small, base, large rather than alphabetically).
  std::map<std::string, std::vector<nlohmann::json>> sweep_values;
  // The spec's sweep_groups: keys swept together (a sweep.zip group; a grid key alone). A key
  // swept with the x axis is no series (each line would be one point): with x total_params,
  // the keys swept with a model.* key (the size). Averages over tasks leave out the keys
  // swept with stages.tune.task.
  std::vector<std::vector<std::string>> sweep_groups;
  std::vector<SharedStageInfo> shared_stages;
  int64_t trials_total = 0;
  // The spec's trial ids. When given, the reports cover these trials only: results.jsonl's
  // records of other trials (an earlier spec run in the same directory) stay in the file but
  // are left out of summary.csv, the plots and report.md. Empty: every record.
  std::vector<std::string> trials;
  // With trials: a trial's current results are its records whose "finished" time is the
  // one given here (its DONE's). Records of a trial that is not listed, or with another
  // time, come from an earlier run of it with other settings or code: left out as stale.
  std::map<std::string, std::string> trial_finished;
  std::vector<std::string> failures;  // "t0003: message"
  std::vector<CurveSource> curves;    // in the order plots and lines should appear
};

struct SummaryPlot {
  std::string file;  // file name inside the run directory
  std::string caption;
  std::vector<PlotSeries> series;
  PlotOptions options;
};

// The x key the plots use: preferred when swept, else the first swept key with numbers,
// else the first swept key; "" when nothing varies.
std::string choose_x_key(const std::vector<SummaryRow>& rows, const std::vector<std::string>& keys,
                         const std::string& preferred);

// One plot per (stage, task, split, metric); none when nothing is swept.
std::vector<SummaryPlot> summary_plots(const std::vector<SummaryRow>& rows,
                                       const std::vector<std::string>& keys,
                                       const ReportContext& context);

// The training loss against the step for every group of context.curves whose logs exist
// (a stage not run yet has none): files curve-<group>.svg, at most kCurvesPerPlot lines
// each (more make curve-<group>-1.svg, curve-<group>-2.svg, ... instead). A log's
// unreadable lines are skipped (an interrupted append) and a step logged twice (a resumed
// stage) keeps its last value. A line of more than kCurvePoints logged steps is drawn as the
// means (of step and loss) of consecutive windows, at most kCurvePoints of them, so a long
// run's plot stays small.
inline constexpr size_t kCurvesPerPlot = 10;
inline constexpr size_t kCurvePoints = 400;
std::vector<SummaryPlot> training_curve_plots(const std::string& dir,
                                              const std::vector<CurveSource>& curves);
// Removes dir's curve files of curves' groups (curve-<group>.svg, curve-<group>-<N>.svg)
// that plots does not name: what an earlier pass drew with another number of lines.
void remove_stale_curve_files(const std::string& dir, const std::vector<CurveSource>& curves,
                              const std::vector<SummaryPlot>& plots);

// s with every character other than letters, digits and '-' replaced by '_': a file name.
std::string file_safe_name(const std::string& s);

// results.jsonl's records of context.trials (all of them when it is empty), in file order,
// and how many other trials have records there.
struct SpecResults {
  std::vector<ResultRecord> records;
  size_t other_trials = 0;
  size_t stale_records = 0;  // of the spec's trials, from runs with other settings or code
};
SpecResults spec_results(const std::vector<ResultRecord>& results, const ReportContext& context);

// report.md's text; curves: training_curve_plots' plots. It says how many trials it leaves
// out (results.other_trials).
std::string report_markdown(const SpecResults& results, const std::vector<SummaryRow>& rows,
                            const std::vector<std::string>& keys,
                            const std::vector<SummaryPlot>& plots, const ReportContext& context,
                            const std::vector<SummaryPlot>& curves = {});

struct ReportFiles {
  std::string summary_csv;
  std::string report_md;
  std::vector<std::string> plots;
};

// Reads dir/results.jsonl and writes dir/summary.csv, dir/*.svg and dir/report.md from its
// spec_results.
ReportFiles write_reports(const std::string& dir, const ReportContext& context);

}  // namespace sp
