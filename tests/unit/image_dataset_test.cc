// Image folders as calibration data (quant/image_dataset.h): the preprocessing math on tiny
// images with hand-computed expected tensors (identity, channel order, layouts, mean / std,
// bilinear resize with half-pixel centers, shorter-side resize + center crop), decoding of
// PNG / BMP / JPEG, the spec's one-line errors, load_dataset on folders of images, and the
// report's SQNR plot (quant/report_plot.h) decoded back.
#include "quant/image_dataset.h"

#include <gtest/gtest.h>
#include <stb/stb_image_write.h>  // declarations; the implementation is in src/quant/stb_impl.cc

#include <array>
#include <filesystem>
#include <fstream>
#include <random>

#include "quant/report_plot.h"

namespace brink::quant {
namespace {

namespace fs = std::filesystem;

Image make_image(int64_t h, int64_t w, int64_t c, std::vector<uint8_t> px) {
  Image img;
  img.height = h;
  img.width = w;
  img.channels = c;
  img.pixels = std::move(px);
  return img;
}

ImageSpec spec_of(const std::string& json) {
  auto s = parse_image_spec(json, "spec.json");
  EXPECT_TRUE(s.is_ok()) << s.status().message();
  return s.is_ok() ? *s : ImageSpec{};
}

std::vector<float> values(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

std::string spec_error(const std::string& json) {
  auto s = parse_image_spec(json, "spec.json");
  return s.is_ok() ? std::string("(accepted)") : s.status().message();
}

TEST(ImageSpecTest, DefaultsAndFullSpec) {
  ImageSpec d = spec_of("{}");
  EXPECT_EQ(d.color, ImageSpec::Color::kRgb);
  EXPECT_EQ(d.layout, ImageSpec::Layout::kNchw);
  EXPECT_EQ(d.scale, 1.0);
  EXPECT_FALSE(d.fixes_size());
  EXPECT_EQ(d.output_shape(5, 7), (Shape{1, 3, 5, 7}));

  ImageSpec s = spec_of(
      R"({"resize": 256, "crop": [224, 200], "color": "BGR", "scale": 0.00392156862745098,
          "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "layout": "nhwc",
          "dtype": "float32", "interpolation": "bilinear"})");
  EXPECT_EQ(s.resize_shorter, 256);
  EXPECT_EQ(s.crop_height, 224);
  EXPECT_EQ(s.crop_width, 200);
  EXPECT_EQ(s.color, ImageSpec::Color::kBgr);
  EXPECT_EQ(s.layout, ImageSpec::Layout::kNhwc);
  EXPECT_EQ(s.mean.size(), 3u);
  EXPECT_TRUE(s.fixes_size());
  EXPECT_EQ(s.output_shape(480, 640), (Shape{1, 224, 200, 3}));

  ImageSpec r = spec_of(R"({"resize": [32, 48], "color": "gray", "mean": 0.5, "std": 2})");
  EXPECT_EQ(r.output_shape(5, 7), (Shape{1, 1, 32, 48}));
  // Shorter side: 480x640 -> 256 x floor(640 * 256 / 480) = 256 x 341; 640x480 -> 341 x 256.
  EXPECT_EQ(spec_of(R"({"resize": 256})").output_shape(480, 640), (Shape{1, 3, 256, 341}));
  EXPECT_EQ(spec_of(R"({"resize": 256})").output_shape(640, 480), (Shape{1, 3, 341, 256}));
}

TEST(ImageSpecTest, OneLineErrors) {
  struct Case {
    const char* json;
    const char* expect;
  };
  const Case cases[] = {
      {"{", "not valid JSON"},
      {"[1, 2]", "expected a JSON object"},
      {R"({"resise": 224})", "unknown key \"resise\""},
      {R"({"resize": "big"})", "\"resize\" must be an integer"},
      {R"({"resize": 0})", "\"resize\" must be an integer"},
      {R"({"resize": [1, 2, 3]})", "\"resize\" must be an integer"},
      {R"({"resize": 2.5})", "\"resize\" must be an integer"},
      {R"({"crop": 224})", "\"crop\" must be [height, width]"},
      {R"({"crop": [224, -1]})", "\"crop\" must be [height, width]"},
      {R"({"color": "cmyk"})", "\"color\" must be one of \"rgb\", \"bgr\", \"gray\""},
      {R"({"color": 3})", "\"color\" must be one of"},
      {R"({"scale": 0})", "\"scale\" must be a finite number > 0"},
      {R"({"scale": "1/255"})", "\"scale\" must be a finite number > 0"},
      {R"({"mean": [0.5, 0.5]})", "\"mean\" has 2 values but color \"rgb/bgr\" gives 3"},
      {R"({"mean": [1, "a", 2]})", "\"mean\" must be a finite number or an array"},
      {R"({"std": [1, 0, 1]})", "every \"std\" value must be > 0"},
      {R"({"color": "gray", "std": [1, 1, 1]})", "\"std\" has 3 values but color \"gray\" gives 1"},
      {R"({"layout": "chw"})", "\"layout\" must be one of \"nchw\", \"nhwc\""},
      {R"({"dtype": "uint8"})", "\"dtype\" must be one of \"float32\""},
      {R"({"interpolation": "nearest"})", "\"interpolation\" must be one of \"bilinear\""},
      {R"({"resize": [16, 16], "crop": [17, 8]})", "\"crop\" 17x8 is larger than \"resize\" 16x16"},
      {R"({"resize": 16, "crop": [8, 20]})", "larger than the shorter side after \"resize\" (16)"},
  };
  for (const Case& c : cases) {
    const std::string msg = spec_error(c.json);
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.json << " -> " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_EQ(msg.rfind("spec.json: ", 0), 0u) << msg;
  }
}

TEST(ImagePreprocessTest, IdentityKeepsExactPixelsInEveryLayoutAndOrder) {
  // 2x3 RGB: pixel (y, x) = (10y + x, 100 + 10y + x, 200 + 10y + x).
  std::vector<uint8_t> px;
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x)
      for (int k = 0; k < 3; ++k) px.push_back(static_cast<uint8_t>(100 * k + 10 * y + x));
  const Image img = make_image(2, 3, 3, px);

  auto nchw = preprocess_image(img, spec_of("{}"), "img");
  ASSERT_TRUE(nchw.is_ok()) << nchw.status().message();
  EXPECT_EQ(nchw->shape(), (Shape{1, 3, 2, 3}));
  EXPECT_EQ(values(*nchw), (std::vector<float>{0, 1, 2, 10, 11, 12,              // R
                                               100, 101, 102, 110, 111, 112,     // G
                                               200, 201, 202, 210, 211, 212}));  // B
  auto bgr = preprocess_image(img, spec_of(R"({"color": "bgr", "layout": "nhwc"})"), "img");
  ASSERT_TRUE(bgr.is_ok());
  EXPECT_EQ(bgr->shape(), (Shape{1, 2, 3, 3}));
  EXPECT_EQ(values(*bgr), (std::vector<float>{200, 100, 0, 201, 101, 1, 202, 102, 2,  //
                                              210, 110, 10, 211, 111, 11, 212, 112, 12}));
}

TEST(ImagePreprocessTest, ScaleMeanStdPerChannel) {
  const Image img = make_image(1, 2, 3, {0, 51, 255, 102, 204, 153});
  auto t = preprocess_image(
      img,
      spec_of(R"({"scale": 0.00392156862745098, "mean": [0.5, 0.25, 0], "std": [0.5, 0.25, 2]})"),
      "img");
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  // (p / 255 - mean) / std per channel, computed in double and rounded once.
  const double mean[3] = {0.5, 0.25, 0}, sd[3] = {0.5, 0.25, 2};
  const double p[2][3] = {{0, 51, 255}, {102, 204, 153}};
  std::vector<float> want;
  for (int k = 0; k < 3; ++k)
    for (int x = 0; x < 2; ++x)
      want.push_back(static_cast<float>((p[x][k] * 0.00392156862745098 - mean[k]) / sd[k]));
  EXPECT_EQ(values(*t), want);
  EXPECT_FLOAT_EQ(values(*t)[0], -1.0f);  // (0 - 0.5) / 0.5
  EXPECT_FLOAT_EQ(values(*t)[5], 0.3f);   // 153 / 255 / 2
}

TEST(ImagePreprocessTest, BilinearUpscaleHalfPixelCenters) {
  // 2x2 gray [[0, 100], [200, 40]] -> 4x4: source positions (o + 0.5) / 2 - 0.5 clamped to
  // [0, 1] are 0, 0.25, 0.75, 1 on both axes.
  const Image img = make_image(2, 2, 1, {0, 100, 200, 40});
  auto t = preprocess_image(img, spec_of(R"({"color": "gray", "resize": [4, 4]})"), "img");
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  EXPECT_EQ(t->shape(), (Shape{1, 1, 4, 4}));
  EXPECT_EQ(values(*t), (std::vector<float>{0, 25, 75, 100,            //
                                            50, 58.75f, 76.25f, 85,    //
                                            150, 126.25f, 78.75f, 55,  //
                                            200, 160, 80, 40}));
}

TEST(ImagePreprocessTest, ShorterSideThenCenterCrop) {
  // 4x8 gray, pixel = 10y + x. resize 2: 2x4 (halving: each output pixel is the mean of a 2x2
  // block, positions 2o + 0.5); crop [2, 2]: left = (4 - 2) / 2 = 1, so source columns 2..5.
  std::vector<uint8_t> px;
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 8; ++x) px.push_back(static_cast<uint8_t>(10 * y + x));
  const Image img = make_image(4, 8, 1, px);
  auto t =
      preprocess_image(img, spec_of(R"({"color": "gray", "resize": 2, "crop": [2, 2]})"), "img");
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  EXPECT_EQ(t->shape(), (Shape{1, 1, 2, 2}));
  // Output (y, x) = 10 * (2y + 0.5) + (2(x + 1) + 0.5).
  EXPECT_EQ(values(*t), (std::vector<float>{7.5f, 9.5f, 27.5f, 29.5f}));
  // A crop larger than the (resized) image names the image.
  auto big = preprocess_image(img, spec_of(R"({"color": "gray", "crop": [5, 5]})"), "'a.png'");
  ASSERT_FALSE(big.is_ok());
  EXPECT_NE(big.status().message().find("'a.png': 4x8 is smaller than the crop 5x5"),
            std::string::npos)
      << big.status().message();
  // Channel mismatch between image and spec.
  EXPECT_FALSE(preprocess_image(img, spec_of("{}"), "img").is_ok());
}

// Writes with stb_image_write into a byte vector.
void append_bytes(void* ctx, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(ctx);
  out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
}

TEST(ImageDecodeTest, PngBmpDecodeJpegIsRefusedBadBytesToo) {
  RgbImage rgb{5, 3, {}};
  for (int i = 0; i < 5 * 3 * 3; ++i) rgb.pixels.push_back(static_cast<uint8_t>(i * 5));
  auto png = encode_png(rgb);
  ASSERT_TRUE(png.is_ok());
  auto dec = decode_image(*png, 3, "x.png");
  ASSERT_TRUE(dec.is_ok()) << dec.status().message();
  EXPECT_EQ(dec->height, 3);
  EXPECT_EQ(dec->width, 5);
  EXPECT_EQ(dec->pixels, rgb.pixels);
  // Gray from RGB is stb_image's luma (77 R + 150 G + 29 B) >> 8.
  auto gray = decode_image(*png, 1, "x.png");
  ASSERT_TRUE(gray.is_ok());
  for (size_t i = 0; i < 15; ++i) {
    const int r = rgb.pixels[3 * i], g = rgb.pixels[3 * i + 1], b = rgb.pixels[3 * i + 2];
    EXPECT_EQ(gray->pixels[i], (77 * r + 150 * g + 29 * b) >> 8) << i;
  }
  std::vector<uint8_t> bmp, jpg;
  ASSERT_TRUE(stbi_write_bmp_to_func(append_bytes, &bmp, 5, 3, 3, rgb.pixels.data()));
  auto db = decode_image(bmp, 3, "x.bmp");
  ASSERT_TRUE(db.is_ok()) << db.status().message();
  EXPECT_EQ(db->pixels, rgb.pixels);
  ASSERT_TRUE(stbi_write_jpg_to_func(append_bytes, &jpg, 5, 3, 3, rgb.pixels.data(), 100));
  auto dj = decode_image(jpg, 3, "'x.jpg'");  // refused: see image_dataset.cc
  ASSERT_FALSE(dj.is_ok());
  EXPECT_EQ(dj.status().message(),
            "'x.jpg': JPEG images are not supported (convert them to PNG or BMP)");

  std::vector<uint8_t> bad = *png;
  bad.resize(bad.size() / 2);  // truncated
  auto e = decode_image(bad, 3, "'cut.png'");
  ASSERT_FALSE(e.is_ok());
  EXPECT_EQ(e.status().message().rfind("'cut.png': cannot decode the image", 0), 0u)
      << e.status().message();
  // A chunk claiming more bytes than the file holds is refused before stb_image allocates for
  // it (the fuzzer's 112-byte file made it ask for 2 GiB).
  std::vector<uint8_t> huge(png->begin(), png->begin() + 33);  // signature + IHDR chunk
  for (int c : {0x61, 0x79, 0x7f, 0x75, int{'I'}, int{'D'}, int{'A'}, int{'T'}, 0x78, 0x9c, 0, 0})
    huge.push_back(static_cast<uint8_t>(c));
  auto hc = decode_image(huge, 3, "'huge.png'");
  ASSERT_FALSE(hc.is_ok());
  EXPECT_EQ(hc.status().message(),
            "'huge.png': cannot decode the image: PNG chunk 'IDAT' at byte 33 claims 1635352437 "
            "bytes, past the end of the file (45 bytes)");
  auto junk = decode_image({'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'g'}, 3, "'j.png'");
  ASSERT_FALSE(junk.is_ok());
  EXPECT_NE(junk.status().message().find("cannot decode the image"), std::string::npos);
  EXPECT_FALSE(decode_image({}, 3, "'empty.png'").is_ok());
}

TEST(ImageDecodeTest, CorruptedFilesAreRefusedNotCrashed) {
  // Seeded byte flips and truncations of a PNG, a BMP and a JPEG: each decodes or is refused
  // with one line (run under ASan/UBSan by scripts/test.sh).
  RgbImage img{13, 9, {}};
  std::mt19937 rng(5);
  for (int i = 0; i < 13 * 9 * 3; ++i) img.pixels.push_back(static_cast<uint8_t>(rng()));
  std::vector<std::vector<uint8_t>> seeds(3);
  seeds[0] = *encode_png(img);
  ASSERT_TRUE(stbi_write_bmp_to_func(append_bytes, &seeds[1], 13, 9, 3, img.pixels.data()));
  ASSERT_TRUE(stbi_write_jpg_to_func(append_bytes, &seeds[2], 13, 9, 3, img.pixels.data(), 75));
  int refused = 0;
  for (int it = 0; it < 3000; ++it) {
    std::vector<uint8_t> b = seeds[static_cast<size_t>(it % 3)];
    for (int k = 0, n = 1 + static_cast<int>(rng() % 6); k < n; ++k) {
      const size_t p = rng() % b.size();
      switch (rng() % 3) {
        case 0:
          b[p] = static_cast<uint8_t>(rng());
          break;
        case 1:
          b[p] ^= static_cast<uint8_t>(1u << (rng() % 8));
          break;
        default:
          b.resize(p + 1);
      }
    }
    auto r = decode_image(b, (it & 1) ? 3 : 1, "'m.img'");
    if (r.is_ok()) {
      EXPECT_EQ(r->pixels.size(), static_cast<size_t>(r->height * r->width * r->channels));
    } else {
      ++refused;
      EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
    }
  }
  EXPECT_GT(refused, 100);
}

class ImageFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("brink_image_folder_test_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // An 8x8 gray PNG (stored as RGB) with pixel = base + y * 8 + x.
  void write_png(const std::string& name, int base) {
    RgbImage img{8, 8, {}};
    for (int i = 0; i < 64; ++i)
      for (int k = 0; k < 3; ++k) img.pixels.push_back(static_cast<uint8_t>(base + i));
    auto png = encode_png(img);
    ASSERT_TRUE(png.is_ok());
    write_file(name, std::string(png->begin(), png->end()));
  }
  void write_file(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  static TensorInfo input(Shape shape, DataType dtype = DataType::kFloat32) {
    TensorInfo info;
    info.name = "image";
    info.dtype = dtype;
    info.shape = std::move(shape);
    info.dim_names.assign(info.shape.size(), "");
    if (!info.shape.empty() && info.shape[0] < 0) info.dim_names[0] = "batch";
    return info;
  }
  std::string error(const std::vector<TensorInfo>& inputs, const std::string& spec = "") {
    auto d = load_dataset(dir_.string(), inputs, -1, spec);
    return d.is_ok() ? std::string("(loaded)") : d.status().message();
  }
  fs::path dir_;
};

TEST_F(ImageFolderTest, FolderOfPngsBecomesSamplesInNameOrder) {
  write_png("b.png", 100);
  write_png("a.png", 0);
  write_png("c.PNG", 50);
  write_file("labels.txt", "ignored");
  write_file("preprocess.json", R"({"color": "gray", "scale": 0.5, "mean": 1})");
  auto d = load_dataset(dir_.string(), {input({-1, 1, 8, 8})});
  ASSERT_TRUE(d.is_ok()) << d.status().message();
  ASSERT_EQ(d->samples.size(), 3u);
  const int bases[3] = {0, 100, 50};  // a, b, c.PNG
  for (size_t s = 0; s < 3; ++s) {
    const Tensor& t = d->samples[s][0].second;
    EXPECT_EQ(d->samples[s][0].first, "image");
    EXPECT_EQ(t.shape(), (Shape{1, 1, 8, 8}));
    for (int i = 0; i < 64; ++i) EXPECT_EQ(t.data<float>()[i], (bases[s] + i) * 0.5f - 1) << i;
  }
  EXPECT_NE(d->description.find("3 images"), std::string::npos) << d->description;
  // max_samples, a rank-3 input, an explicit spec elsewhere, and a single image file.
  auto two = load_dataset(dir_.string(), {input({1, 8, 8})}, 2);
  ASSERT_TRUE(two.is_ok()) << two.status().message();
  ASSERT_EQ(two->samples.size(), 2u);
  EXPECT_EQ(two->samples[0][0].second.shape(), (Shape{1, 8, 8}));
  const fs::path other = dir_.parent_path() / "brink_image_folder_test_spec.json";
  std::ofstream(other) << R"({"color": "rgb", "crop": [4, 4], "layout": "nhwc"})";
  auto cropped = load_dataset(dir_.string(), {input({1, 4, 4, 3})}, -1, other.string());
  ASSERT_TRUE(cropped.is_ok()) << cropped.status().message();
  EXPECT_EQ(cropped->samples[0][0].second.shape(), (Shape{1, 4, 4, 3}));
  EXPECT_EQ(cropped->samples[0][0].second.data<float>()[0], 2 * 8 + 2);  // (2, 2) of a.png
  auto one = load_dataset((dir_ / "b.png").string(), {input({1, 4, 4, 3})}, -1, other.string());
  ASSERT_TRUE(one.is_ok()) << one.status().message();
  EXPECT_EQ(one->samples.size(), 1u);
  fs::remove(other);
}

TEST_F(ImageFolderTest, OneLineErrors) {
  const std::vector<TensorInfo> model = {input({-1, 1, 8, 8})};
  EXPECT_NE(error(model).find("holds no .npy or .npz files and no images"), std::string::npos);
  write_png("a.png", 0);
  EXPECT_NE(error(model).find("holds images but no preprocessing spec"), std::string::npos);
  write_file("preprocess.json", R"({"color": "gray", "bogus": 1})");
  EXPECT_NE(error(model).find("preprocess.json': unknown key \"bogus\""), std::string::npos)
      << error(model);
  // The spec's shape against the model, before decoding.
  write_file("preprocess.json", R"({"color": "gray", "resize": [4, 4]})");
  EXPECT_NE(error(model).find("makes [1, 1, 4, 4] (nchw, color gray) but model input 'image' is "
                              "[batch, 1, 8, 8]"),
            std::string::npos)
      << error(model);
  write_file("preprocess.json", R"({"color": "rgb"})");
  EXPECT_NE(error(model).find("gives 3 channels (color rgb/bgr, layout nchw) but model input "
                              "'image' is [batch, 1, 8, 8]"),
            std::string::npos)
      << error(model);
  // A size the spec leaves open is checked per image, naming it.
  write_file("preprocess.json", R"({"color": "gray"})");
  EXPECT_EQ(error({input({-1, 1, 8, 8})}), "(loaded)");
  EXPECT_NE(error({input({-1, 1, 6, 8})}).find("a.png' (8x8) through preprocessing spec"),
            std::string::npos)
      << error({input({-1, 1, 6, 8})});
  // The model's input must take float images, one per sample.
  EXPECT_NE(error({input({-1, 1, 8, 8}, DataType::kUInt8)}).find("preprocessed images are float32"),
            std::string::npos);
  EXPECT_NE(error({input({2, 1, 8, 8})}).find("a fixed batch of 2"), std::string::npos);
  EXPECT_NE(error({input({-1, 64})}).find("rank 4"), std::string::npos);
  EXPECT_NE(error({input({-1, 1, 8, 8}), input({-1, 1, 8, 8})}).find("one input"),
            std::string::npos);
  // A file that does not decode is named.
  write_file("b.png", "this is not a png");
  EXPECT_NE(error(model).find("b.png': cannot decode the image"), std::string::npos)
      << error(model);
  fs::remove(dir_ / "b.png");
  // Mixed folders and --preprocess on arrays.
  write_file("x.npy", "");
  EXPECT_NE(error(model).find("holds both .npy/.npz files and images"), std::string::npos);
  fs::remove(dir_ / "x.npy");
  fs::remove(dir_ / "a.png");
  write_file("x.npz", "");
  EXPECT_NE(error(model, "spec.json").find("applies to images"), std::string::npos)
      << error(model, "spec.json");
  // A spec file that does not exist.
  fs::remove(dir_ / "x.npz");
  write_png("a.png", 0);
  EXPECT_NE(error(model, (dir_ / "nope.json").string()).find("cannot open"), std::string::npos);
}

TEST(SqnrPlotTest, BarsThresholdAndPngRoundTrip) {
  QuantizeReport r;
  const double sqnr[5] = {35.0, 12.0, 200.0, 25.0, -3.0};
  for (int i = 0; i < 5; ++i) {
    LayerReport l;
    l.name = "layer" + std::to_string(i);
    l.compared = true;
    l.sqnr_db = sqnr[i];
    r.layers.push_back(l);
  }
  r.layers.push_back(LayerReport{});  // not compared: a grey stub
  const RgbImage img = render_sqnr_plot(r, 20.0);
  // 6 layers: width max(320, 80 + 6 * 24) = 320, height 320.
  EXPECT_EQ(img.width, 320);
  EXPECT_EQ(img.height, kPlotHeight);
  auto px = [&](int x, int y) {
    const uint8_t* p = &img.pixels[(static_cast<size_t>(y) * img.width + x) * 3];
    return std::array<int, 3>{p[0], p[1], p[2]};
  };
  // Bar i is centred at x = 56 + 24 i + 12; the 0 dB baseline is at y = 320 - 40 = 280; the
  // y range is 0..40 dB (the 200 dB bar is clipped to the top, y = 36).
  const std::array<int, 3> green{46, 139, 87}, red{230, 85, 13}, white{255, 255, 255};
  EXPECT_EQ(px(56 + 12, 279), green);  // 35 dB
  EXPECT_EQ(px(56 + 12, 280 - 244 * 35 / 40 + 2), green);
  EXPECT_EQ(px(56 + 12, 280 - 244 * 35 / 40 - 3), white);  // above the bar, under the grid
  EXPECT_EQ(px(56 + 24 + 12, 279), red);                   // 12 dB: below the threshold
  EXPECT_EQ(px(56 + 48 + 12, 40), green);                  // 200 dB: to the top
  EXPECT_EQ(px(56 + 72 + 12, 279), green);                 // 25 dB
  EXPECT_EQ(px(56 + 96 + 12, 278), white);                 // -3 dB: no bar
  // The threshold line (20 dB: y = 280 - 122 = 158) is red between bars.
  EXPECT_EQ(px(56 + 24 + 1, 158), (std::array<int, 3>{200, 0, 0}));

  auto png = encode_png(img);
  ASSERT_TRUE(png.is_ok());
  auto back = decode_image(*png, 3, "plot.png");
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(back->width, img.width);
  EXPECT_EQ(back->height, img.height);
  EXPECT_EQ(back->pixels, img.pixels);

  // Many layers narrow the bars.
  QuantizeReport many;
  many.layers.resize(120);
  EXPECT_EQ(render_sqnr_plot(many).width, 80 + 120 * 8);
}

}  // namespace
}  // namespace brink::quant
