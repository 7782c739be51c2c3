// NonMaxSuppression, RoiAlign and GridSample on awkward inputs. Expected values marked "ORT"
// were produced by ONNX Runtime 1.32 on the same inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ops/evaluate.h"
#include "ops/op_util.h"

namespace brink::ops {
namespace {

Result<Tensor> run(const std::string& op, int64_t opset, const std::vector<const Tensor*>& inputs,
                   std::vector<ir::Attribute> attrs = {}) {
  auto out = evaluate_node(make_node(op, inputs.size(), 1, std::move(attrs)), opset, inputs);
  if (!out.is_ok()) return out.status();
  return (*out)[0];
}

std::vector<int64_t> ints(const Tensor& t) {
  return std::vector<int64_t>(t.data<int64_t>(), t.data<int64_t>() + t.numel());
}

std::vector<double> doubles(const Tensor& t) {
  std::vector<double> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(t.element_as_double(i));
  return v;
}

void expect_near_all(const Tensor& t, const std::vector<float>& expect, double tol = 1e-5) {
  ASSERT_EQ(t.numel(), static_cast<int64_t>(expect.size()));
  for (size_t i = 0; i < expect.size(); ++i)
    EXPECT_NEAR(t.element_as_double(static_cast<int64_t>(i)), expect[i], tol) << "element " << i;
}

// ---- NonMaxSuppression ----------------------------------------------------------------------

// ONNX's suppress_by_IOU boxes: three overlapping near x=0, two near x=10, one at x=100.
const std::vector<float> kBoxes = {0, 0,  1, 1,  0, 0.1f,  1, 1.1f,  0, -0.1f, 1, 0.9f,
                                   0, 10, 1, 11, 0, 10.1f, 1, 11.1f, 0, 100,   1, 101};
const std::vector<float> kScores = {0.9f, 0.75f, 0.6f, 0.95f, 0.5f, 0.3f};

struct NmsInputs {
  Tensor boxes, scores, max_out, iou, score;
  NmsInputs(const std::vector<float>& b, const std::vector<float>& s, int64_t max_out_v,
            float iou_v, float score_v, int64_t batches = 1, int64_t classes = 1)
      : boxes(Tensor::from_vector<float>({batches, static_cast<int64_t>(b.size()) / 4 / batches, 4},
                                         b)),
        scores(Tensor::from_vector<float>(
            {batches, classes, static_cast<int64_t>(s.size()) / batches / classes}, s)),
        max_out(Tensor::from_vector<int64_t>({1}, {max_out_v})),
        iou(Tensor::from_vector<float>({1}, {iou_v})),
        score(Tensor::from_vector<float>({1}, {score_v})) {}
  std::vector<const Tensor*> all() const { return {&boxes, &scores, &max_out, &iou, &score}; }
};

TEST(NonMaxSuppression, SuppressesByIouInScoreOrder) {
  NmsInputs in(kBoxes, kScores, 3, 0.5f, 0.0f);
  auto out = run("NonMaxSuppression", 11, in.all());
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(out->shape(), (Shape{3, 3}));
  EXPECT_EQ(ints(*out), (std::vector<int64_t>{0, 0, 3, 0, 0, 0, 0, 0, 5}));
}

TEST(NonMaxSuppression, SwappedCornersSelectTheSameBoxes) {
  // Each box by its other diagonal (y or x swapped) or with both corners exchanged.
  const std::vector<float> flipped = {1, 0,  0, 1,  0, 1.1f,  1, 0.1f,  1, 0.9f, 0, -0.1f,
                                      1, 10, 0, 11, 1, 11.1f, 0, 10.1f, 0, 101,  1, 100};
  for (int64_t opset : {10, 11, 21}) {
    NmsInputs a(kBoxes, kScores, 6, 0.5f, 0.0f), b(flipped, kScores, 6, 0.5f, 0.0f);
    auto oa = run("NonMaxSuppression", opset, a.all());
    auto ob = run("NonMaxSuppression", opset, b.all());
    ASSERT_TRUE(oa.is_ok() && ob.is_ok());
    EXPECT_EQ(ints(*oa), ints(*ob)) << "opset " << opset;
    EXPECT_EQ(ints(*ob), (std::vector<int64_t>{0, 0, 3, 0, 0, 0, 0, 0, 5}));
  }
}

TEST(NonMaxSuppression, EqualScoresVisitLowerIndexFirst) {
  // Boxes 1 and 3 are identical with equal scores: 1 is kept and suppresses 3. Boxes 0 and 2
  // are disjoint from everything and tie with them too.
  std::vector<float> boxes = {0, 0, 1, 1, 5, 5, 6, 6, 10, 10, 11, 11, 5, 5, 6, 6};
  NmsInputs in(boxes, {0.5f, 0.5f, 0.5f, 0.5f}, 10, 0.5f, 0.0f);
  auto out = run("NonMaxSuppression", 11, in.all());
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(ints(*out), (std::vector<int64_t>{0, 0, 0, 0, 0, 1, 0, 0, 2}));
}

TEST(NonMaxSuppression, ScoreThresholdIsStrictAndCanRemoveEverything) {
  NmsInputs all_out(kBoxes, kScores, 3, 0.5f, 0.95f);  // the best score equals the threshold
  auto out = run("NonMaxSuppression", 11, all_out.all());
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(out->shape(), (Shape{0, 3}));

  NmsInputs some(kBoxes, kScores, 3, 0.5f, 0.7f);
  out = run("NonMaxSuppression", 11, some.all());
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ(ints(*out), (std::vector<int64_t>{0, 0, 3, 0, 0, 0}));
}

TEST(NonMaxSuppression, MaxOutputZeroOrAbsentSelectsNothing) {
  NmsInputs in(kBoxes, kScores, 0, 0.5f, 0.0f);
  auto out = run("NonMaxSuppression", 11, in.all());
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(out->shape(), (Shape{0, 3}));

  // Only boxes and scores: max_output_boxes_per_class defaults to 0.
  out = run("NonMaxSuppression", 11, {&in.boxes, &in.scores});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(out->shape(), (Shape{0, 3}));

  // Negative counts as 0; a scalar tensor works like a 1-element one.
  Tensor neg = Tensor::scalar<int64_t>(-4);
  out = run("NonMaxSuppression", 11, {&in.boxes, &in.scores, &neg});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(out->shape(), (Shape{0, 3}));
}

TEST(NonMaxSuppression, AbsentThresholdsKeepAllNonOverlapping) {
  // iou_threshold absent = 0: any overlap suppresses; score_threshold absent: no filtering.
  NmsInputs in(kBoxes, kScores, 10, 0, 0);
  auto out = run("NonMaxSuppression", 11, {&in.boxes, &in.scores, &in.max_out, nullptr, nullptr});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(ints(*out), (std::vector<int64_t>{0, 0, 3, 0, 0, 0, 0, 0, 5}));
}

TEST(NonMaxSuppression, IouExactlyAtThresholdIsKept) {
  // IoU of these two boxes is exactly 1/2.
  std::vector<float> boxes = {0, 0, 1, 1, 0, 0, 1, 2};
  NmsInputs at(boxes, {0.9f, 0.8f}, 5, 0.5f, 0.0f);
  auto out = run("NonMaxSuppression", 11, at.all());
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ(ints(*out), (std::vector<int64_t>{0, 0, 0, 0, 0, 1}));
  NmsInputs below(boxes, {0.9f, 0.8f}, 5, 0.49f, 0.0f);
  out = run("NonMaxSuppression", 11, below.all());
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ(ints(*out), (std::vector<int64_t>{0, 0, 0}));
}

TEST(NonMaxSuppression, CenterPointBoxFormat) {
  // kBoxes as [x_center, y_center, width, height].
  std::vector<float> boxes = {0.5f, 0.5f,  1, 1, 0.5f, 0.6f,  1, 1, 0.5f, 0.4f,   1, 1,
                              0.5f, 10.5f, 1, 1, 0.5f, 10.6f, 1, 1, 0.5f, 100.5f, 1, 1};
  NmsInputs in(boxes, kScores, 3, 0.5f, 0.0f);
  auto out = run("NonMaxSuppression", 11, in.all(), {make_attr("center_point_box", int64_t{1})});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(ints(*out), (std::vector<int64_t>{0, 0, 3, 0, 0, 0, 0, 0, 5}));
}

TEST(NonMaxSuppression, BatchesAndClassesListedInOrder) {
  std::vector<float> boxes = kBoxes;
  boxes.insert(boxes.end(), kBoxes.begin(), kBoxes.end());
  std::vector<float> scores;
  for (int i = 0; i < 4; ++i) scores.insert(scores.end(), kScores.begin(), kScores.end());
  scores[6 + 5] = 0.99f;  // batch 0, class 1: box 5 first
  NmsInputs in(boxes, scores, 2, 0.5f, 0.0f, 2, 2);
  auto out = run("NonMaxSuppression", 11, in.all());
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(ints(*out), (std::vector<int64_t>{0, 0, 3, 0, 0, 0, 0, 1, 5, 0, 1, 3,  //
                                              1, 0, 3, 1, 0, 0, 1, 1, 3, 1, 1, 0}));
}

TEST(NonMaxSuppression, EmptyBoxSetGivesEmptyOutput) {
  NmsInputs in({}, {}, 5, 0.5f, 0.0f);
  auto out = run("NonMaxSuppression", 11, in.all());
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(out->shape(), (Shape{0, 3}));
}

TEST(NonMaxSuppression, RejectsBadInputs) {
  NmsInputs bad_iou(kBoxes, kScores, 3, 1.5f, 0.0f);
  auto out = run("NonMaxSuppression", 11, bad_iou.all());
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("iou_threshold"), std::string::npos);

  NmsInputs in(kBoxes, kScores, 3, 0.5f, 0.0f);
  Tensor scores5 = Tensor::zeros(DataType::kFloat32, {1, 1, 5});
  out = run("NonMaxSuppression", 11, {&in.boxes, &scores5, &in.max_out});
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("box counts"), std::string::npos);

  Tensor two = Tensor::from_vector<int64_t>({2}, {1, 2});
  out = run("NonMaxSuppression", 11, {&in.boxes, &in.scores, &two});
  ASSERT_FALSE(out.is_ok());

  out = run("NonMaxSuppression", 11, in.all(), {make_attr("center_point_box", int64_t{2})});
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("center_point_box"), std::string::npos);
}

// ---- RoiAlign -------------------------------------------------------------------------------

// A 3x4 feature map with one outlier (7 at row 1, column 2).
Tensor roi_x() {
  return Tensor::from_vector<float>({1, 1, 3, 4},
                                    {-1, -0.5f, 0, 0.5f, 1, 1.5f, 7, 2.5f, 3, 3.5f, 4, 4.5f});
}
// The first RoI sticks out above and to the left of the map, the second below and right.
Tensor roi_boxes() {
  return Tensor::from_vector<float>({2, 4}, {-1.5f, -2, 2.5f, 1.5f, 2, 1, 6, 5});
}
Tensor roi_batch() {
  return Tensor::from_vector<int64_t>({2}, {0, 0});
}

TEST(RoiAlign, AvgOnBoxesPartlyOutsideTheImage) {
  Tensor x = roi_x(), rois = roi_boxes(), bi = roi_batch();
  auto out = run("RoiAlign", 16, {&x, &rois, &bi},
                 {make_attr("output_height", int64_t{2}), make_attr("output_width", int64_t{2}),
                  make_attr("sampling_ratio", int64_t{2})});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(out->shape(), (Shape{2, 1, 2, 2}));
  expect_near_all(*out, {0, 0, -0.21875f, 0.4140625f, 4.5f, 1.75f, 2.125f, 1.125f});  // ORT
}

TEST(RoiAlign, MaxModeTakesTheLargestWeightedCorner) {
  Tensor x = roi_x(), rois = roi_boxes(), bi = roi_batch();
  auto out = run("RoiAlign", 16, {&x, &rois, &bi},
                 {make_attr("output_height", int64_t{2}), make_attr("output_width", int64_t{3}),
                  make_attr("mode", std::string("max"))});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  expect_near_all(
      *out, {0, 0, 0, 0.5625f, 0.5625f, 2.625f, 5.833333f, 4.5f, 0, 3.333333f, 4.5f, 0});  // ORT
}

TEST(RoiAlign, OutputHalfPixelAndOpset10) {
  Tensor x = roi_x(), rois = roi_boxes(), bi = roi_batch();
  std::vector<ir::Attribute> attrs = {
      make_attr("output_height", int64_t{2}), make_attr("output_width", int64_t{2}),
      make_attr("sampling_ratio", int64_t{2}), make_attr("spatial_scale", 0.5f)};
  const std::vector<float> expect = {-1, -0.625f, -0.375f, 0, 3.625f, 4.125f, 3.8125f, 4.3125f};
  auto attrs16 = attrs;
  attrs16.push_back(make_attr("coordinate_transformation_mode", std::string("output_half_pixel")));
  auto out = run("RoiAlign", 16, {&x, &rois, &bi}, attrs16);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  expect_near_all(*out, expect);  // ORT
  // Opset 10 has no pixel shift (ORT's behaviour, and the reason opset 16 added the mode).
  out = run("RoiAlign", 10, {&x, &rois, &bi}, attrs);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  expect_near_all(*out, expect);
}

TEST(RoiAlign, RoiEntirelyOutsideGivesZeros) {
  Tensor x = roi_x(), bi = Tensor::from_vector<int64_t>({1}, {0});
  Tensor rois = Tensor::from_vector<float>({1, 4}, {20, 20, 30, 30});
  for (const char* mode : {"avg", "max"}) {
    auto out = run("RoiAlign", 16, {&x, &rois, &bi},
                   {make_attr("output_height", int64_t{2}), make_attr("output_width", int64_t{2}),
                    make_attr("mode", std::string(mode))});
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    expect_near_all(*out, {0, 0, 0, 0});
  }
}

TEST(RoiAlign, Float16AndDoubleAgreeWithFloat) {
  Tensor x = roi_x(), rois = roi_boxes(), bi = roi_batch();
  std::vector<ir::Attribute> attrs = {make_attr("output_height", int64_t{2}),
                                      make_attr("output_width", int64_t{2}),
                                      make_attr("sampling_ratio", int64_t{2})};
  auto ref = run("RoiAlign", 16, {&x, &rois, &bi}, attrs);
  ASSERT_TRUE(ref.is_ok());
  for (DataType t : {DataType::kFloat16, DataType::kFloat64}) {
    Tensor xt = Tensor::empty(t, x.shape()), rt = Tensor::empty(t, rois.shape());
    visit_dtype(t, [&]<typename T>() {
      for (int64_t i = 0; i < x.numel(); ++i) xt.data<T>()[i] = T(x.data<float>()[i]);
      for (int64_t i = 0; i < rois.numel(); ++i) rt.data<T>()[i] = T(rois.data<float>()[i]);
    });
    auto out = run("RoiAlign", 16, {&xt, &rt, &bi}, attrs);
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    EXPECT_EQ(out->dtype(), t);
    std::vector<double> a = doubles(*ref), b = doubles(*out);
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-2) << dtype_name(t) << i;
  }
}

TEST(RoiAlign, DegenerateRoisAndMaps) {
  // A RoI with its corners swapped has negative size: with half_pixel it has no sampling
  // points and gives 0 (ORT fails on it).
  Tensor x = roi_x(), bi = Tensor::from_vector<int64_t>({1}, {0});
  Tensor rois = Tensor::from_vector<float>({1, 4}, {3, 2, 1, 0});
  auto out = run("RoiAlign", 16, {&x, &rois, &bi});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  expect_near_all(*out, {0});
  // The legacy mode forces it to 1x1 instead: one sample at (y 2.5, x 3.5), clamped to
  // the last row and column.
  out = run("RoiAlign", 10, {&x, &rois, &bi});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  expect_near_all(*out, {4.5f});  // ORT
  // An empty feature map has nothing to sample.
  Tensor empty = Tensor::zeros(DataType::kFloat32, {1, 2, 0, 4});
  out = run("RoiAlign", 16, {&empty, &rois, &bi});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(out->shape(), (Shape{1, 2, 1, 1}));
  expect_near_all(*out, {0, 0});
  // A RoI needing billions of adaptive sampling points is refused, not run for hours.
  Tensor huge = Tensor::from_vector<float>({1, 4}, {0, 0, 1e7f, 1e7f});
  out = run("RoiAlign", 16, {&x, &huge, &bi});
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("sampling points"), std::string::npos);
}

TEST(RoiAlign, RejectsBadInputs) {
  Tensor x = roi_x(), rois = roi_boxes();
  Tensor bi = Tensor::from_vector<int64_t>({2}, {0, 1});
  auto out = run("RoiAlign", 16, {&x, &rois, &bi});
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("batch_indices[1] is 1"), std::string::npos);

  Tensor bi3 = Tensor::from_vector<int64_t>({3}, {0, 0, 0});
  out = run("RoiAlign", 16, {&x, &rois, &bi3});
  ASSERT_FALSE(out.is_ok());

  Tensor ok_bi = roi_batch();
  out = run("RoiAlign", 16, {&x, &rois, &ok_bi}, {make_attr("mode", std::string("sum"))});
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("mode"), std::string::npos);
  out = run("RoiAlign", 16, {&x, &rois, &ok_bi},
            {make_attr("coordinate_transformation_mode", std::string("asymmetric"))});
  ASSERT_FALSE(out.is_ok());
}

// ---- GridSample -----------------------------------------------------------------------------

// Six sampling points, most of them outside [-1, 1] in x, y or both.
Tensor gs_grid() {
  return Tensor::from_vector<float>(
      {1, 2, 3, 2}, {-1.5f, -1.2f, -1, -1, 0.3f, 0.1f, 1.4f, 0.5f, 2.7f, -3.1f, 0.9f, 1.6f});
}

struct GsCase {
  const char* mode;
  const char* padding;
  int64_t align_corners;
  std::vector<float> expect;  // ORT
};

TEST(GridSample, EveryModeAndPaddingOutsideTheGridRange) {
  const std::vector<GsCase> cases = {
      {"bilinear", "zeros", 0, {0, -0.25f, 6.175f, 0, 0, 0}},
      {"bilinear", "zeros", 1, {-0.2f, -1, 6.45f, 1.399999f, 0, 1.77f}},
      {"bilinear", "border", 0, {-1, -1, 6.175f, 4, 0.5f, 4.5f}},
      {"bilinear", "border", 1, {-1, -1, 6.45f, 3.5f, 0.5f, 4.425f}},
      {"bilinear", "reflection", 0, {-0.75f, -1, 6.175f, 4.225f, 3.05f, 3.7f}},
      {"bilinear", "reflection", 1, {-0.2249999f, -1, 6.45f, 4.7f, 3.025f, 3.675f}},
      {"nearest", "zeros", 0, {0, -1, 7, 0, 0, 0}},
      {"nearest", "zeros", 1, {0, -1, 7, 0, 0, 0}},
      {"nearest", "border", 0, {-1, -1, 7, 4.5f, 0.5f, 4.5f}},
      {"nearest", "border", 1, {-1, -1, 7, 4.5f, 0.5f, 4.5f}},
      {"nearest", "reflection", 0, {-0.5f, -1, 7, 4.5f, 3, 4.5f}},
      {"nearest", "reflection", 1, {-0.5f, -1, 7, 4, 3, 2.5f}},
      {"bicubic", "zeros", 0, {0.02099999f, -0.3671875f, 7.234493f, -0.5062456f, 0, -0.3563598f}},
      {"bicubic", "zeros", 1, {-0.2446719f, -1, 7.143558f, 1.420065f, 0, 1.970503f}},
      {"bicubic", "border", 0, {-1.048f, -1.234375f, 7.155962f, 4.117189f, 0.4999999f, 4.555127f}},
      {"bicubic", "border", 1, {-1.209578f, -1, 7.116799f, 3.509752f, 0.5000001f, 4.536196f}},
      {"bicubic",
       "reflection",
       0,
       {-0.9806252f, -1.46875f, 7.155962f, 4.428242f, 3.384634f, 3.584502f}},
      {"bicubic", "reflection", 1, {-0.6264364f, -1, 7.096735f, 5.279003f, 3.0884f, 3.816799f}},
  };
  Tensor x = roi_x(), grid = gs_grid();
  for (const GsCase& c : cases) {
    for (int64_t opset : {16, 20}) {
      std::string mode = c.mode;
      if (opset == 20 && mode != "nearest") mode = mode == "bilinear" ? "linear" : "cubic";
      auto out = run("GridSample", opset, {&x, &grid},
                     {make_attr("mode", mode), make_attr("padding_mode", std::string(c.padding)),
                      make_attr("align_corners", c.align_corners)});
      ASSERT_TRUE(out.is_ok()) << out.status().message();
      EXPECT_EQ(out->shape(), (Shape{1, 1, 2, 3}));
      SCOPED_TRACE(mode + " " + c.padding + " align_corners=" + std::to_string(c.align_corners));
      expect_near_all(*out, c.expect, 2e-5);
    }
  }
}

TEST(GridSample, Volumetric) {
  Tensor x = Tensor::from_vector<float>(
      {1, 1, 2, 3, 2}, {-1.25f, -1, -0.75f, -0.5f, -0.25f, 0, 0.25f, 0.5f, 0.75f, 1, 1.25f, 1.5f});
  Tensor grid = Tensor::from_vector<float>(
      {1, 1, 1, 3, 3}, {-1.3f, 0.2f, 0.9f, 0.5f, -0.7f, -1.8f, 1.2f, 1.1f, 0.1f});
  const std::vector<std::pair<const char*, std::vector<float>>> cases = {
      {"zeros", {0.108f, 0, 0.09450003f}},
      {"border", {0.9000001f, -1, 0.9f}},
      {"reflection", {0.9000001f, -0.5500001f, 0.9f}}};  // ORT
  for (const auto& [padding, expect] : cases) {
    auto out =
        run("GridSample", 20, {&x, &grid}, {make_attr("padding_mode", std::string(padding))});
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    EXPECT_EQ(out->shape(), (Shape{1, 1, 1, 1, 3}));
    expect_near_all(*out, expect);
  }
  // Opset 16 is 2-D only.
  auto out = run("GridSample", 16, {&x, &grid});
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("opset 20"), std::string::npos);
}

TEST(GridSample, OneSpatialDim) {
  // X = [0, 10, 20]; align_corners=1 maps -1..1 onto indices 0..2.
  Tensor x = Tensor::from_vector<float>({1, 1, 3}, {0, 10, 20});
  Tensor grid = Tensor::from_vector<float>({1, 4, 1}, {-1, -0.5f, 0.25f, 1.5f});
  auto out = run("GridSample", 20, {&x, &grid},
                 {make_attr("align_corners", int64_t{1}),
                  make_attr("padding_mode", std::string("reflection"))});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  // 1.5 -> index 2.5, reflected about 2 -> 1.5.
  expect_near_all(*out, {0, 5, 12.5f, 15});
}

TEST(GridSample, IntegerAndBoolInputs) {
  Tensor x = Tensor::from_vector<int32_t>({1, 1, 2, 2}, {1, 2, 3, 100});
  Tensor grid = Tensor::from_vector<float>({1, 1, 3, 2}, {-0.5f, -0.5f, 0, 0, 0.5f, 0.5f});
  auto out = run("GridSample", 20, {&x, &grid}, {make_attr("mode", std::string("nearest"))});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(out->dtype(), DataType::kInt32);
  // The centre point (0.5, 0.5) rounds half to even: index 0 on both axes.
  EXPECT_EQ(std::vector<int32_t>(out->data<int32_t>(), out->data<int32_t>() + 3),
            (std::vector<int32_t>{1, 1, 100}));
  out = run("GridSample", 20, {&x, &grid});
  ASSERT_TRUE(out.is_ok());
  // Linear: the centre averages to 26.5, which rounds half to even.
  EXPECT_EQ(std::vector<int32_t>(out->data<int32_t>(), out->data<int32_t>() + 3),
            (std::vector<int32_t>{1, 26, 100}));

  Tensor b = Tensor::from_vector<bool>({1, 1, 1, 2}, {false, true});
  Tensor g2 = Tensor::from_vector<float>({1, 1, 2, 2}, {-0.5f, 0, 0.5f, 0});
  out = run("GridSample", 20, {&b, &g2}, {make_attr("mode", std::string("nearest"))});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(out->dtype(), DataType::kBool);
  EXPECT_FALSE(out->data<bool>()[0]);
  EXPECT_TRUE(out->data<bool>()[1]);
}

TEST(GridSample, DoubleGridAndFloat16Input) {
  Tensor x = roi_x(), grid = gs_grid();
  auto ref = run("GridSample", 16, {&x, &grid});
  ASSERT_TRUE(ref.is_ok());
  Tensor gd = Tensor::empty(DataType::kFloat64, grid.shape());
  for (int64_t i = 0; i < grid.numel(); ++i) gd.data<double>()[i] = grid.data<float>()[i];
  Tensor xh = Tensor::empty(DataType::kFloat16, x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) xh.data<Float16>()[i] = Float16(x.data<float>()[i]);
  auto out = run("GridSample", 16, {&xh, &gd});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(out->dtype(), DataType::kFloat16);
  std::vector<double> a = doubles(*ref), b = doubles(*out);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-2) << i;
}

TEST(GridSample, NonFiniteGridCoordinates) {
  constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  constexpr float kInf = std::numeric_limits<float>::infinity();
  Tensor x = roi_x();
  Tensor grid = Tensor::from_vector<float>({1, 1, 3, 2}, {kNaN, 0, kInf, 0, -kInf, 1e30f});
  auto out = run("GridSample", 16, {&x, &grid}, {make_attr("padding_mode", std::string("zeros"))});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_TRUE(std::isnan(out->data<float>()[0]));
  EXPECT_EQ(out->data<float>()[1], 0.0f);
  EXPECT_EQ(out->data<float>()[2], 0.0f);
  out = run("GridSample", 16, {&x, &grid}, {make_attr("padding_mode", std::string("border"))});
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ(out->data<float>()[1], 2.5f);  // x -> last column, y = 0 -> row 1
  EXPECT_EQ(out->data<float>()[2], 3.0f);  // bottom-left corner
  out = run("GridSample", 16, {&x, &grid}, {make_attr("padding_mode", std::string("reflection"))});
  ASSERT_TRUE(out.is_ok());
  // Reflecting an infinite coordinate has no answer.
  EXPECT_TRUE(std::isnan(out->data<float>()[1]));
  EXPECT_TRUE(std::isnan(out->data<float>()[2]));
}

TEST(GridSample, ReflectionOnSizeOneAxisWithAlignCorners) {
  Tensor x = Tensor::from_vector<float>({1, 1, 1, 1}, {3});
  Tensor grid = Tensor::from_vector<float>({1, 1, 2, 2}, {-4, 2, 0.5f, -7});
  for (const char* mode : {"bilinear", "nearest", "bicubic"}) {
    auto out = run("GridSample", 16, {&x, &grid},
                   {make_attr("mode", std::string(mode)), make_attr("align_corners", int64_t{1}),
                    make_attr("padding_mode", std::string("reflection"))});
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    std::vector<double> v = doubles(*out);
    for (double d : v) EXPECT_NEAR(d, 3.0, 1e-5) << mode;
  }
}

TEST(GridSample, FourSpatialDimsAndTheTapLimit) {
  // Linear in 4-D on a tensor linear in every index reproduces the coordinate exactly.
  Tensor x = Tensor::empty(DataType::kFloat64, {1, 1, 2, 3, 2, 3});
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t a = i / 18, b = i / 6 % 3, c = i / 3 % 2, d = i % 3;
    x.data<double>()[i] = 1000 * a + 100 * b + 10 * c + d;
  }
  // align_corners=1: grid value g on an axis of size s maps to (g + 1) / 2 * (s - 1).
  Tensor grid = Tensor::from_vector<double>({1, 1, 1, 1, 1, 4}, {0.5, 0.25, -0.5, 0});
  auto out = run("GridSample", 20, {&x, &grid}, {make_attr("align_corners", int64_t{1})});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_NEAR(out->data<double>()[0], 1000 * 0.5 + 100 * 0.5 + 10 * 0.625 + 1.5, 1e-9);

  Tensor x9 = Tensor::zeros(DataType::kFloat32, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
  Tensor g9 = Tensor::zeros(DataType::kFloat32, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 9});
  out = run("GridSample", 20, {&x9, &g9}, {make_attr("mode", std::string("cubic"))});
  ASSERT_FALSE(out.is_ok());
  EXPECT_EQ(out.status().code(), StatusCode::kUnsupported);
  out = run("GridSample", 20, {&x9, &g9}, {make_attr("mode", std::string("linear"))});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
}

TEST(GridSample, RejectsBadInputs) {
  Tensor x = roi_x(), grid = gs_grid();
  auto out = run("GridSample", 16, {&x, &grid}, {make_attr("mode", std::string("linear"))});
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("bilinear"), std::string::npos);
  out = run("GridSample", 20, {&x, &grid}, {make_attr("mode", std::string("bicubic"))});
  ASSERT_FALSE(out.is_ok());
  out = run("GridSample", 20, {&x, &grid}, {make_attr("padding_mode", std::string("wrap"))});
  ASSERT_FALSE(out.is_ok());
  Tensor grid3 = Tensor::zeros(DataType::kFloat32, {1, 2, 3, 3});
  out = run("GridSample", 20, {&x, &grid3});
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("coordinates"), std::string::npos);
  Tensor grid_b2 = Tensor::zeros(DataType::kFloat32, {2, 2, 3, 2});
  out = run("GridSample", 20, {&x, &grid_b2});
  ASSERT_FALSE(out.is_ok());
  Tensor grid_i = Tensor::zeros(DataType::kInt32, {1, 2, 3, 2});
  out = run("GridSample", 20, {&x, &grid_i});
  ASSERT_FALSE(out.is_ok());
}

}  // namespace
}  // namespace brink::ops
