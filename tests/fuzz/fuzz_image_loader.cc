// libFuzzer target: the image decoder behind calibration folders (PNG / JPEG / BMP through
// stb_image, after quant/image_dataset.cc's own header checks) and the preprocessing spec's
// JSON reader must refuse any malformed bytes cleanly.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "quant/image_dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  for (int channels : {1, 3}) {
    auto image = brink::quant::decode_image(bytes, channels, "fuzz image");
    if (image.is_ok() && image->height * image->width <= (int64_t{1} << 20)) {
      auto spec = brink::quant::parse_image_spec(
          R"({"resize": 9, "crop": [7, 7], "scale": 0.0039, "mean": 0.5, "std": 0.25})", "spec");
      if (spec.is_ok()) (void)brink::quant::preprocess_image(*image, *spec, "fuzz image");
    }
  }
  (void)brink::quant::parse_image_spec(std::string(reinterpret_cast<const char*>(data), size),
                                       "fuzz spec");
  return 0;
}
