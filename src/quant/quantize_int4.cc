// --mode int4: every MatMul / Gemm whose B is a constant 2-D float32 matrix becomes ONNX
// Runtime's com.microsoft MatMulNBits (bits = 4), exactly as ORT's MatMul4BitsQuantizer
// (onnxruntime.quantization.matmul_nbits_quantizer, QOperator format) writes it:
//   - attributes K, N, bits = 4, block_size; inputs A, B_Q4 (uint8 [N, k_blocks,
//     block_size / 2]), B_scales (float [N, k_blocks]) and, with --int4-zero-point,
//     B_zero_points (uint8 [N, ceil(k_blocks / 2)], packed nibbles);
//   - blocks of block_size consecutive k of one column; symmetric: scale = (the block's value
//     of largest magnitude, with its sign) / -8 and no zero point input (8 implied), so the
//     full range [0, 15] is used; asymmetric: scale = (max(0, max) - min(0, min)) / 15 and
//     zp = round(-min / scale); q = clamp(round(w / scale + zp), 0, 15), as MLAS does;
//   - the last block of a K that is not a multiple of block_size is padded (with the zero
//     point, so a runtime reading it sees zero weights).
// ORT's quantizer leaves Gemm float; Brink also converts a Gemm (transA = 0) with a constant B:
// transB is applied when packing, alpha is folded into the scales, and a constant C of N
// elements becomes MatMulNBits' bias input (times beta); any other C stays a float Add.
// Embedding tables (Gather of a constant float matrix of 1 MiB or more along axis 0) are
// stored as int8 with a scale per row (Gather, Cast, Mul: standard ops), or, with
// int4_embeddings (--int4-embeddings), as 4-bit blocks along each row in ORT's
// com.microsoft GatherBlockQuantized (uint8 data, bits = 4, symmetric): an eighth of the size,
// at some accuracy cost. Everything else
// stays float. A is left float: this is weight-only quantization.
#include "quant/quantize_int4.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <set>
#include <string>

#include "passes/pass_util.h"
#include "quant/graph_util.h"

namespace brink::quant {

namespace {

using passes::GraphInfo;

constexpr const char* kMsDomain = "com.microsoft";

Tensor to_tensor(const std::vector<uint8_t>& v, Shape shape) {
  Tensor t = Tensor::empty(DataType::kUInt8, std::move(shape));
  std::copy(v.begin(), v.end(), t.data<uint8_t>());
  return t;
}

// An embedding table as int8 with one scale per row (symmetric, [-127, 127]): Gather reads the
// int8 rows and their scales, a Cast and a Mul make them float again. Per row, a word's
// vector keeps its own range (per tensor, rare large rows would coarsen every other word).
// Returns false when `n` is not one.
bool quantize_gather(ir::Graph& g, const GraphInfo& info, const ir::Node& n, NodeNames& names,
                     std::vector<ir::Node>& nodes, const QuantizeOptions& options,
                     QuantizeReport* report) {
  if (!(n.domain.empty() && n.op_type == "Gather" && n.inputs.size() == 2 &&
        n.outputs.size() == 1 && n.attr_int("axis", 0) == 0))
    return false;
  const Tensor* table = f32_initializer(g, n.inputs[0]);
  if (table == nullptr || table->rank() != 2 || table->nbytes() < (size_t{1} << 20)) return false;
  const int64_t rows = table->dim(0), cols = table->dim(1);
  const float* x = table->data<float>();
  for (int64_t i = 0; i < table->numel(); ++i)
    if (!std::isfinite(x[i])) return false;  // NaN / Inf: left float
  const int64_t bs = options.int4_block_size;
  if (options.int4_embeddings && cols % bs == 0) {
    // 4-bit blocks of bs values along each row: quantize_int4_blockwise on the transposed
    // table lays them out as GatherBlockQuantized reads them, [rows, cols / 2] bytes.
    std::vector<float> t(static_cast<size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) t[static_cast<size_t>(c * rows + r)] = x[r * cols + c];
    const Int4Weights q4 =
        quantize_int4_blockwise(t.data(), cols, rows, bs, false, options.int4_search);
    Tensor data = Tensor::empty(DataType::kUInt8, {rows, cols / 2});
    std::copy(q4.b.begin(), q4.b.end(), data.data<uint8_t>());
    const Tensor sc = Tensor::from_vector<float>({rows, cols / bs}, q4.scales);
    LayerReport layer;
    layer.name = node_label(g, n);
    layer.op = n.op_type;
    layer.precision = "w4-b" + std::to_string(bs);
    layer.weight_bytes_before = static_cast<int64_t>(table->nbytes());
    layer.weight_bytes_after = static_cast<int64_t>(data.nbytes() + sc.nbytes());
    const std::string tname = g.value(n.inputs[0]).name;
    ir::Node gq;
    gq.op_type = "GatherBlockQuantized";
    gq.domain = kMsDomain;
    gq.name = names(node_label(g, n) + "_Q4");
    gq.inputs = {passes::add_initializer(g, tname + "_Q4", data), n.inputs[1],
                 passes::add_initializer(g, tname + "_scales", sc)};
    gq.outputs = n.outputs;
    gq.attributes = {int_attr("gather_axis", 0), int_attr("quantize_axis", 1),
                     int_attr("block_size", bs), int_attr("bits", 4)};
    nodes.push_back(std::move(gq));
    layer.fp32_tensor = layer.quant_tensor = g.value(n.outputs[0]).name;
    report->layers.push_back(layer);
    return true;
  }
  Tensor q = Tensor::empty(DataType::kInt8, table->shape());
  Tensor scales = Tensor::empty(DataType::kFloat32, {rows, 1});
  for (int64_t r = 0; r < rows; ++r) {
    float absmax = 0;
    for (int64_t c = 0; c < cols; ++c) absmax = std::max(absmax, std::fabs(x[r * cols + c]));
    float scale = absmax / 127.0f;
    if (!(scale >= std::numeric_limits<float>::min())) scale = 1.0f;
    scales.data<float>()[r] = scale;
    for (int64_t c = 0; c < cols; ++c)
      q.data<int8_t>()[r * cols + c] = static_cast<int8_t>(
          std::clamp(std::rint(static_cast<double>(x[r * cols + c]) / scale), -127.0, 127.0));
  }
  LayerReport layer;
  layer.name = node_label(g, n);
  layer.op = n.op_type;
  layer.precision = "w8-row";
  layer.weight_bytes_before = static_cast<int64_t>(table->nbytes());
  layer.weight_bytes_after = static_cast<int64_t>(q.nbytes() + scales.nbytes());
  const std::string tname = g.value(n.inputs[0]).name;
  const int tq = passes::add_initializer(g, tname + "_quantized", q);
  const int ts = passes::add_initializer(g, tname + "_scales", scales);
  const int y = n.outputs[0];
  const std::string yn = g.value(y).name;
  const ir::TensorType yt = info.type(y);
  std::optional<std::vector<ir::Dim>> sdims = yt.dims;
  if (sdims && !sdims->empty()) sdims->back() = ir::Dim(1);
  const int gq = passes::add_value(g, yn + "_quantized", ir::TensorType(DataType::kInt8, yt.dims));
  const int gf =
      passes::add_value(g, yn + "_dequantized", ir::TensorType(DataType::kFloat32, yt.dims));
  const int gs = passes::add_value(g, yn + "_scale", ir::TensorType(DataType::kFloat32, sdims));
  const auto node = [&](const char* op, const std::string& name, std::vector<int> in, int out) {
    ir::Node m;
    m.op_type = op;
    m.name = names(name);
    m.inputs = std::move(in);
    m.outputs = {out};
    return m;
  };
  ir::Node gather = n;
  gather.inputs[0] = tq;
  gather.outputs = {gq};
  nodes.push_back(std::move(gather));
  nodes.push_back(node("Gather", yn + "_scale_Gather", {ts, n.inputs[1]}, gs));
  ir::Node cast = node("Cast", yn + "_Cast", {gq}, gf);
  cast.attributes.push_back(int_attr("to", static_cast<int64_t>(DataType::kFloat32)));
  nodes.push_back(std::move(cast));
  nodes.push_back(node("Mul", yn + "_scale_Mul", {gf, gs}, y));
  layer.fp32_tensor = layer.quant_tensor = yn;
  report->layers.push_back(layer);
  return true;
}

}  // namespace

Int4Weights quantize_int4_blockwise(const float* w, int64_t k, int64_t n, int64_t block_size,
                                    bool zero_point, bool search) {
  Int4Weights r;
  r.k = k;
  r.n = n;
  r.block_size = block_size;
  r.k_blocks = (k + block_size - 1) / block_size;
  const int64_t blob = block_size / 2, zp_stride = (r.k_blocks + 1) / 2;
  r.b.assign(static_cast<size_t>(n * r.k_blocks * blob), 0);
  r.scales.assign(static_cast<size_t>(n * r.k_blocks), 0.0f);
  if (zero_point) r.zero_points.assign(static_cast<size_t>(n * zp_stride), 0);
  std::vector<float> vals(static_cast<size_t>(block_size));
  for (int64_t c = 0; c < n; ++c)
    for (int64_t g = 0; g < r.k_blocks; ++g) {
      const int64_t k0 = g * block_size, k1 = std::min(k, k0 + block_size);
      float lo = std::numeric_limits<float>::max(), hi = -std::numeric_limits<float>::max();
      for (int64_t i = k0; i < k1; ++i) {
        lo = std::min(lo, w[i * n + c]);
        hi = std::max(hi, w[i * n + c]);
      }
      // ORT's parameters (t = 1), then, with `search` and symmetric blocks, the largest
      // magnitude shrunk by t = 0.975 .. 0.7 and/or mapped to +7 instead of -8: the candidate
      // with the smallest squared error over the block wins (ties keep ORT's). With zero
      // points the search measured no better on MiniLM (worse on its worst sentence), so
      // asymmetric blocks keep ORT's round-to-nearest parameters.
      const int64_t len = k1 - k0;
      for (int64_t i = 0; i < len; ++i) vals[static_cast<size_t>(i)] = w[(k0 + i) * n + c];
      const auto block_error = [&](float s, int z) {
        double e = 0;
        const float rs = s != 0.0f ? 1.0f / s : 0.0f;
        for (int64_t i = 0; i < len; ++i) {
          const float v = vals[static_cast<size_t>(i)];
          const float q = std::clamp(std::roundf(v * rs + static_cast<float>(z)), 0.0f, 15.0f);
          const double d = v - (q - static_cast<float>(z)) * s;
          e += d * d;
        }
        return e;
      };
      const auto candidate = [&](float t, bool plus7, float* s, int* z) {
        if (zero_point) {  // MLAS range2scalezp
          const float l = std::min(lo, 0.0f) * t, h = std::max(hi, 0.0f) * t;
          *s = (h - l) / 15.0f;
          float zf = l;
          if (*s != 0.0f) zf = 0.0f - l / *s;
          *z = zf < 0.0f ? 0 : zf > 15.0f ? 15 : static_cast<int>(std::roundf(zf));
        } else {  // MLAS range2scale
          const float m = std::fabs(hi) > std::fabs(lo) ? hi : lo;
          *s = plus7 ? m * t / 7.0f : m * t / -8.0f;
          *z = 8;
        }
      };
      float scale;
      int zp;
      candidate(1.0f, false, &scale, &zp);
      if (search && !zero_point) {
        double best = block_error(scale, zp);
        for (int step = 0; step <= 12; ++step)
          for (bool plus7 : {false, true}) {
            if (step == 0 && !plus7) continue;  // ORT's, already measured
            float s;
            int z;
            candidate(1.0f - 0.025f * static_cast<float>(step), plus7, &s, &z);
            const double e = block_error(s, z);
            if (e < best) {
              best = e;
              scale = s;
              zp = z;
            }
          }
      }
      if (zero_point) {
        uint8_t& byte = r.zero_points[static_cast<size_t>(c * zp_stride + g / 2)];
        byte = static_cast<uint8_t>(g % 2 == 0 ? (byte & 0xF0) | zp : (byte & 0x0F) | (zp << 4));
      }
      r.scales[static_cast<size_t>(c * r.k_blocks + g)] = scale;
      const float rs = scale != 0.0f ? 1.0f / scale : 0.0f;
      uint8_t* blk = r.b.data() + (c * r.k_blocks + g) * blob;
      for (int64_t i = 0; i < block_size; ++i) {
        int q = zp;
        if (k0 + i < k1)
          q = static_cast<int>(std::clamp(
              std::roundf(w[(k0 + i) * n + c] * rs + static_cast<float>(zp)), 0.0f, 15.0f));
        blk[i / 2] |= static_cast<uint8_t>(i % 2 == 0 ? q : q << 4);
      }
    }
  return r;
}

Status quantize_int4(ir::Model& model, const QuantizeOptions& options, QuantizeReport* report) {
  const int64_t bs = options.int4_block_size;
  if (bs != 16 && bs != 32 && bs != 64 && bs != 128)
    return invalid_argument("int4 block size must be 16, 32, 64 or 128, got " + std::to_string(bs));
  ir::Graph& g = model.graph;
  const GraphInfo info = GraphInfo::analyze(model);
  NodeNames names(g);
  std::vector<ir::Node> nodes;
  const std::string precision = "w4-b" + std::to_string(bs);
  int converted = 0;
  const size_t count = g.nodes.size();
  for (size_t i = 0; i < count; ++i) {
    const ir::Node n = g.nodes[i];
    if (quantize_gather(g, info, n, names, nodes, options, report)) continue;
    const bool gemm = n.op_type == "Gemm";
    const bool candidate =
        n.domain.empty() && (n.op_type == "MatMul" || gemm) && n.inputs.size() >= 2;
    const Tensor* wt = candidate ? f32_initializer(g, n.inputs[1]) : nullptr;
    const int a = candidate ? n.inputs[0] : -1;
    if (!wt || wt->rank() != 2 || wt->numel() == 0 || info.dtype(a) != DataType::kFloat32 ||
        is_initializer(g, a) || (gemm && n.attr_int("transA", 0) != 0) ||
        (!gemm && info.rank(a) < 1)) {
      nodes.push_back(n);
      continue;
    }
    const bool trans_b = gemm && n.attr_int("transB", 0) != 0;
    const int64_t K = trans_b ? wt->dim(1) : wt->dim(0), N = trans_b ? wt->dim(0) : wt->dim(1);
    const float alpha = gemm ? n.attr_float("alpha", 1.0f) : 1.0f;
    const float beta = gemm ? n.attr_float("beta", 1.0f) : 1.0f;
    const int c = gemm && n.inputs.size() > 2 ? n.inputs[2] : ir::kNoValue;
    const Tensor* ct = c >= 0 ? f32_initializer(g, c) : nullptr;
    if (c >= 0 && beta != 1.0f && ct == nullptr) {  // a non-constant C scaled by beta
      nodes.push_back(n);
      continue;
    }
    // B as [K, N] row-major.
    std::vector<float> w(static_cast<size_t>(K * N));
    const float* src = wt->data<float>();
    for (int64_t j = 0; j < K * N; ++j)
      if (!std::isfinite(src[j]))
        return invalid_argument("the weight '" + g.value(n.inputs[1]).name + "' of " +
                                node_label(g, n) +
                                " has NaN or Inf values; int4 needs finite "
                                "weights (no output was written)");
    for (int64_t r = 0; r < K; ++r)
      for (int64_t col = 0; col < N; ++col)
        w[static_cast<size_t>(r * N + col)] = trans_b ? src[col * K + r] : src[r * N + col];
    Int4Weights q =
        quantize_int4_blockwise(w.data(), K, N, bs, options.int4_zero_point, options.int4_search);
    for (float& s : q.scales) s *= alpha;

    LayerReport layer;
    layer.name = node_label(g, n);
    layer.op = n.op_type;
    layer.precision = precision;
    layer.weight_bytes_before = static_cast<int64_t>(wt->nbytes());
    const std::string wname = g.value(n.inputs[1]).name;
    const int bq =
        passes::add_initializer(g, wname + "_Q4", to_tensor(q.b, {N, q.k_blocks, bs / 2}));
    const int sc = passes::add_initializer(g, wname + "_scales",
                                           Tensor::from_vector<float>({N, q.k_blocks}, q.scales));
    int zp = ir::kNoValue;
    if (options.int4_zero_point)
      zp = passes::add_initializer(g, wname + "_zero_points",
                                   to_tensor(q.zero_points, {N, (q.k_blocks + 1) / 2}));
    layer.weight_bytes_after = tensor_bytes(g, bq) + tensor_bytes(g, sc) + tensor_bytes(g, zp);

    // Gemm's C: a constant of N elements becomes the bias input, anything else an Add.
    int bias = ir::kNoValue, add_c = ir::kNoValue;
    if (c >= 0) {
      if (ct != nullptr && ct->numel() == N &&
          (ct->rank() == 1 || (ct->rank() == 2 && ct->dim(0) == 1))) {
        Tensor cb = Tensor::from_vector<float>(
            {N}, std::vector<float>(ct->data<float>(), ct->data<float>() + N));
        for (int64_t j = 0; j < N; ++j) cb.data<float>()[j] *= beta;
        bias = passes::add_initializer(g, g.value(c).name + "_bias", cb);
        layer.weight_bytes_before += tensor_bytes(g, c);
        layer.weight_bytes_after += tensor_bytes(g, bias);
      } else if (ct != nullptr && beta != 1.0f) {
        Tensor cb = ct->clone();
        for (int64_t j = 0; j < cb.numel(); ++j) cb.data<float>()[j] *= beta;
        add_c = passes::add_initializer(g, g.value(c).name + "_beta", cb);
      } else {
        add_c = c;
      }
    }
    const int y = n.outputs[0];
    const std::string base = n.name.empty() ? g.value(y).name : n.name;
    int mm_out = y;
    if (add_c >= 0) mm_out = passes::add_value(g, g.value(y).name + "_matmul", info.type(y));
    ir::Node mm;
    mm.op_type = "MatMulNBits";
    mm.domain = kMsDomain;
    mm.name = names(base + "_Q4");
    mm.inputs = {a, bq, sc};
    if (zp >= 0 || bias >= 0) mm.inputs.push_back(zp);
    if (bias >= 0) {
      mm.inputs.push_back(ir::kNoValue);  // g_idx
      mm.inputs.push_back(bias);
    }
    mm.outputs = {mm_out};
    mm.attributes = {int_attr("K", K), int_attr("N", N), int_attr("bits", 4),
                     int_attr("block_size", bs)};
    nodes.push_back(std::move(mm));
    if (add_c >= 0) {
      ir::Node add;
      add.op_type = "Add";
      add.name = names(base + "_bias_add");
      add.inputs = {mm_out, add_c};
      add.outputs = {y};
      nodes.push_back(std::move(add));
    }
    layer.fp32_tensor = layer.quant_tensor = g.value(y).name;
    report->layers.push_back(layer);
    ++converted;
  }
  if (converted == 0)
    return invalid_argument(
        "no MatMul/Gemm with a constant 2-D float weight to quantize to int4 (int4 is "
        "weight-only for MatMul/Gemm); no output was written");
  g.nodes = std::move(nodes);
  recompute_producers(g);
  bool has_ms = false;
  for (ir::OperatorSetId& o : model.opset_imports) has_ms = has_ms || o.domain == kMsDomain;
  if (!has_ms) model.opset_imports.push_back({kMsDomain, 1});
  report->weights = "int4 block " + std::to_string(bs) +
                    (options.int4_zero_point ? " asymmetric (zero points)" : " symmetric");
  report->activations = "fp32";
  return Status::ok();
}

}  // namespace brink::quant
