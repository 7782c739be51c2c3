// A PNG bar chart of the quantize report's per-layer SQNR (brink quantize --plot OUT.png).
//
// One bar per report layer, in layer order (the order of the table and of the JSON "layers"),
// height = SQNR in dB against FP32. The picture is drawn into an RGB raster here and encoded
// with stb_image_write (libstb-dev, compiled in stb_impl.cc); text is stb_easy_font's tiny
// built-in bitmap font, drawn as filled rectangles:
//   - y axis from 0 to max(40, the highest finite SQNR rounded up to 10, at most 100) dB, a
//     light grid line and a label every 10 dB; bars above the top (identical layers report
//     200 dB) are drawn to the top;
//   - bars at or above the threshold are green, below it orange-red; a layer that was not
//     compared (no SQNR) gets a short grey stub; a dashed red line marks the threshold;
//   - x labels are layer indexes (0-based, every k-th so they do not overlap); the title names
//     the threshold and the lowest layer ("lowest: #5 conv3 12.1 dB").
// Size: width = max(320, 80 + n * step) with step = 24 px for n <= 40 layers, else
// max(4, 960 / n); height = 320 (kPlotHeight).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "brink/status.h"
#include "quant/quantize.h"

namespace brink::quant {

inline constexpr int kPlotHeight = 320;

struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;  // rows of RGB triples
};

// The chart as a raster.
RgbImage render_sqnr_plot(const QuantizeReport& report, double threshold_db = 20.0);

// PNG bytes of an RGB raster.
Result<std::vector<uint8_t>> encode_png(const RgbImage& image);

// Renders and writes the chart to `path` (atomically: all or nothing).
Status write_sqnr_plot(const QuantizeReport& report, const std::string& path,
                       double threshold_db = 20.0);

}  // namespace brink::quant
