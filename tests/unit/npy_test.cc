#include "loader/npy.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace brink::npy {
namespace {

TEST(Npy, RoundTripsEveryDtypeAndRank) {
  for (const Shape& shape : {Shape{}, Shape{5}, Shape{2, 3}, Shape{1, 0, 4}}) {
    Tensor t = Tensor::empty(DataType::kInt16, shape);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<int16_t>()[i] = static_cast<int16_t>(i * 7 - 3);
    const std::string bytes = serialize_npy(t);
    auto back = parse_npy(bytes.data(), bytes.size(), "t.npy");
    ASSERT_TRUE(back.is_ok()) << back.status().message();
    EXPECT_EQ(back->shape(), shape);
    EXPECT_EQ(back->dtype(), DataType::kInt16);
    for (int64_t i = 0; i < t.numel(); ++i)
      EXPECT_EQ(back->data<int16_t>()[i], t.data<int16_t>()[i]);
  }
}

TEST(Npy, ReadsArchivesWrittenByNumpy) {
  const std::string dir = std::string(BRINK_SOURCE_DIR) + "/tests/fuzz/corpus_npy_loader/";
  auto two = read_npz(dir + "two.npz");  // np.savez: stored entries with zip64 local headers
  ASSERT_TRUE(two.is_ok()) << two.status().message();
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[0].first, "a");
  EXPECT_EQ((*two)[0].second.shape(), (Shape{2, 2}));
  EXPECT_EQ((*two)[1].second.dtype(), DataType::kUInt8);
  auto z = read_npz(dir + "z.npz");  // np.savez_compressed: deflate
  ASSERT_TRUE(z.is_ok()) << z.status().message();
  EXPECT_EQ(static_cast<float>((*z)[0].second.data<Float16>()[9]), 9.0f);
}

TEST(Npy, RefusesTruncatedAndForeignFilesWithNamedErrors) {
  Tensor t = Tensor::zeros(DataType::kFloat32, {4, 4});
  const std::string bytes = serialize_npy(t);
  for (size_t cut = 0; cut < bytes.size(); cut += 7) {
    auto r = parse_npy(bytes.data(), cut, "cut.npy");
    ASSERT_FALSE(r.is_ok()) << cut;
    EXPECT_EQ(r.status().message().rfind("cut.npy", 0), 0u);
  }
  const std::string text = "hello, not numpy";
  EXPECT_FALSE(parse_npy(text.data(), text.size(), "x").is_ok());
  EXPECT_FALSE(parse_npz(text.data(), text.size(), "x").is_ok());
  auto missing = read_npy("/nonexistent/file.npy");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace brink::npy
