// load_dataset: how .npy / .npz files and folders become feeds, and the one-line errors for
// data that does not fit the model's inputs; load_labels (.txt / .npy class labels).
#include "quant/dataset.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "loader/npy.h"

namespace brink::quant {
namespace {

namespace fs = std::filesystem;

TensorInfo input(const std::string& name, Shape shape, DataType dtype = DataType::kFloat32) {
  TensorInfo info;
  info.name = name;
  info.dtype = dtype;
  info.shape = std::move(shape);
  info.dim_names.assign(info.shape.size(), "");
  return info;
}

Tensor iota(Shape shape) {
  Tensor t = Tensor::empty(DataType::kFloat32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i);
  return t;
}

class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() /
        ("brink_dataset_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const Tensor& t) {
    const std::string p = (dir_ / name).string();
    EXPECT_TRUE(npy::write_npy(p, t).is_ok());
    return p;
  }
  fs::path dir_;
};

TEST_F(DatasetTest, SplitsALeadingSampleAxis) {
  // rank = input rank + 1: the first dim counts samples.
  auto ds = load_dataset(write("x.npy", iota({5, 1, 2, 3})), {input("x", {1, 2, 3})});
  ASSERT_TRUE(ds.is_ok()) << ds.status().message();
  ASSERT_EQ(ds->samples.size(), 5u);
  EXPECT_EQ(ds->samples[2][0].first, "x");
  EXPECT_EQ(ds->samples[2][0].second.shape(), (Shape{1, 2, 3}));
  EXPECT_EQ(ds->samples[2][0].second.data<float>()[0], 12.0f);
}

TEST_F(DatasetTest, SplitsTheBatchDimWhenItIsOneOrSymbolic) {
  const std::string p = write("x.npy", iota({4, 3}));
  auto fixed = load_dataset(p, {input("x", {1, 3})});
  ASSERT_TRUE(fixed.is_ok()) << fixed.status().message();
  EXPECT_EQ(fixed->samples.size(), 4u);
  EXPECT_EQ(fixed->samples[3][0].second.shape(), (Shape{1, 3}));
  EXPECT_EQ(fixed->samples[3][0].second.data<float>()[2], 11.0f);
  auto symbolic = load_dataset(p, {input("x", {-1, 3})}, 2);  // max_samples
  ASSERT_TRUE(symbolic.is_ok()) << symbolic.status().message();
  EXPECT_EQ(symbolic->samples.size(), 2u);
  // A fixed batch of 4: the array is one sample.
  auto batch = load_dataset(p, {input("x", {4, 3})});
  ASSERT_TRUE(batch.is_ok()) << batch.status().message();
  ASSERT_EQ(batch->samples.size(), 1u);
  EXPECT_EQ(batch->samples[0][0].second.shape(), (Shape{4, 3}));
}

TEST_F(DatasetTest, ReadsAFolderInNameOrder) {
  write("b.npy", iota({2, 1, 3}));
  write("a.npy", iota({1, 3}));
  auto ds = load_dataset(dir_.string(), {input("x", {1, 3})});
  ASSERT_TRUE(ds.is_ok()) << ds.status().message();
  ASSERT_EQ(ds->samples.size(), 3u);  // a.npy: 1, b.npy: 2
  EXPECT_EQ(ds->samples[0][0].second.data<float>()[0], 0.0f);
  EXPECT_EQ(ds->samples[2][0].second.data<float>()[0], 3.0f);
  EXPECT_NE(ds->description.find("3 samples"), std::string::npos);
}

TEST_F(DatasetTest, ReadsNamedArraysFromAnNpz) {
  // two.npz (np.savez(a=..., b=...)): one input per array, matched by name.
  const std::string npz = std::string(BRINK_SOURCE_DIR) + "/tests/fuzz/corpus_npy_loader/two.npz";
  auto arrays = npy::read_npz(npz);
  ASSERT_TRUE(arrays.is_ok());
  std::vector<TensorInfo> inputs;
  for (const auto& [name, t] : *arrays) {
    inputs.push_back(input(name, t.shape(), t.dtype()));
  }
  auto ds = load_dataset(npz, inputs);
  ASSERT_TRUE(ds.is_ok()) << ds.status().message();
  EXPECT_EQ(ds->samples[0].size(), 2u);
  EXPECT_EQ(ds->samples[0][1].first, (*arrays)[1].first);
  auto missing = load_dataset(npz, {input("a", (*arrays)[0].second.shape()), input("zz", {1})});
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().message().find("no array named 'zz'"), std::string::npos);
}

TEST_F(DatasetTest, RefusesDataThatDoesNotFitWithOneLine) {
  const std::string p = write("x.npy", iota({2, 1, 3}));
  auto expect_error = [&](const Result<Dataset>& r, const std::string& part) {
    ASSERT_FALSE(r.is_ok()) << part;
    EXPECT_NE(r.status().message().find(part), std::string::npos) << r.status().message();
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
  };
  expect_error(load_dataset(p, {input("x", {1, 4})}), "does not fit");
  expect_error(load_dataset(p, {input("x", {1, 3}, DataType::kInt64)}), "expected int64");
  expect_error(load_dataset(p, {input("x", {1, 1, 1, 3})}), "rank 3");
  expect_error(load_dataset(p, {input("x", {1, 3}), input("y", {1, 3})}), "one array");
  fs::create_directories(dir_ / "empty");
  expect_error(load_dataset((dir_ / "empty").string(), {input("x", {1, 3})}), "no .npy or .npz");
  expect_error(load_dataset((dir_ / "nope.npy").string(), {input("x", {1, 3})}), "no such file");
  Tensor bad = iota({3, 3});
  bad.data<float>()[4] = std::numeric_limits<float>::quiet_NaN();
  expect_error(load_dataset(write("nan.npy", bad), {input("x", {1, 3})}), "non-finite");
  bad.data<float>()[4] = std::numeric_limits<float>::infinity();
  expect_error(load_dataset(write("inf.npy", bad), {input("x", {1, 3})}), "flat index 4");
}

TEST_F(DatasetTest, LoadsLabelsFromTextOrIntegerNpy) {
  const std::string txt = (dir_ / "labels.txt").string();
  {
    std::ofstream f(txt);
    f << "3 1\n\n-2\n";
  }
  auto l = load_labels(txt);
  ASSERT_TRUE(l.is_ok()) << l.status().message();
  EXPECT_EQ(*l, (std::vector<int64_t>{3, 1, -2}));

  auto n = load_labels(write("labels.npy", Tensor::from_vector<int32_t>({2, 2}, {4, 0, 7, 9})));
  ASSERT_TRUE(n.is_ok()) << n.status().message();
  EXPECT_EQ(*n, (std::vector<int64_t>{4, 0, 7, 9}));

  const std::string bad = (dir_ / "bad.txt").string();
  {
    std::ofstream f(bad);
    f << "1\n2\n3 cat\n";
  }
  auto b = load_labels(bad);
  ASSERT_FALSE(b.is_ok());
  EXPECT_NE(b.status().message().find("line 3: 'cat' is not an integer label"), std::string::npos)
      << b.status().message();

  auto f = load_labels(write("float.npy", iota({3})));
  ASSERT_FALSE(f.is_ok());
  EXPECT_NE(f.status().message().find("labels must be integers"), std::string::npos)
      << f.status().message();

  const std::string empty = (dir_ / "empty.txt").string();
  std::ofstream(empty) << "\n";
  auto e = load_labels(empty);
  ASSERT_FALSE(e.is_ok());
  EXPECT_NE(e.status().message().find("no labels"), std::string::npos) << e.status().message();
  EXPECT_FALSE(load_labels((dir_ / "missing.txt").string()).is_ok());
}

}  // namespace
}  // namespace brink::quant
