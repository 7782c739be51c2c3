// Calibration: the ranges of a model's activations, measured by running the FP32 model.
//
// calibrate() adds every tensor to observe as a graph output of a copy of the model, runs it with
// a Brink Session (optimization level 1: the passes keep graph outputs as they are) over the
// dataset, and turns what it saw into one clip range [lo, hi] per tensor:
//   minmax      the exact minimum and maximum (one pass over the data);
//   percentile  the P-th and (100 - P)-th percentiles (P = 99.999 by default);
//   entropy     the threshold minimising the KL divergence between the clipped distribution and
//               its quantized form, as TensorRT does: a 2048-bin histogram of |x|, thresholds
//               from 128 bins up (one-sided data quantized to 256 levels for u8);
//   mse         the range minimising the expected squared error (clipping + rounding to the
//               255 steps) over a 2048-bin histogram of x.
// The histogram methods make two passes: the first finds each tensor's exact min / max (the
// histogram range), the second fills fixed-range histograms whose counts simply add up across
// samples, so nothing but 2048 counts per tensor is kept. Ranges always include 0 (a zero
// point must exist); `symmetric` makes them [-a, a] (int8 activations).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "brink/session.h"
#include "brink/status.h"
#include "brink/tensor.h"
#include "ir/graph.h"
#include "quant/dataset.h"

namespace brink::quant {

enum class CalibrationMethod { kMinMax, kPercentile, kEntropy, kMse };

// "minmax", "percentile", "entropy", "mse"; anything else is an error naming the choices.
Result<CalibrationMethod> parse_calibration_method(const std::string& name);
const char* calibration_method_name(CalibrationMethod method);

struct CalibrationOptions {
  CalibrationMethod method = CalibrationMethod::kMinMax;
  double percentile = 99.999;  // percentile method: in (50, 100]
  bool symmetric = false;      // ranges [-a, a] (signed activations)
  bool progress = false;       // a `\r` progress line on stderr
  int num_threads = 0;         // Session threads; 0: all cores
};

struct Range {
  float lo = 0, hi = 0;
};

// A fixed-range histogram; counts from several add() calls (samples) add up.
struct Histogram {
  static constexpr int kBins = 2048;
  double lo = 0, hi = 0;
  std::vector<double> counts = std::vector<double>(kBins, 0.0);
  double bin_width() const { return (hi - lo) / kBins; }
  void add(const float* x, int64_t n, bool absolute);
};

// The clip range a method picks from the statistics of one tensor: its exact min / max and,
// for the histogram methods, a histogram over [min, max] (percentile, mse) or over
// [0, max(|min|, |max|)] of |x| (entropy). Always contains 0; symmetric -> [-a, a].
Range choose_range(CalibrationMethod method, double percentile, bool symmetric, float min,
                   float max, const Histogram* hist);

// Runs `model` over `data` and returns the clip range of each tensor in `tensors` (value
// names of the model's main graph; float32 tensors only). A tensor that holds an infinity gets
// its exact, non-finite min / max (the quantizer leaves it float); a NaN is an error. Under
// entropy calibration the model's own outputs keep their min / max (entropy may clip logits).
Result<std::map<std::string, Range>> calibrate(const ir::Model& model,
                                               const std::vector<std::string>& tensors,
                                               const Dataset& data,
                                               const CalibrationOptions& options);

// A Brink session over `model` with `tensors` (value names of the main graph) added as graph
// outputs, which hands back those tensors for a feed, in `tensors` order (graph inputs come
// from the feed). Used for calibration and for the report's layer comparisons.
class Observer {
 public:
  static Result<std::unique_ptr<Observer>> create(const ir::Model& model,
                                                  const std::vector<std::string>& tensors,
                                                  int num_threads);
  ~Observer();
  Result<std::vector<Tensor>> observe(const std::vector<NamedTensor>& feed) const;

 private:
  Observer() = default;
  std::unique_ptr<Session> session_;
  std::vector<std::string> tensors_;
  std::vector<int> output_index_;  // -1: read from the feed
};

// Runs an Observer over `samples`, handing each sample's tensors to `visit`. A non-empty
// `progress_label` prints a `\r` progress line on stderr.
Status run_observing(const ir::Model& model, const std::vector<std::string>& tensors,
                     const std::vector<std::vector<NamedTensor>>& samples, int num_threads,
                     const std::function<Status(size_t, const std::vector<Tensor>&)>& visit,
                     const std::string& progress_label = "");

}  // namespace brink::quant
