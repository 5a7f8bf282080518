#pragma once
// Curves from JSON-lines metric logs (the trainer's metrics.jsonl, the pretraining log):
// the logic of `softprompt plot`. Each line is an object; x and y name fields, either
// literally ("loss") or as a dotted path into nested objects ("metrics.accuracy").
// Lines without the x or a y field are skipped (a log may interleave train and eval lines).
#include <string>
#include <vector>

#include "experiments/report/svg_plot.h"

namespace sp {

// One series per (file, y key); named "y" for one file, "file" for one y, else "file: y"
// (the file's stem). Throws "[plot] FILE: no line has both 'x' and 'y'" when a series would
// be empty, and names the line of malformed JSON.
std::vector<PlotSeries> series_from_jsonl(const std::vector<std::string>& files,
                                          const std::string& x, const std::vector<std::string>& ys);

}  // namespace sp
