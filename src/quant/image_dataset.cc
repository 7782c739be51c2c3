#include "quant/image_dataset.h"

#include <stb_image.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <utility>

namespace brink::quant {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int64_t kMaxSide = 16384;  // also STBI_MAX_DIMENSIONS in stb_impl.cc

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

const char* json_type(const json& v) {
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

// A positive integer from a JSON number (3.0 is accepted, 3.5 is not).
bool positive_int(const json& v, int64_t* out) {
  if (v.is_number_integer() || v.is_number_unsigned()) {
    const int64_t x = v.get<int64_t>();
    if (x <= 0 || x > kMaxSide) return false;
    *out = x;
    return true;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!(d >= 1 && d <= static_cast<double>(kMaxSide)) || d != std::floor(d)) return false;
    *out = static_cast<int64_t>(d);
    return true;
  }
  return false;
}

// [H, W] of positive integers.
bool size_pair(const json& v, int64_t* h, int64_t* w) {
  return v.is_array() && v.size() == 2 && positive_int(v[0], h) && positive_int(v[1], w);
}

// A number or an array of numbers.
Status number_list(const json& v, const std::string& where, const std::string& key,
                   std::vector<double>* out) {
  auto finite_number = [](const json& x) {
    return x.is_number() && std::isfinite(x.get<double>());
  };
  if (finite_number(v)) {
    out->assign(1, v.get<double>());
    return Status::ok();
  }
  if (v.is_array() && !v.empty() && v.size() <= 4) {
    for (const json& x : v) {
      if (!finite_number(x)) break;
      out->push_back(x.get<double>());
    }
    if (out->size() == v.size()) return Status::ok();
  }
  return invalid_argument(where + ": \"" + key +
                          "\" must be a finite number or an array of 1 to 4 finite numbers (one "
                          "per channel), got " +
                          v.dump());
}

Result<std::string> one_of(const json& v, const std::string& where, const std::string& key,
                           const std::vector<std::string>& choices) {
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : ", ") + ("\"" + c + "\"");
  if (v.is_string()) {
    const std::string s = lower(v.get<std::string>());
    if (std::find(choices.begin(), choices.end(), s) != choices.end()) return s;
  }
  return invalid_argument(where + ": \"" + key + "\" must be one of " + list + ", got " + v.dump());
}

std::string dims(int64_t h, int64_t w) {
  return std::to_string(h) + "x" + std::to_string(w);
}

Result<std::vector<uint8_t>> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error("'" + path + "': cannot open it");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  if (in.bad()) return io_error("'" + path + "': cannot read it");
  return bytes;
}

// Bilinear sampling positions along one axis: output index o (of `out` pixels, after
// skipping `offset` of the resized axis of `resized` pixels) reads source pixels i0, i1 with
// weight (1 - f, f). Half-pixel centers: s = (o + offset + 0.5) * src / resized - 0.5, clamped.
struct Tap {
  int64_t i0 = 0, i1 = 0;
  float f = 0;
};

std::vector<Tap> taps(int64_t src, int64_t resized, int64_t offset, int64_t out) {
  std::vector<Tap> t(static_cast<size_t>(out));
  const double ratio = static_cast<double>(src) / static_cast<double>(resized);
  for (int64_t o = 0; o < out; ++o) {
    double s = (static_cast<double>(o + offset) + 0.5) * ratio - 0.5;
    s = std::clamp(s, 0.0, static_cast<double>(src - 1));
    Tap& tap = t[static_cast<size_t>(o)];
    tap.i0 = static_cast<int64_t>(std::floor(s));
    tap.i1 = std::min(tap.i0 + 1, src - 1);
    tap.f = static_cast<float>(s - static_cast<double>(tap.i0));
  }
  return t;
}

// Resizes h x w so that the shorter side becomes r, the longer floor(long * r / short).
void shorter_side_to(int64_t r, int64_t* h, int64_t* w) {
  if (*h <= *w) {
    *w = *w * r / *h;
    *h = r;
  } else {
    *h = *h * r / *w;
    *w = r;
  }
}

}  // namespace

Shape ImageSpec::output_shape(int64_t image_height, int64_t image_width) const {
  int64_t h = image_height, w = image_width;
  if (resize_height > 0) {
    h = resize_height;
    w = resize_width;
  } else if (resize_shorter > 0) {
    shorter_side_to(resize_shorter, &h, &w);
  }
  if (crop_height > 0) {
    h = crop_height;
    w = crop_width;
  }
  return layout == Layout::kNchw ? Shape{1, channels(), h, w} : Shape{1, h, w, channels()};
}

Result<ImageSpec> parse_image_spec(const std::string& json_text, const std::string& where) {
  const json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument(where + ": not valid JSON");
  if (!j.is_object())
    return invalid_argument(where + ": expected a JSON object of preprocessing settings, got " +
                            json_type(j));
  ImageSpec spec;
  static const std::vector<std::string> kKeys = {
      "resize", "crop", "color", "scale", "mean", "std", "layout", "dtype", "interpolation"};
  for (const auto& [key, v] : j.items()) {
    if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) {
      std::string list;
      for (const auto& k : kKeys) list += (list.empty() ? "" : ", ") + k;
      return invalid_argument(where + ": unknown key \"" + key + "\" (expected some of " + list +
                              ")");
    }
    if (key == "resize") {
      if (positive_int(v, &spec.resize_shorter)) continue;
      if (size_pair(v, &spec.resize_height, &spec.resize_width)) continue;
      return invalid_argument(where + ": \"resize\" must be an integer R in 1.." +
                              std::to_string(kMaxSide) +
                              " (the shorter side becomes R) or [height, width], got " + v.dump());
    } else if (key == "crop") {
      if (!size_pair(v, &spec.crop_height, &spec.crop_width))
        return invalid_argument(where + ": \"crop\" must be [height, width] of integers in 1.." +
                                std::to_string(kMaxSide) + ", got " + v.dump());
    } else if (key == "color") {
      BRINK_ASSIGN_OR_RETURN(std::string c, one_of(v, where, key, {"rgb", "bgr", "gray"}));
      spec.color = c == "rgb"   ? ImageSpec::Color::kRgb
                   : c == "bgr" ? ImageSpec::Color::kBgr
                                : ImageSpec::Color::kGray;
    } else if (key == "scale") {
      if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() <= 0)
        return invalid_argument(where + ": \"scale\" must be a finite number > 0 (e.g. " +
                                "0.00392156862745098 for 1/255), got " + v.dump());
      spec.scale = v.get<double>();
    } else if (key == "mean") {
      BRINK_RETURN_IF_ERROR(number_list(v, where, key, &spec.mean));
    } else if (key == "std") {
      BRINK_RETURN_IF_ERROR(number_list(v, where, key, &spec.std));
      for (double s : spec.std)
        if (s <= 0)
          return invalid_argument(where + ": every \"std\" value must be > 0, got " + v.dump());
    } else if (key == "layout") {
      BRINK_ASSIGN_OR_RETURN(std::string l, one_of(v, where, key, {"nchw", "nhwc"}));
      spec.layout = l == "nchw" ? ImageSpec::Layout::kNchw : ImageSpec::Layout::kNhwc;
    } else if (key == "dtype") {
      BRINK_RETURN_IF_ERROR(one_of(v, where, key, {"float32"}).status());
    } else if (key == "interpolation") {
      BRINK_RETURN_IF_ERROR(one_of(v, where, key, {"bilinear"}).status());
    }
  }
  const size_t c = static_cast<size_t>(spec.channels());
  for (const auto* list : {&spec.mean, &spec.std})
    if (list->size() > 1 && list->size() != c)
      return invalid_argument(where + ": \"" + (list == &spec.mean ? "mean" : "std") + "\" has " +
                              std::to_string(list->size()) + " values but color \"" +
                              (c == 1 ? "gray" : "rgb/bgr") + "\" gives " + std::to_string(c) +
                              " channel" + (c == 1 ? "" : "s") + " (give 1 or " +
                              std::to_string(c) + ")");
  if (spec.crop_height > 0 && spec.resize_height > 0 &&
      (spec.crop_height > spec.resize_height || spec.crop_width > spec.resize_width))
    return invalid_argument(where + ": \"crop\" " + dims(spec.crop_height, spec.crop_width) +
                            " is larger than \"resize\" " +
                            dims(spec.resize_height, spec.resize_width));
  if (spec.crop_height > 0 && spec.resize_shorter > 0 &&
      (spec.crop_height > spec.resize_shorter || spec.crop_width > spec.resize_shorter))
    return invalid_argument(where + ": \"crop\" " + dims(spec.crop_height, spec.crop_width) +
                            " is larger than the shorter side after \"resize\" (" +
                            std::to_string(spec.resize_shorter) + ")");
  return spec;
}

Result<ImageSpec> load_image_spec(const std::string& path) {
  BRINK_ASSIGN_OR_RETURN(auto bytes, read_file_bytes(path));
  return parse_image_spec(std::string(bytes.begin(), bytes.end()),
                          "preprocessing spec '" + path + "'");
}

Result<Image> decode_image(const std::vector<uint8_t>& bytes, int channels,
                           const std::string& where) {
  if (channels != 1 && channels != 3)
    return invalid_argument(where + ": can decode to 1 or 3 channels, asked for " +
                            std::to_string(channels));
  if (bytes.empty()) return invalid_argument(where + ": cannot decode the image: empty file");
  if (bytes.size() > static_cast<size_t>(INT32_MAX))
    return invalid_argument(where + ": cannot decode the image: larger than 2 GiB");
  const int len = static_cast<int>(bytes.size());
  // JPEG is not decoded: Debian's stb_image (2.27) has memory-safety bugs in its JPEG decoder
  // (out-of-bounds Huffman table reads and writes on corrupt files, found by
  // tests/fuzz/fuzz_image_loader.cc), so its JPEG support is not compiled in (stb_impl.cc).
  if (bytes[0] == 0xFF)
    return invalid_argument(where + ": JPEG images are not supported (convert them to PNG or BMP)");
  // stb_image trusts a PNG chunk's length and allocates for it before reading it: 112 bytes
  // whose third chunk claimed a 1.6 GB IDAT made it ask for 2 GiB (fuzz_image_loader). Every
  // chunk up to IEND must fit in the file.
  if (bytes.size() >= 8 && bytes[0] == 0x89 && bytes[1] == 'P' && bytes[2] == 'N' &&
      bytes[3] == 'G') {
    for (size_t at = 8; at + 8 <= bytes.size();) {
      const uint32_t length = (uint32_t{bytes[at]} << 24) | (uint32_t{bytes[at + 1]} << 16) |
                              (uint32_t{bytes[at + 2]} << 8) | uint32_t{bytes[at + 3]};
      std::string type(bytes.begin() + static_cast<std::ptrdiff_t>(at + 4),
                       bytes.begin() + static_cast<std::ptrdiff_t>(at + 8));
      for (char& c : type)
        if (!std::isalpha(static_cast<unsigned char>(c))) c = '?';
      const size_t left = bytes.size() - at - 8;  // after the length and type
      if (length > left || left - length < 4)
        return invalid_argument(where + ": cannot decode the image: PNG chunk '" + type +
                                "' at byte " + std::to_string(at) + " claims " +
                                std::to_string(length) + " bytes, past the end of the file (" +
                                std::to_string(bytes.size()) + " bytes)");
      if (type == "IEND") break;
      at += 12 + length;
    }
  }
  int w = 0, h = 0, n = 0;
  if (!stbi_info_from_memory(bytes.data(), len, &w, &h, &n))
    return invalid_argument(
        where + ": cannot decode the image (PNG or BMP expected): " + stbi_failure_reason());
  if (w <= 0 || h <= 0 || w > kMaxSide || h > kMaxSide)
    return invalid_argument(where + ": image of " + dims(h, w) +
                            " pixels; each side must be in 1.." + std::to_string(kMaxSide));
  // The pixels a file of this size can hold at most: 8 per byte for a BMP (uncompressed, 1 bit
  // per pixel at least), 8 x 1032 for a PNG (deflate expands at most 1032:1). A header claiming
  // more is corrupt (a few bytes must not make the decoder fill gigabytes).
  const bool bmp = bytes[0] == 'B';
  const double most = static_cast<double>(bytes.size()) * (bmp ? 8.0 : 8.0 * 1032.0);
  if (static_cast<double>(w) * static_cast<double>(h) > most)
    return invalid_argument(where + ": cannot decode the image: corrupt or truncated (" +
                            dims(h, w) + " pixels in " + std::to_string(bytes.size()) + " bytes)");
  unsigned char* data = stbi_load_from_memory(bytes.data(), len, &w, &h, &n, channels);
  if (data == nullptr)
    return invalid_argument(where + ": cannot decode the image: " + stbi_failure_reason());
  Image image;
  image.height = h;
  image.width = w;
  image.channels = channels;
  image.pixels.assign(
      data, data + static_cast<size_t>(w) * static_cast<size_t>(h) * static_cast<size_t>(channels));
  stbi_image_free(data);
  return image;
}

Result<Image> decode_image_file(const std::string& path, int channels) {
  BRINK_ASSIGN_OR_RETURN(auto bytes, read_file_bytes(path));
  return decode_image(bytes, channels, "'" + path + "'");
}

Result<Tensor> preprocess_image(const Image& image, const ImageSpec& spec,
                                const std::string& where) {
  const int64_t c = spec.channels();
  if (image.channels != c || image.height <= 0 || image.width <= 0 ||
      static_cast<int64_t>(image.pixels.size()) != image.height * image.width * c)
    return invalid_argument(where + ": image of " + dims(image.height, image.width) + "x" +
                            std::to_string(image.channels) + " does not fit the spec's " +
                            std::to_string(c) + " channels");
  // The resized size, then the crop window in it.
  int64_t rh = image.height, rw = image.width;
  if (spec.resize_height > 0) {
    rh = spec.resize_height;
    rw = spec.resize_width;
  } else if (spec.resize_shorter > 0) {
    shorter_side_to(spec.resize_shorter, &rh, &rw);
  }
  if (rh <= 0 || rw <= 0 || rh > kMaxSide || rw > kMaxSide)
    return invalid_argument(where + ": resizing " + dims(image.height, image.width) + " gives " +
                            dims(rh, rw) + "; each side must be in 1.." + std::to_string(kMaxSide));
  int64_t oh = rh, ow = rw, top = 0, left = 0;
  if (spec.crop_height > 0) {
    if (spec.crop_height > rh || spec.crop_width > rw)
      return invalid_argument(where + ": " + dims(rh, rw) +
                              (rh == image.height && rw == image.width ? "" : " after resizing") +
                              " is smaller than the crop " +
                              dims(spec.crop_height, spec.crop_width));
    oh = spec.crop_height;
    ow = spec.crop_width;
    top = (rh - oh) / 2;
    left = (rw - ow) / 2;
  }
  // Per channel mean and std; out = (pixel * scale - mean) / std in double, rounded once to
  // float (so a pipeline written in NumPy float64 gives the same float32 values).
  std::vector<double> mean(static_cast<size_t>(c)), sd(static_cast<size_t>(c));
  for (int64_t k = 0; k < c; ++k) {
    const auto pick = [&](const std::vector<double>& v, double dflt) {
      return v.empty() ? dflt : v[v.size() == 1 ? 0 : static_cast<size_t>(k)];
    };
    sd[static_cast<size_t>(k)] = pick(spec.std, 1.0);
    mean[static_cast<size_t>(k)] = pick(spec.mean, 0.0);
  }
  // Source channel read for output channel k (bgr reverses).
  auto src_channel = [&](int64_t k) {
    return spec.color == ImageSpec::Color::kBgr ? c - 1 - k : k;
  };
  const bool nchw = spec.layout == ImageSpec::Layout::kNchw;
  Tensor out = Tensor::empty(DataType::kFloat32, nchw ? Shape{1, c, oh, ow} : Shape{1, oh, ow, c});
  float* dst = out.data<float>();
  auto store = [&](int64_t y, int64_t x, int64_t k, float pixel) {
    const size_t i = static_cast<size_t>(nchw ? (k * oh + y) * ow + x : (y * ow + x) * c + k);
    dst[i] = static_cast<float>(
        (static_cast<double>(pixel) * spec.scale - mean[static_cast<size_t>(k)]) /
        sd[static_cast<size_t>(k)]);
  };
  const uint8_t* px = image.pixels.data();
  auto at = [&](int64_t y, int64_t x, int64_t k) {
    return static_cast<float>(px[(y * image.width + x) * c + src_channel(k)]);
  };
  if (rh == image.height && rw == image.width) {  // no resampling: exact pixels
    for (int64_t y = 0; y < oh; ++y)
      for (int64_t x = 0; x < ow; ++x)
        for (int64_t k = 0; k < c; ++k) store(y, x, k, at(y + top, x + left, k));
    return out;
  }
  const std::vector<Tap> ty = taps(image.height, rh, top, oh);
  const std::vector<Tap> tx = taps(image.width, rw, left, ow);
  for (int64_t y = 0; y < oh; ++y) {
    const Tap& vy = ty[static_cast<size_t>(y)];
    for (int64_t x = 0; x < ow; ++x) {
      const Tap& vx = tx[static_cast<size_t>(x)];
      for (int64_t k = 0; k < c; ++k) {
        const float r0 = at(vy.i0, vx.i0, k) + vx.f * (at(vy.i0, vx.i1, k) - at(vy.i0, vx.i0, k));
        const float r1 = at(vy.i1, vx.i0, k) + vx.f * (at(vy.i1, vx.i1, k) - at(vy.i1, vx.i0, k));
        store(y, x, k, r0 + vy.f * (r1 - r0));
      }
    }
  }
  return out;
}

bool is_image_file(const std::string& name) {
  const std::string ext = lower(fs::path(name).extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

Result<Dataset> load_image_dataset(const std::string& folder, const std::vector<std::string>& paths,
                                   const std::string& spec_path,
                                   const std::vector<TensorInfo>& model_inputs,
                                   int64_t max_samples) {
  if (paths.empty())
    return invalid_argument("data folder '" + folder + "' holds no images (.png, .jpg, .bmp)");
  if (model_inputs.size() != 1)
    return invalid_argument("data folder '" + folder +
                            "' holds images, which feed a model with one "
                            "input; this model has " +
                            std::to_string(model_inputs.size()) +
                            " (use an .npz with one array per input)");
  std::string spec_file = spec_path;
  if (spec_file.empty()) {
    spec_file = (fs::path(folder) / "preprocess.json").string();
    std::error_code ec;
    if (!fs::exists(spec_file, ec))
      return invalid_argument("data folder '" + folder +
                              "' holds images but no preprocessing spec: give --preprocess "
                              "SPEC.json or put a preprocess.json in the folder "
                              "(docs/QUANTIZATION.md)");
  }
  BRINK_ASSIGN_OR_RETURN(ImageSpec spec, load_image_spec(spec_file));

  // The model input the images feed: float32, rank 4 ([batch 1 or symbolic, ...]) or rank 3.
  const TensorInfo& input = model_inputs[0];
  if (input.dtype != DataType::kUndefined && input.dtype != DataType::kFloat32)
    return invalid_argument("model input '" + input.name + "' is " + dtype_long_name(input.dtype) +
                            "; preprocessed images are float32");
  if (input.rank_known && input.shape.size() != 4 && input.shape.size() != 3)
    return invalid_argument("model input '" + input.name + "' has shape " + input.shape_string() +
                            "; images feed an input of rank 4 ([batch, ...]) or 3");
  const bool batched = !input.rank_known || input.shape.size() == 4;
  if (batched && input.rank_known && input.shape[0] > 1)
    return invalid_argument("model input '" + input.name + "' has shape " + input.shape_string() +
                            ", a fixed batch of " + std::to_string(input.shape[0]) +
                            "; image folders give one image per sample (batch 1 or symbolic)");
  // The spec's output against the input's fixed dims.
  auto check_shape = [&](const Shape& shape, const std::string& what) -> Status {
    if (!input.rank_known) return Status::ok();
    const Shape got = batched ? shape : Shape(shape.begin() + 1, shape.end());
    for (size_t i = batched ? 1 : 0; i < got.size(); ++i)
      if (input.shape[i] >= 0 && input.shape[i] != got[i])
        return invalid_argument(what + " makes " + shape_to_string(got) + " (" +
                                (spec.layout == ImageSpec::Layout::kNchw ? "nchw" : "nhwc") +
                                ", color " + (spec.channels() == 1 ? "gray" : "rgb/bgr") +
                                ") but model input '" + input.name + "' is " +
                                input.shape_string());
    return Status::ok();
  };
  const std::string spec_what = "preprocessing spec '" + spec_file + "'";
  if (spec.fixes_size()) {
    BRINK_RETURN_IF_ERROR(check_shape(spec.output_shape(1, 1), spec_what));
  } else if (input.rank_known) {  // at least the channels can be checked now
    const size_t ci = (spec.layout == ImageSpec::Layout::kNchw ? 1 : 3) - (batched ? 0 : 1);
    if (input.shape[ci] >= 0 && input.shape[ci] != spec.channels())
      return invalid_argument(spec_what + " gives " + std::to_string(spec.channels()) + " channel" +
                              (spec.channels() == 1 ? "" : "s") + " (color " +
                              (spec.channels() == 1 ? "gray" : "rgb/bgr") + ", layout " +
                              (spec.layout == ImageSpec::Layout::kNchw ? "nchw" : "nhwc") +
                              ") but model input '" + input.name + "' is " + input.shape_string());
  }

  Dataset dataset;
  for (const std::string& path : paths) {
    if (max_samples >= 0 && static_cast<int64_t>(dataset.samples.size()) >= max_samples) break;
    BRINK_ASSIGN_OR_RETURN(Image image, decode_image_file(path, static_cast<int>(spec.channels())));
    const std::string where = "'" + path + "'";
    BRINK_ASSIGN_OR_RETURN(Tensor t, preprocess_image(image, spec, where));
    BRINK_RETURN_IF_ERROR(check_shape(
        t.shape(), where + " (" + dims(image.height, image.width) + ") through " + spec_what));
    if (!batched) t = t.reshaped(Shape(t.shape().begin() + 1, t.shape().end())).clone();
    std::vector<NamedTensor> feed;
    feed.emplace_back(input.name, std::move(t));
    dataset.samples.push_back(std::move(feed));
  }
  dataset.description = std::to_string(dataset.samples.size()) +
                        (dataset.samples.size() == 1 ? " image from '" : " images from '") +
                        folder + "' (preprocessed by '" + spec_file + "')";
  return dataset;
}

}  // namespace brink::quant
