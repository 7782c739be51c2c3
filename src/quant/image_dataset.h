// Folders of images as calibration / evaluation data (brink quantize --calib DIR,
// brink eval --data DIR), turned into float32 tensors by a small preprocessing spec.
//
// load_dataset (dataset.h) hands a folder here when it holds images (.png, .jpg / .jpeg, .bmp)
// rather than .npy / .npz files. Each image, in file-name order, becomes one sample of the
// model's single input. Images are decoded with stb_image (Debian's libstb-dev; PNG and BMP,
// each side at most 16384 pixels; JPEG files are listed but refused with a one-line error:
// Debian's stb_image 2.27 JPEG decoder is not memory-safe on corrupt files, as our fuzz target
// found, so it is not compiled in) to 8-bit pixels, then, as the spec says:
//
//   color   "rgb" (default), "bgr" or "gray": the channels kept, in that order (gray is
//           stb_image's luma, (77 R + 150 G + 29 B) >> 8; alpha is dropped);
//   resize  R: the shorter side becomes R, the longer one floor(long * R / short) (the aspect
//           kept, as torchvision's Resize(R) does); [H, W]: exactly H x W; absent: unchanged.
//           Bilinear with half-pixel centers and no antialiasing (OpenCV's INTER_LINEAR,
//           torchvision's antialias=False); the resized pixels stay float (no rounding to 8 bits);
//   crop    [H, W]: the center H x W after resizing, top = floor((height - H) / 2), same for left;
//   scale   x * scale (default 1; 1/255 gives [0, 1]);
//   mean    per channel, subtracted after scaling (a number or one per channel; default 0);
//   std     per channel, divided by last (a number or one per channel, each > 0; default 1);
//   layout  "nchw" (default) or "nhwc";
//   dtype   "float32" (the only one).
// So value = (pixel * scale - mean[c]) / std[c]. The spec is a JSON object (docs/QUANTIZATION.md),
// from --preprocess FILE or else a preprocess.json inside the folder; every key is checked
// (unknown keys, wrong types, out-of-range values are one-line errors naming the file), and the
// shape it produces is checked against the model input before any image is decoded when the
// spec fixes it (crop, or resize [H, W]), else per image. An image that does not decode is
// named with stb_image's reason; a folder with no images is an error.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "brink/session.h"
#include "brink/status.h"
#include "brink/tensor.h"
#include "quant/dataset.h"

namespace brink::quant {

struct ImageSpec {
  enum class Color { kRgb, kBgr, kGray };
  enum class Layout { kNchw, kNhwc };
  Color color = Color::kRgb;
  int64_t resize_shorter = 0;                   // > 0: the shorter side becomes this
  int64_t resize_height = 0, resize_width = 0;  // > 0: resize to exactly this
  int64_t crop_height = 0, crop_width = 0;      // > 0: center crop to this
  double scale = 1.0;
  std::vector<double> mean, std;  // empty (0 / 1), one value, or one per channel
  Layout layout = Layout::kNchw;

  int64_t channels() const { return color == Color::kGray ? 1 : 3; }
  // The output [height, width] when the spec alone fixes it (crop, or resize [H, W]).
  bool fixes_size() const { return crop_height > 0 || resize_height > 0; }
  // "[1, 3, 224, 224] (nchw)" for an image of the given size before preprocessing.
  Shape output_shape(int64_t image_height, int64_t image_width) const;
};

// Parses a spec (the JSON text of `where`, a file name used in errors).
Result<ImageSpec> parse_image_spec(const std::string& json_text, const std::string& where);
Result<ImageSpec> load_image_spec(const std::string& path);

// 8-bit pixels, rows of interleaved channels (HWC), 1 (gray) or 3 (RGB) channels.
struct Image {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;
};

// Decodes a PNG / BMP held in memory (`where` names it in errors) or a file, to
// `channels` (1: gray, 3: RGB) whatever the file stores.
Result<Image> decode_image(const std::vector<uint8_t>& bytes, int channels,
                           const std::string& where);
Result<Image> decode_image_file(const std::string& path, int channels);

// One image through the spec: a float32 tensor [1, C, H, W] (nchw) or [1, H, W, C] (nhwc).
// The image's channels must be the spec's (decode with spec.channels()).
Result<Tensor> preprocess_image(const Image& image, const ImageSpec& spec,
                                const std::string& where);

// True for the file names this loader decodes (.png, .jpg, .jpeg, .bmp, any case).
bool is_image_file(const std::string& name);

// The images of `paths` (already sorted) as samples of the model's single input, preprocessed
// by the spec at `spec_path` (empty: `folder`/preprocess.json). `folder` names the data in
// errors and in the description. max_samples < 0: all.
Result<Dataset> load_image_dataset(const std::string& folder, const std::vector<std::string>& paths,
                                   const std::string& spec_path,
                                   const std::vector<TensorInfo>& model_inputs,
                                   int64_t max_samples);

}  // namespace brink::quant
