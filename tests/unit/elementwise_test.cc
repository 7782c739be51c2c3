#include <gtest/gtest.h>

#include <cmath>

#include "ops/evaluate.h"

namespace brink::ops {
namespace {

TEST(Elementwise, AddBroadcastsRowAgainstMatrix) {
  Tensor a = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::from_vector<float>({3}, {10, 20, 30});
  auto out = evaluate_node(make_node("Add", 2, 1), 14, {&a, &b});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  ASSERT_EQ((*out)[0].shape(), (Shape{2, 3}));
  std::vector<float> expect{11, 22, 33, 14, 25, 36};
  for (int i = 0; i < 6; ++i) EXPECT_EQ((*out)[0].data<float>()[i], expect[static_cast<size_t>(i)]);
}

TEST(Elementwise, AddRejectsIncompatibleShapes) {
  Tensor a = Tensor::zeros(DataType::kFloat32, {2, 3});
  Tensor b = Tensor::zeros(DataType::kFloat32, {4});
  auto out = evaluate_node(make_node("Add", 2, 1), 14, {&a, &b});
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("broadcast"), std::string::npos);
}

TEST(Float16, RoundTripsRepresentableValuesAndRoundsToNearestEven) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f})
    EXPECT_EQ(static_cast<float>(Float16(f)), f);
  EXPECT_EQ(static_cast<float>(Float16(1.0f + 1.0f / 4096)), 1.0f);  // halfway rounds to even
  EXPECT_TRUE(std::isinf(static_cast<float>(Float16(70000.0f))));
}

}  // namespace
}  // namespace brink::ops
