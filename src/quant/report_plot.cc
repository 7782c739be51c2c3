#include "quant/report_plot.h"

#include <stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "package/atomic_file.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wconversion"
#include <stb_easy_font.h>
#pragma GCC diagnostic pop

namespace brink::quant {

namespace {

struct Rgb {
  uint8_t r, g, b;
};

constexpr Rgb kAxis{40, 40, 40}, kGrid{225, 225, 225}, kGood{46, 139, 87}, kBad{230, 85, 13},
    kStub{160, 160, 160}, kThreshold{200, 0, 0}, kText{20, 20, 20};

class Canvas {
 public:
  Canvas(int w, int h) : img_{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3, 255)} {}
  // Fills [x0, x1) x [y0, y1), clipped to the canvas.
  void fill(int x0, int y0, int x1, int y1, Rgb c) {
    x0 = std::max(x0, 0);
    y0 = std::max(y0, 0);
    x1 = std::min(x1, img_.width);
    y1 = std::min(y1, img_.height);
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x) {
        uint8_t* p = &img_.pixels[(static_cast<size_t>(y) * img_.width + x) * 3];
        p[0] = c.r;
        p[1] = c.g;
        p[2] = c.b;
      }
  }
  // Text with its top-left at (x, y), each font pixel `scale` pixels.
  void text(int x, int y, const std::string& s, Rgb c, int scale = 1) {
    std::string buf = s;
    std::vector<char> vb(buf.size() * 300 + 64);
    const int quads =
        stb_easy_font_print(0, 0, buf.data(), nullptr, vb.data(), static_cast<int>(vb.size()));
    // Each quad: 4 vertices of {float x, y, z; uint8 rgba[4]} (16 bytes), axis-aligned.
    for (int q = 0; q < quads; ++q) {
      const float* v0 = reinterpret_cast<const float*>(vb.data() + q * 64);
      const float* v2 = reinterpret_cast<const float*>(vb.data() + q * 64 + 32);
      fill(x + static_cast<int>(std::lround(v0[0] * scale)),
           y + static_cast<int>(std::lround(v0[1] * scale)),
           x + static_cast<int>(std::lround(v2[0] * scale)),
           y + static_cast<int>(std::lround(v2[1] * scale)), c);
    }
  }
  static int text_width(const std::string& s, int scale = 1) {
    std::string buf = s;
    return stb_easy_font_width(buf.data()) * scale;
  }
  RgbImage take() { return std::move(img_); }

 private:
  RgbImage img_;
};

std::string format_db(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

}  // namespace

RgbImage render_sqnr_plot(const QuantizeReport& report, double threshold_db) {
  const int n = static_cast<int>(report.layers.size());
  const int step = n <= 40 ? 24 : std::max(4, 960 / std::max(n, 1));
  const int left = 56, right = 24, top = 36, bottom = 40;
  const int width = std::max(320, left + right + std::max(n, 0) * step);
  const int height = kPlotHeight;
  const int plot_h = height - top - bottom;
  const int base = top + plot_h;  // y of 0 dB

  // The y range: 0 .. max(40, highest finite SQNR rounded up to 10), at most 100.
  double top_db = 40;
  int lowest = -1;
  for (int i = 0; i < n; ++i) {
    const LayerReport& l = report.layers[static_cast<size_t>(i)];
    if (!l.compared) continue;
    if (l.sqnr_db < 199.0) top_db = std::max(top_db, std::ceil(l.sqnr_db / 10.0) * 10.0);
    if (lowest < 0 || l.sqnr_db < report.layers[static_cast<size_t>(lowest)].sqnr_db) lowest = i;
  }
  top_db = std::min(top_db, 100.0);
  auto y_of = [&](double db) {
    db = std::clamp(db, 0.0, top_db);
    return base - static_cast<int>(std::lround(db / top_db * plot_h));
  };

  Canvas c(width, height);
  // Grid and y labels every 10 dB.
  for (int db = 0; db <= static_cast<int>(top_db); db += 10) {
    const int y = y_of(db);
    c.fill(left, y, width - right, y + 1, kGrid);
    const std::string label = std::to_string(db);
    c.text(left - 6 - Canvas::text_width(label), y - 3, label, kText);
  }
  // Bars.
  const int bar = std::max(2, step * 3 / 4);
  for (int i = 0; i < n; ++i) {
    const LayerReport& l = report.layers[static_cast<size_t>(i)];
    const int x0 = left + i * step + (step - bar) / 2;
    if (!l.compared) {
      c.fill(x0, base - 3, x0 + bar, base, kStub);
      continue;
    }
    const int y = y_of(l.sqnr_db);
    c.fill(x0, std::min(y, base - 1), x0 + bar, base, l.sqnr_db >= threshold_db ? kGood : kBad);
  }
  // x labels: layer indexes, every k-th so that they do not overlap.
  const int label_w = Canvas::text_width(std::to_string(std::max(n - 1, 0))) + 4;
  const int every = std::max(1, (label_w + step - 1) / step);
  for (int i = 0; i < n; i += every) {
    const std::string label = std::to_string(i);
    c.text(left + i * step + (step - Canvas::text_width(label)) / 2, base + 6, label, kText);
  }
  c.text(left, height - 14, "layer (report order)", kText);
  // Axes.
  c.fill(left - 1, top, left, base + 1, kAxis);
  c.fill(left - 1, base, width - right, base + 1, kAxis);
  // The threshold, dashed.
  if (threshold_db > 0 && threshold_db <= top_db) {
    const int y = y_of(threshold_db);
    for (int x = left; x < width - right; x += 8)
      c.fill(x, y - 1, std::min(x + 5, width - right), y + 1, kThreshold);
  }
  // Title.
  std::string title = "SQNR vs FP32 (dB), threshold " + format_db(threshold_db) + " dB";
  c.text(8, 8, title, kText);
  if (lowest >= 0) {
    const LayerReport& l = report.layers[static_cast<size_t>(lowest)];
    std::string name = l.name.size() > 32 ? "..." + l.name.substr(l.name.size() - 29) : l.name;
    c.text(8, 20,
           "lowest: #" + std::to_string(lowest) + " " + name + " " + format_db(l.sqnr_db) + " dB",
           l.sqnr_db >= threshold_db ? kText : kThreshold);
  }
  return c.take();
}

Result<std::vector<uint8_t>> encode_png(const RgbImage& image) {
  std::vector<uint8_t> bytes;
  auto append = [](void* ctx, void* data, int size) {
    auto* out = static_cast<std::vector<uint8_t>*>(ctx);
    const auto* p = static_cast<const uint8_t*>(data);
    out->insert(out->end(), p, p + size);
  };
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<size_t>(image.width) * image.height * 3)
    return invalid_argument("encode_png: a " + std::to_string(image.width) + "x" +
                            std::to_string(image.height) + " RGB image needs " +
                            std::to_string(static_cast<int64_t>(image.width) * image.height * 3) +
                            " bytes, got " + std::to_string(image.pixels.size()));
  if (!stbi_write_png_to_func(append, &bytes, image.width, image.height, 3, image.pixels.data(),
                              image.width * 3))
    return internal_error("encode_png: stb_image_write failed");
  return bytes;
}

Status write_sqnr_plot(const QuantizeReport& report, const std::string& path, double threshold_db) {
  BRINK_ASSIGN_OR_RETURN(auto png, encode_png(render_sqnr_plot(report, threshold_db)));
  return package::write_file_atomically(
      path, [&](std::FILE* f) { return std::fwrite(png.data(), 1, png.size(), f) == png.size(); });
}

}  // namespace brink::quant
