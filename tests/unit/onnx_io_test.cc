// ONNX import / export: round trips over the ONNX test data, external data, every tensor
// encoding, and hostile input (truncated, bit-flipped, garbage, crafted) that must end in
// a clean one-line error instead of a crash.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "onnx/onnx_io.h"

namespace brink::onnx_io {
namespace {

namespace fs = std::filesystem;

const fs::path kTestData = "/usr/share/libonnx-testdata/data";

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A fresh folder under the system temp dir, removed with its contents at scope exit.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            ("brink_onnx_io_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Asserts a failed Result/Status with a one-line message, optionally mentioning `needle`.
template <typename R>
::testing::AssertionResult clean_error(const R& r, const std::string& needle = "") {
  const Status s = [&] {
    if constexpr (std::is_same_v<R, Status>)
      return r;
    else
      return r.is_ok() ? Status::ok() : r.status();
  }();
  if (s.is_ok()) return ::testing::AssertionFailure() << "expected an error, got ok";
  if (s.message().empty()) return ::testing::AssertionFailure() << "error with an empty message";
  if (s.message().find('\n') != std::string::npos || s.message().find('\r') != std::string::npos)
    return ::testing::AssertionFailure() << "error is more than one line: " << s.message();
  if (s.message().size() > 2100) return ::testing::AssertionFailure() << "error is too long";
  if (!needle.empty() && s.message().find(needle) == std::string::npos)
    return ::testing::AssertionFailure()
           << "error does not mention '" << needle << "': " << s.message();
  return ::testing::AssertionSuccess() << s.message();
}

// export(import(export(m))) must have the same bytes as export(m).
::testing::AssertionResult round_trips(const ir::Model& m, std::string* first_bytes = nullptr) {
  auto b1 = serialize_onnx(m);
  if (!b1) return ::testing::AssertionFailure() << "first export failed: " << b1.status().message();
  auto m2 = parse_onnx_bytes(b1->data(), b1->size());
  if (!m2) return ::testing::AssertionFailure() << "re-import failed: " << m2.status().message();
  auto b2 = serialize_onnx(*m2);
  if (!b2)
    return ::testing::AssertionFailure() << "second export failed: " << b2.status().message();
  if (*b1 != *b2)
    return ::testing::AssertionFailure() << "export bytes differ after a round trip (" << b1->size()
                                         << " vs " << b2->size() << " bytes)";
  if (first_bytes) *first_bytes = *b1;
  return ::testing::AssertionSuccess();
}

// ---- building small models with the protobuf classes ----

void set_type(onnx::ValueInfoProto* vi, int elem, const std::vector<std::string>& dims) {
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem);
  tt->clear_shape();
  auto* shape = tt->mutable_shape();
  for (const std::string& d : dims) {
    auto* pd = shape->add_dim();
    if (d == "?") continue;
    if (!d.empty() && (d[0] == '-' || std::isdigit(static_cast<unsigned char>(d[0])) != 0))
      pd->set_dim_value(std::stoll(d));
    else
      pd->set_dim_param(d);
  }
}

onnx::ValueInfoProto* add_input(onnx::GraphProto* g, const std::string& name,
                                const std::vector<std::string>& dims) {
  auto* vi = g->add_input();
  vi->set_name(name);
  set_type(vi, onnx::TensorProto::FLOAT, dims);
  return vi;
}

onnx::ValueInfoProto* add_output(onnx::GraphProto* g, const std::string& name,
                                 const std::vector<std::string>& dims) {
  auto* vi = g->add_output();
  vi->set_name(name);
  set_type(vi, onnx::TensorProto::FLOAT, dims);
  return vi;
}

onnx::NodeProto* add_node(onnx::GraphProto* g, const std::string& op,
                          const std::vector<std::string>& in, const std::vector<std::string>& out,
                          const std::string& name = "") {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(name.empty() ? op + "_" + std::to_string(g->node_size()) : name);
  for (const auto& s : in) n->add_input(s);
  for (const auto& s : out) n->add_output(s);
  return n;
}

onnx::TensorProto* add_float_initializer(onnx::GraphProto* g, const std::string& name,
                                         std::vector<int64_t> dims,
                                         const std::vector<float>& values) {
  auto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(
      std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
  return t;
}

// x[2,3] + w (initializer) -> y, opset 17.
onnx::ModelProto tiny_model() {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("tiny");
  add_input(g, "x", {"2", "3"});
  add_float_initializer(g, "w", {2, 3}, {1, 2, 3, 4, 5, 6});
  add_node(g, "Add", {"x", "w"}, {"y"}, "add");
  add_output(g, "y", {"2", "3"});
  return m;
}

Result<ir::Model> parse(const onnx::ModelProto& m, const std::string& base_dir = "") {
  const std::string bytes = m.SerializeAsString();
  return parse_onnx_bytes(bytes.data(), bytes.size(), base_dir);
}

// ---- basic import / export ----

TEST(OnnxIo, ImportKeepsModelFieldsAndRoundTrips) {
  onnx::ModelProto m = tiny_model();
  m.set_producer_name("unit");
  m.set_producer_version("1.0");
  m.set_domain("org.example");
  m.set_model_version(42);
  m.set_doc_string("a tiny model");
  m.mutable_opset_import(0)->set_domain("ai.onnx");
  auto* ml = m.add_opset_import();
  ml->set_domain("ai.onnx.ml");
  ml->set_version(3);
  auto* kv = m.add_metadata_props();
  kv->set_key("author");
  kv->set_value("me");
  auto* g = m.mutable_graph();
  g->set_doc_string("graph doc");
  g->mutable_input(0)->set_doc_string("input doc");
  set_type(g->mutable_input(0), onnx::TensorProto::FLOAT, {"batch", "?"});
  g->mutable_node(0)->set_doc_string("node doc");
  // A Clip with an absent optional input and a node with an absent optional output.
  add_node(g, "Clip", {"y", "", "w"}, {"z"}, "clip");
  add_node(g, "Dropout", {"z"}, {"d", ""}, "drop");
  auto* vi = g->add_value_info();
  vi->set_name("z");
  set_type(vi, onnx::TensorProto::FLOAT, {"batch", "3"});
  auto* a = g->mutable_node(0)->add_attribute();
  a->set_name("some_ints");
  a->set_type(onnx::AttributeProto::INTS);
  a->add_ints(1);
  a->add_ints(-2);
  auto* b = g->mutable_node(0)->add_attribute();  // no type: inferred from the field set
  b->set_name("untyped_float");
  b->set_f(0.5f);

  auto r = parse(m);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  const ir::Model& im = *r;
  EXPECT_EQ(im.ir_version, 8);
  EXPECT_EQ(im.producer_name, "unit");
  EXPECT_EQ(im.producer_version, "1.0");
  EXPECT_EQ(im.domain, "org.example");
  EXPECT_EQ(im.model_version, 42);
  EXPECT_EQ(im.doc_string, "a tiny model");
  ASSERT_EQ(im.opset_imports.size(), 2u);
  EXPECT_EQ(im.opset_imports[0].domain, "");
  EXPECT_EQ(im.opset(""), 17);
  EXPECT_EQ(im.opset("ai.onnx.ml"), 3);
  ASSERT_EQ(im.metadata_props.size(), 1u);
  EXPECT_EQ(im.metadata_props[0].second, "me");
  const ir::Graph& ig = im.graph;
  EXPECT_EQ(ig.name, "tiny");
  EXPECT_EQ(ig.doc_string, "graph doc");
  ASSERT_EQ(ig.inputs.size(), 1u);
  const ir::Value& x = ig.value(ig.inputs[0]);
  EXPECT_EQ(x.doc_string, "input doc");
  EXPECT_EQ(x.type.to_string(), "f32[batch, ?]");
  ASSERT_EQ(ig.initializers.size(), 1u);
  ASSERT_TRUE(ig.value(ig.initializers[0]).constant.has_value());
  EXPECT_EQ(ig.value(ig.initializers[0]).constant->data<float>()[5], 6.0f);
  EXPECT_TRUE(ig.initializer_inputs.empty());
  ASSERT_EQ(ig.nodes.size(), 3u);
  EXPECT_EQ(ig.nodes[0].doc_string, "node doc");
  EXPECT_EQ(ig.nodes[1].inputs[1], ir::kNoValue);
  EXPECT_EQ(ig.nodes[2].outputs[1], ir::kNoValue);
  ASSERT_EQ(ig.nodes[0].attributes.size(), 2u);
  EXPECT_EQ(ig.nodes[0].attr_ints("some_ints"), (std::vector<int64_t>{1, -2}));
  EXPECT_EQ(ig.nodes[0].attributes[1].type, ir::AttrType::kFloat);
  EXPECT_EQ(ig.nodes[0].attr_float("untyped_float", 0), 0.5f);
  ASSERT_EQ(ig.value_infos.size(), 1u);
  EXPECT_EQ(ig.value(ig.value_infos[0]).type.to_string(), "f32[batch, 3]");

  std::string bytes;
  ASSERT_TRUE(round_trips(im, &bytes));
  auto again = parse_onnx_bytes(bytes.data(), bytes.size());
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->metadata_props, im.metadata_props);
  EXPECT_EQ(again->graph.value(again->graph.inputs[0]).type.to_string(), "f32[batch, ?]");
  EXPECT_EQ(again->graph.nodes[1].inputs[1], ir::kNoValue);
}

TEST(OnnxIo, InitializersListedAsInputsAreKeptApart) {
  onnx::ModelProto m = tiny_model();
  m.set_ir_version(3);
  add_input(m.mutable_graph(), "w", {"2", "3"})->set_doc_string("weights");
  auto r = parse(m);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  ASSERT_EQ(r->graph.inputs.size(), 1u);
  ASSERT_EQ(r->graph.initializer_inputs.size(), 1u);
  EXPECT_EQ(r->graph.value(r->graph.initializer_inputs[0]).name, "w");
  EXPECT_EQ(r->graph.value(r->graph.initializer_inputs[0]).doc_string, "weights");
  std::string bytes;
  ASSERT_TRUE(round_trips(*r, &bytes));
  onnx::ModelProto back;
  ASSERT_TRUE(back.ParseFromString(bytes));
  ASSERT_EQ(back.graph().input_size(), 2);
  EXPECT_EQ(back.graph().input(1).name(), "w");
  EXPECT_TRUE(back.graph().initializer(0).has_raw_data());
}

TEST(OnnxIo, NodesOutOfOrderAreSorted) {
  onnx::ModelProto m = tiny_model();
  auto* g = m.mutable_graph();
  add_node(g, "Relu", {"y"}, {"r"}, "relu");
  g->mutable_node()->SwapElements(0, 1);
  g->mutable_output(0)->set_name("r");
  auto r = parse(m);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->graph.nodes[0].op_type, "Add");
  EXPECT_EQ(r->graph.nodes[1].op_type, "Relu");
  EXPECT_EQ(r->graph.value(r->graph.outputs[0]).producer, 1);
}

// ---- tensors ----

// Stores `values` (as doubles) in the typed field the spec names for `dtype`.
onnx::TensorProto typed_tensor(DataType dtype, const std::vector<double>& values) {
  onnx::TensorProto t;
  t.set_name("t");
  t.set_data_type(static_cast<int32_t>(dtype));
  t.add_dims(static_cast<int64_t>(values.size()));
  for (double v : values) {
    switch (dtype) {
      case DataType::kFloat32:
        t.add_float_data(static_cast<float>(v));
        break;
      case DataType::kFloat64:
        t.add_double_data(v);
        break;
      case DataType::kInt64:
        t.add_int64_data(static_cast<int64_t>(v));
        break;
      case DataType::kUInt32:
      case DataType::kUInt64:
        t.add_uint64_data(static_cast<uint64_t>(v));
        break;
      case DataType::kFloat16:
        t.add_int32_data(Float16(static_cast<float>(v)).bits);
        break;
      case DataType::kBFloat16:
        t.add_int32_data(BFloat16(static_cast<float>(v)).bits);
        break;
      default:
        t.add_int32_data(static_cast<int32_t>(v));
        break;
    }
  }
  return t;
}

const std::vector<DataType> kAllDtypes = {
    DataType::kFloat32, DataType::kFloat64, DataType::kFloat16, DataType::kBFloat16,
    DataType::kInt8,    DataType::kUInt8,   DataType::kInt16,   DataType::kUInt16,
    DataType::kInt32,   DataType::kUInt32,  DataType::kInt64,   DataType::kUInt64,
    DataType::kBool};

TEST(OnnxIo, TypedFieldsOfEveryDtype) {
  for (DataType dt : kAllDtypes) {
    SCOPED_TRACE(dtype_name(dt));
    const std::vector<double> values =
        dt == DataType::kBool ? std::vector<double>{1, 0, 1} : std::vector<double>{1, 0, 7};
    const std::string bytes = typed_tensor(dt, values).SerializeAsString();
    std::string name;
    auto t = parse_tensor_proto(bytes.data(), bytes.size(), &name);
    ASSERT_TRUE(t.is_ok()) << t.status().message();
    EXPECT_EQ(name, "t");
    EXPECT_EQ(t->dtype(), dt);
    ASSERT_EQ(t->shape(), (Shape{3}));
    for (int64_t i = 0; i < 3; ++i)
      EXPECT_EQ(t->element_as_double(i), values[static_cast<size_t>(i)]);

    // And raw_data, through serialize_tensor_proto.
    auto raw = serialize_tensor_proto(*t, "again");
    ASSERT_TRUE(raw.is_ok()) << raw.status().message();
    onnx::TensorProto p;
    ASSERT_TRUE(p.ParseFromString(*raw));
    EXPECT_TRUE(p.has_raw_data());
    EXPECT_EQ(p.raw_data().size(), 3 * dtype_size(dt));
    auto back = parse_tensor_proto(raw->data(), raw->size(), &name);
    ASSERT_TRUE(back.is_ok()) << back.status().message();
    EXPECT_EQ(name, "again");
    EXPECT_EQ(std::memcmp(back->raw_data(), t->raw_data(), t->nbytes()), 0);
  }
}

TEST(OnnxIo, NarrowTypedValuesAndBoolBytesAreNormalised) {
  onnx::TensorProto t = typed_tensor(DataType::kInt8, {-1, 127, -128});
  auto r = parse_tensor_proto(t.SerializeAsString().data(), t.ByteSizeLong());
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->data<int8_t>()[0], -1);
  EXPECT_EQ(r->data<int8_t>()[2], -128);
  onnx::TensorProto b;
  b.set_data_type(onnx::TensorProto::BOOL);
  b.add_dims(3);
  b.set_raw_data(std::string("\x00\x02\xff", 3));
  const std::string bytes = b.SerializeAsString();
  auto rb = parse_tensor_proto(bytes.data(), bytes.size());
  ASSERT_TRUE(rb.is_ok());
  const auto* p = static_cast<const uint8_t*>(rb->raw_data());
  EXPECT_EQ(p[0], 0);
  EXPECT_EQ(p[1], 1);
  EXPECT_EQ(p[2], 1);
}

TEST(OnnxIo, TensorErrorsAreClean) {
  auto check = [](const onnx::TensorProto& t, const std::string& needle,
                  StatusCode code = StatusCode::kInvalidModel) {
    const std::string bytes = t.SerializeAsString();
    auto r = parse_tensor_proto(bytes.data(), bytes.size());
    EXPECT_TRUE(clean_error(r, needle));
    if (!r) {
      EXPECT_EQ(r.status().code(), code) << r.status().message();
    }
  };
  onnx::TensorProto t = typed_tensor(DataType::kFloat32, {1, 2, 3});
  t.add_dims(2);  // [3, 2] but 3 values
  check(t, "float_data has 3 values, expected 6");
  onnx::TensorProto big;
  big.set_name("big");
  big.set_data_type(onnx::TensorProto::UINT8);
  big.add_dims(int64_t{1} << 62);
  big.set_raw_data("abcd");
  check(big, "raw_data has 4 bytes, expected");
  big.add_dims(int64_t{1} << 62);
  check(big, "fit in 64 bits");
  onnx::TensorProto neg = typed_tensor(DataType::kInt64, {1});
  neg.set_dims(0, -1);
  check(neg, "dims[0] is -1, expected >= 0");
  onnx::TensorProto unknown = typed_tensor(DataType::kFloat32, {1});
  unknown.set_data_type(999);
  check(unknown, "unknown data_type 999");
  unknown.set_data_type(14);
  check(unknown, "complex64", StatusCode::kUnsupported);
  onnx::TensorProto str;
  str.set_name("words");
  str.set_data_type(onnx::TensorProto::STRING);
  str.add_dims(1);
  str.add_string_data("hello");
  check(str, "'words': string tensors are not supported", StatusCode::kUnsupported);
  onnx::TensorProto wrong_field = typed_tensor(DataType::kFloat32, {1});
  wrong_field.set_data_type(onnx::TensorProto::INT64);
  check(wrong_field, "stores its values in float_data, expected int64_data");
  onnx::TensorProto none;
  none.set_data_type(onnx::TensorProto::FLOAT);
  none.add_dims(4);
  check(none, "has no data");
  onnx::TensorProto both = typed_tensor(DataType::kFloat32, {1});
  both.set_raw_data("abcd");
  check(both, "both raw_data and float_data");
  onnx::TensorProto ext = typed_tensor(DataType::kFloat32, {});
  ext.set_data_location(onnx::TensorProto::EXTERNAL);
  auto* kv = ext.add_external_data();
  kv->set_key("location");
  kv->set_value("w.bin");
  check(ext, "not loaded from a file", StatusCode::kInvalidArgument);
  const std::string junk = "\xff\xff\xff\xff";
  EXPECT_TRUE(clean_error(parse_tensor_proto(junk.data(), junk.size()), "TensorProto"));
}

TEST(OnnxIo, SparseInitializersBecomeDense) {
  for (bool coordinates : {false, true}) {
    onnx::ModelProto m = tiny_model();
    auto* sp = m.mutable_graph()->add_sparse_initializer();
    sp->add_dims(2);
    sp->add_dims(3);
    auto* v = sp->mutable_values();
    v->set_name("s");
    v->set_data_type(onnx::TensorProto::FLOAT);
    v->add_dims(2);
    v->add_float_data(5);
    v->add_float_data(7);
    auto* idx = sp->mutable_indices();
    idx->set_data_type(onnx::TensorProto::INT64);
    if (coordinates) {
      idx->add_dims(2);
      idx->add_dims(2);
      for (int64_t c : {0, 1, 1, 2}) idx->add_int64_data(c);
    } else {
      idx->add_dims(2);
      idx->add_int64_data(1);
      idx->add_int64_data(5);
    }
    add_node(m.mutable_graph(), "Mul", {"y", "s"}, {"z"});
    m.mutable_graph()->mutable_output(0)->set_name("z");
    auto r = parse(m);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    const int s = r->graph.find_value("s");
    ASSERT_NE(s, ir::kNoValue);
    const Tensor& t = *r->graph.value(s).constant;
    EXPECT_EQ(t.shape(), (Shape{2, 3}));
    const std::vector<float> want{0, 5, 0, 0, 0, 7};
    for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(t.data<float>()[i], want[static_cast<size_t>(i)]);
    EXPECT_TRUE(round_trips(*r));

    idx->set_int64_data(1, 99);
    EXPECT_TRUE(clean_error(parse(m), "sparse index 99"));
  }
}

// ---- subgraphs ----

onnx::GraphProto branch(const std::string& name, const std::string& outer_input) {
  onnx::GraphProto b;
  b.set_name(name);
  add_node(&b, "Neg", {outer_input}, {name + "_out"}, name + "_neg");
  add_output(&b, name + "_out", {"2", "3"});
  return b;
}

onnx::ModelProto if_model(const std::string& then_uses, const std::string& else_uses) {
  onnx::ModelProto m = tiny_model();
  auto* g = m.mutable_graph();
  auto* c = g->add_input();
  c->set_name("cond");
  set_type(c, onnx::TensorProto::BOOL, {});
  auto* n = add_node(g, "If", {"cond"}, {"z"}, "if");
  auto* then_attr = n->add_attribute();
  then_attr->set_name("then_branch");
  then_attr->set_type(onnx::AttributeProto::GRAPH);
  *then_attr->mutable_g() = branch("then", then_uses);
  auto* else_attr = n->add_attribute();
  else_attr->set_name("else_branch");
  else_attr->set_type(onnx::AttributeProto::GRAPH);
  *else_attr->mutable_g() = branch("else", else_uses);
  g->mutable_output(0)->set_name("z");
  return m;
}

TEST(OnnxIo, SubgraphsMayUseOuterValues) {
  auto r = parse(if_model("y", "w"));
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  const ir::Node& n = r->graph.nodes[1];
  ASSERT_EQ(n.op_type, "If");
  const ir::Attribute* then_branch = n.attr("then_branch");
  ASSERT_TRUE(then_branch && then_branch->g);
  const ir::Graph& tg = *then_branch->g;
  EXPECT_EQ(tg.name, "then");
  ASSERT_EQ(tg.nodes.size(), 1u);
  EXPECT_EQ(tg.value(tg.nodes[0].inputs[0]).name, "y");  // resolved by name in the outer graph
  EXPECT_TRUE(tg.inputs.empty());
  EXPECT_TRUE(round_trips(*r));
}

TEST(OnnxIo, SubgraphErrorsNameTheScope) {
  EXPECT_TRUE(clean_error(parse(if_model("y", "nowhere")),
                          "'nowhere' is not defined in this graph or an enclosing one"));
  EXPECT_TRUE(clean_error(parse(if_model("y", "nowhere")), "attribute 'else_branch'"));
  // The If uses 'late', which a node after it produces.
  onnx::ModelProto m = if_model("late", "w");
  add_node(m.mutable_graph(), "Relu", {"y"}, {"late"}, "relu");
  EXPECT_TRUE(clean_error(parse(m), "'late'"));
}

TEST(OnnxIo, DeeplyNestedSubgraphsFailCleanly) {
  onnx::GraphProto inner = branch("b", "x");
  for (int depth = 0; depth < 200; ++depth) {
    onnx::GraphProto outer;
    auto* n = add_node(&outer, "If", {"x"}, {"o"});
    auto* a = n->add_attribute();
    a->set_name("then_branch");
    a->set_type(onnx::AttributeProto::GRAPH);
    *a->mutable_g() = std::move(inner);
    inner = std::move(outer);
  }
  onnx::ModelProto m = tiny_model();
  auto* a = m.mutable_graph()->mutable_node(0)->add_attribute();
  a->set_name("g");
  a->set_type(onnx::AttributeProto::GRAPH);
  *a->mutable_g() = std::move(inner);
  EXPECT_TRUE(clean_error(parse(m)));
}

// ---- external data ----

// Writes w.bin with 8 junk bytes, then w (6 floats), then b (2 int64), and a model using them.
onnx::ModelProto external_model(const fs::path& dir) {
  std::string blob = "junkjunk";
  const std::vector<float> w{1, 2, 3, 4, 5, 6};
  const std::vector<int64_t> b{-7, 9};
  blob.append(reinterpret_cast<const char*>(w.data()), w.size() * 4);
  blob.append(reinterpret_cast<const char*>(b.data()), b.size() * 8);
  write_bytes(dir / "w.bin", blob);
  onnx::ModelProto m = tiny_model();
  auto* t = m.mutable_graph()->mutable_initializer(0);
  t->clear_raw_data();
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto set = [](onnx::TensorProto* tp, const std::string& loc, const std::string& off,
                const std::string& len) {
    tp->clear_external_data();
    auto* kv = tp->add_external_data();
    kv->set_key("location");
    kv->set_value(loc);
    if (!off.empty()) {
      kv = tp->add_external_data();
      kv->set_key("offset");
      kv->set_value(off);
    }
    if (!len.empty()) {
      kv = tp->add_external_data();
      kv->set_key("length");
      kv->set_value(len);
    }
  };
  set(t, "w.bin", "8", "24");
  auto* bt = m.mutable_graph()->add_initializer();
  bt->set_name("b");
  bt->set_data_type(onnx::TensorProto::INT64);
  bt->add_dims(2);
  bt->set_data_location(onnx::TensorProto::EXTERNAL);
  set(bt, "./w.bin", "32", "");  // no length: to the end of the file
  return m;
}

void set_location(onnx::ModelProto& m, const std::string& loc, const std::string& off,
                  const std::string& len) {
  auto* t = m.mutable_graph()->mutable_initializer(0);
  t->clear_external_data();
  for (auto [k, v] :
       {std::pair{"location", loc}, std::pair{"offset", off}, std::pair{"length", len}}) {
    if (v.empty()) continue;
    auto* kv = t->add_external_data();
    kv->set_key(k);
    kv->set_value(v);
  }
}

TEST(OnnxIo, ExternalDataLoadsAndExportsInline) {
  TempDir tmp;
  onnx::ModelProto m = external_model(tmp.path());
  write_bytes(tmp.path() / "model.onnx", m.SerializeAsString());
  auto r = load_onnx_file((tmp.path() / "model.onnx").string());
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  const Tensor& w = *r->graph.value(r->graph.find_value("w")).constant;
  EXPECT_EQ(w.shape(), (Shape{2, 3}));
  EXPECT_EQ(w.data<float>()[0], 1.0f);
  EXPECT_EQ(w.data<float>()[5], 6.0f);
  const Tensor& b = *r->graph.value(r->graph.find_value("b")).constant;
  EXPECT_EQ(b.data<int64_t>()[0], -7);
  EXPECT_EQ(b.data<int64_t>()[1], 9);
  std::string bytes;
  ASSERT_TRUE(round_trips(*r, &bytes));
  onnx::ModelProto back;
  ASSERT_TRUE(back.ParseFromString(bytes));
  for (const auto& t : back.graph().initializer()) {
    EXPECT_EQ(t.data_location(), onnx::TensorProto::DEFAULT);
    EXPECT_TRUE(t.has_raw_data());
    EXPECT_EQ(t.external_data_size(), 0);
  }
  // save_onnx_file then load gives the same bytes again.
  ASSERT_TRUE(save_onnx_file(*r, (tmp.path() / "inline.onnx").string()).is_ok());
  EXPECT_EQ(read_bytes(tmp.path() / "inline.onnx"), bytes);
  // In memory, the same model resolves its data against the folder given.
  const std::string ext = m.SerializeAsString();
  EXPECT_TRUE(parse_onnx_bytes(ext.data(), ext.size(), tmp.path().string()).is_ok());
  EXPECT_TRUE(clean_error(parse_onnx_bytes(ext.data(), ext.size()), "not loaded from a file"));
}

TEST(OnnxIo, ExternalDataRejectsEscapesAndBadRanges) {
  TempDir tmp;
  fs::create_directories(tmp.path() / "sub");
  write_bytes(tmp.path() / "sub" / "x.bin", std::string(24, '\0'));
  onnx::ModelProto m = external_model(tmp.path());
  const std::string dir = tmp.path().string();
  auto try_location = [&](const std::string& loc, const std::string& off, const std::string& len) {
    set_location(m, loc, off, len);
    return parse(m, dir);
  };
  EXPECT_TRUE(try_location("sub/x.bin", "", "").is_ok());
  EXPECT_TRUE(clean_error(try_location("../w.bin", "", ""), "escapes the model's folder"));
  EXPECT_TRUE(clean_error(try_location("sub/../../w.bin", "", ""), "escapes"));
  EXPECT_TRUE(clean_error(try_location("sub\\..\\..\\w.bin", "", ""), "escapes"));
  EXPECT_TRUE(clean_error(try_location("/etc/passwd", "", ""), "absolute path"));
  EXPECT_TRUE(clean_error(try_location("C:\\w.bin", "", ""), "absolute path"));
  EXPECT_TRUE(clean_error(try_location(std::string("w.bin\0x", 7), "", ""), "NUL"));
  EXPECT_TRUE(clean_error(try_location("missing.bin", "", ""), "does not exist"));
  EXPECT_TRUE(clean_error(try_location("sub", "", ""), "not a regular file"));
  EXPECT_TRUE(clean_error(try_location("w.bin", "8", "20"), "length is 20 bytes, expected 24"));
  EXPECT_TRUE(clean_error(try_location("w.bin", "40", "24"), "runs past the end"));
  EXPECT_TRUE(clean_error(try_location("w.bin", "4000", "24"), "past the end"));
  EXPECT_TRUE(clean_error(try_location("w.bin", "18446744073709551615", "24"), "past the end"));
  EXPECT_TRUE(clean_error(try_location("w.bin", "-8", "24"), "not a non-negative integer"));
  EXPECT_TRUE(clean_error(try_location("w.bin", "99999999999999999999999", "24"),
                          "not a non-negative integer"));
  EXPECT_TRUE(clean_error(try_location("w.bin", "8", "0x18"), "not a non-negative integer"));
  EXPECT_TRUE(clean_error(try_location("", "", ""), "no 'location'"));
  // A symbolic link that leads out of the folder.
  TempDir outside;
  write_bytes(outside.path() / "secret.bin", std::string(24, 'x'));
  fs::create_symlink(outside.path() / "secret.bin", tmp.path() / "link.bin");
  EXPECT_TRUE(clean_error(try_location("link.bin", "", ""), "resolves outside the model's folder"));
}

// ---- hostile models ----

TEST(OnnxIo, StructuralErrorsAreClean) {
  {
    onnx::ModelProto m = tiny_model();
    add_input(m.mutable_graph(), "x", {"2"});
    EXPECT_TRUE(clean_error(parse(m), "graph input 'x' is listed more than once"));
  }
  {
    onnx::ModelProto m = tiny_model();
    add_float_initializer(m.mutable_graph(), "w", {1}, {1});
    EXPECT_TRUE(clean_error(parse(m), "initializer 'w' is defined more than once"));
  }
  {
    onnx::ModelProto m = tiny_model();
    add_node(m.mutable_graph(), "Relu", {"x"}, {"y"}, "relu");
    EXPECT_TRUE(clean_error(parse(m), "defined more than once"));
  }
  {
    onnx::ModelProto m = tiny_model();
    add_node(m.mutable_graph(), "Relu", {"x"}, {"w"}, "relu");  // overwrites an initializer
    EXPECT_TRUE(clean_error(parse(m), "defined more than once"));
  }
  {
    onnx::ModelProto m = tiny_model();
    m.mutable_graph()->mutable_node(0)->set_input(1, "ghost");
    EXPECT_TRUE(clean_error(parse(m), "'ghost'"));
  }
  {
    onnx::ModelProto m = tiny_model();
    add_output(m.mutable_graph(), "never", {});
    EXPECT_TRUE(clean_error(parse(m), "'never' is never produced"));
  }
  {
    onnx::ModelProto m = tiny_model();
    add_node(m.mutable_graph(), "Relu", {"y"}, {"x2"}, "a");
    add_node(m.mutable_graph(), "Relu", {"x2"}, {"y2"}, "b");
    m.mutable_graph()->mutable_node(1)->set_input(0, "y2");
    EXPECT_TRUE(clean_error(parse(m), "cycle"));
  }
  {
    onnx::ModelProto m = tiny_model();
    m.mutable_graph()->mutable_node(0)->clear_op_type();
    EXPECT_TRUE(clean_error(parse(m), "has no op_type"));
  }
  {
    onnx::ModelProto m = tiny_model();
    for (int k = 0; k < 2; ++k) {
      auto* a = m.mutable_graph()->mutable_node(0)->add_attribute();
      a->set_name("axis");
      a->set_type(onnx::AttributeProto::INT);
    }
    EXPECT_TRUE(clean_error(parse(m), "attribute 'axis' is given more than once"));
  }
  {
    onnx::ModelProto m = tiny_model();
    m.mutable_graph()->mutable_initializer(0)->mutable_raw_data()->resize(20);
    auto r = parse(m);
    EXPECT_TRUE(
        clean_error(r, "initializer 'w': raw_data has 20 bytes, expected 24 for f32[2, 3]"));
  }
  {
    onnx::ModelProto m = tiny_model();
    m.mutable_graph()->mutable_initializer(0)->set_dims(0, int64_t{1} << 62);
    EXPECT_TRUE(clean_error(
        parse(m),
        "initializer 'w': shape [4611686018427387904, 3] has more elements than fit in 64 bits"));
  }
  {
    onnx::ModelProto m = tiny_model();
    set_type(m.mutable_graph()->mutable_input(0), onnx::TensorProto::FLOAT, {"-3"});
    EXPECT_TRUE(clean_error(parse(m), "dim 0 is -3, expected >= 0"));
  }
  {
    onnx::ModelProto m = tiny_model();
    m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->set_elem_type(1234);
    EXPECT_TRUE(clean_error(parse(m), "unknown elem_type 1234"));
  }
  {
    onnx::ModelProto m = tiny_model();
    m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_sequence_type();
    auto r = parse(m);
    EXPECT_TRUE(clean_error(r, "sequence type"));
    EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  }
  {
    onnx::ModelProto m = tiny_model();
    m.add_functions()->set_name("MyFn");
    EXPECT_EQ(parse(m).status().code(), StatusCode::kUnsupported);
  }
  {
    onnx::ModelProto m = tiny_model();
    auto* o = m.add_opset_import();
    o->set_domain("ai.onnx");
    o->set_version(13);
    EXPECT_TRUE(clean_error(parse(m), "twice"));
  }
  {
    onnx::ModelProto m = tiny_model();
    m.mutable_graph()->mutable_node(0)->set_name("evil\nname");
    m.mutable_graph()->mutable_node(0)->set_input(0, std::string(5000, 'q'));
    EXPECT_TRUE(clean_error(parse(m)));
  }
  {
    onnx::ModelProto m = tiny_model();
    m.clear_graph();
    EXPECT_TRUE(clean_error(parse(m), "no graph"));
  }
}

TEST(OnnxIo, NotOnnxFilesFailCleanly) {
  for (const std::string& junk :
       {std::string(), std::string("hello, world\n"),
        std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16), std::string("PK\x03\x04", 4),
        std::string(1000, '\xff'), std::string(100, '\0')}) {
    EXPECT_TRUE(clean_error(parse_onnx_bytes(junk.data(), junk.size())));
  }
  // A TensorProto file is valid protobuf but not a model.
  const std::string t = typed_tensor(DataType::kFloat32, {1, 2}).SerializeAsString();
  EXPECT_TRUE(clean_error(parse_onnx_bytes(t.data(), t.size()), "not an ONNX model"));
  EXPECT_TRUE(clean_error(load_onnx_file("/nonexistent/model.onnx"), "/nonexistent/model.onnx"));
  TempDir tmp;
  EXPECT_TRUE(clean_error(load_onnx_file(tmp.path().string()), "not a regular file"));
  write_bytes(tmp.path() / "bad.onnx", "this is not a model");
  EXPECT_TRUE(clean_error(load_onnx_file((tmp.path() / "bad.onnx").string()), "bad.onnx"));
}

// A model exercising initializers (typed and raw), value_info, a subgraph and attributes.
std::string rich_model_bytes() {
  onnx::ModelProto m = if_model("y", "w");
  auto* vi = m.mutable_graph()->add_value_info();
  vi->set_name("y");
  set_type(vi, onnx::TensorProto::FLOAT, {"2", "3"});
  auto* t = m.mutable_graph()->add_initializer();
  *t = typed_tensor(DataType::kInt64, {1, 2, 3});
  t->set_name("shape");
  auto* a = m.mutable_graph()->mutable_node(0)->add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  *a->mutable_t() = typed_tensor(DataType::kFloat16, {1.5});
  return m.SerializeAsString();
}

// Loads every mutation; none may crash, every failure must be a clean error, and every
// success must round trip.
struct MutationStats {
  int ok = 0, failed = 0;
};
void load_mutant(const std::string& bytes, MutationStats& stats) {
  auto r = parse_onnx_bytes(bytes.data(), bytes.size());
  if (r.is_ok()) {
    ++stats.ok;
    EXPECT_TRUE(round_trips(*r));
  } else {
    ++stats.failed;
    EXPECT_TRUE(clean_error(r));
  }
}

std::vector<std::string> hostile_seeds() {
  std::vector<std::string> seeds{rich_model_bytes()};
  for (const char* rel :
       {"node/test_loop11/model.onnx", "pytorch-converted/test_Conv2d/model.onnx"})
    if (fs::exists(kTestData / rel)) seeds.push_back(read_bytes(kTestData / rel));
  return seeds;
}

TEST(OnnxIoHostile, TruncatedModelsFailCleanly) {
  MutationStats stats;
  for (const std::string& seed : hostile_seeds()) {
    ASSERT_TRUE(parse_onnx_bytes(seed.data(), seed.size()).is_ok());
    for (size_t len = 0; len < seed.size(); ++len) load_mutant(seed.substr(0, len), stats);
  }
  EXPECT_GT(stats.failed, stats.ok);
  std::cout << "[          ] truncations: " << stats.failed << " rejected, " << stats.ok
            << " still valid\n";
}

TEST(OnnxIoHostile, BitFlippedModelsFailCleanly) {
  std::mt19937 rng(12345);
  MutationStats stats;
  for (const std::string& seed : hostile_seeds()) {
    for (int trial = 0; trial < 1500; ++trial) {
      std::string bytes = seed;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f)
        bytes[rng() % bytes.size()] ^= static_cast<char>(1u << (rng() % 8));
      load_mutant(bytes, stats);
    }
  }
  std::cout << "[          ] bit flips: " << stats.failed << " rejected, " << stats.ok
            << " still valid\n";
}

TEST(OnnxIoHostile, RandomGarbageFailsCleanly) {
  std::mt19937 rng(777);
  MutationStats stats;
  for (int trial = 0; trial < 2000; ++trial) {
    std::string bytes(rng() % 512, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    load_mutant(bytes, stats);
    std::string n;
    auto t = parse_tensor_proto(bytes.data(), bytes.size(), &n);
    if (!t) {
      EXPECT_TRUE(clean_error(t));
    }
  }
  std::cout << "[          ] garbage: " << stats.failed << " rejected, " << stats.ok << " parsed\n";
}

// The fuzzer's seed corpus must hold valid models, or the fuzzer starts from nothing.
TEST(OnnxIo, FuzzSeedCorpusLoads) {
  const fs::path corpus = fs::path(__FILE__).parent_path().parent_path() / "fuzz" / "corpus_onnx";
  if (!fs::exists(corpus)) GTEST_SKIP() << "no seed corpus at " << corpus;
  int n = 0;
  for (const auto& e : fs::directory_iterator(corpus)) {
    SCOPED_TRACE(e.path().string());
    auto r = load_onnx_file(e.path().string());
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    EXPECT_TRUE(round_trips(*r));
    EXPECT_LT(fs::file_size(e.path()), 2048u);
    ++n;
  }
  EXPECT_GE(n, 3);
}

// ---- the ONNX test data ----

// Node summaries ("op|name|inputs|outputs|attribute names") for comparing a file with its import.
std::multiset<std::string> summarize(const onnx::GraphProto& g) {
  std::multiset<std::string> s;
  for (const auto& n : g.node()) {
    std::string d =
        (n.domain() == "ai.onnx" ? "" : n.domain()) + "." + n.op_type() + "|" + n.name() + "|";
    for (const auto& i : n.input()) d += i + ",";
    d += "|";
    for (const auto& o : n.output()) d += o + ",";
    d += "|";
    for (const auto& a : n.attribute()) d += a.name() + ",";
    s.insert(d);
  }
  return s;
}

std::multiset<std::string> summarize(const ir::Graph& g) {
  std::multiset<std::string> s;
  auto name = [&](int v) { return v == ir::kNoValue ? std::string() : g.value(v).name; };
  for (const auto& n : g.nodes) {
    std::string d = n.domain + "." + n.op_type + "|" + n.name + "|";
    for (int i : n.inputs) d += name(i) + ",";
    d += "|";
    for (int o : n.outputs) d += name(o) + ",";
    d += "|";
    for (const auto& a : n.attributes) d += a.name + ",";
    s.insert(d);
  }
  return s;
}

// Round-trips every model.onnx under `folder`; returns {round-tripped, unsupported}.
std::pair<int, int> round_trip_folder(const fs::path& folder) {
  int ok = 0, unsupported_count = 0;
  std::map<std::string, int> reasons;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(folder))
    if (fs::exists(e.path() / "model.onnx")) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  for (const fs::path& dir : dirs) {
    SCOPED_TRACE(dir.filename().string());
    auto r = load_onnx_file((dir / "model.onnx").string());
    if (!r) {
      EXPECT_EQ(r.status().code(), StatusCode::kUnsupported) << r.status().message();
      EXPECT_TRUE(clean_error(r));
      const std::string& msg = r.status().message();
      const size_t cut = msg.rfind(": ");
      ++reasons[cut == std::string::npos ? msg : msg.substr(cut + 2)];
      ++unsupported_count;
      continue;
    }
    EXPECT_TRUE(round_trips(*r));
    onnx::ModelProto original;
    EXPECT_TRUE(original.ParseFromString(read_bytes(dir / "model.onnx")));
    EXPECT_EQ(summarize(original.graph()), summarize(r->graph));
    const auto& og = original.graph();
    EXPECT_EQ(static_cast<int>(r->graph.initializers.size()), og.initializer_size());
    for (int i = 0; i < og.initializer_size() && i < static_cast<int>(r->graph.initializers.size());
         ++i) {
      const ir::Value& v = r->graph.value(r->graph.initializers[static_cast<size_t>(i)]);
      EXPECT_EQ(v.name, og.initializer(i).name());
      if (og.initializer(i).has_raw_data()) {
        EXPECT_EQ(v.constant->nbytes(), og.initializer(i).raw_data().size());
        if (v.constant->nbytes() == og.initializer(i).raw_data().size()) {
          EXPECT_EQ(std::memcmp(v.constant->raw_data(), og.initializer(i).raw_data().data(),
                                v.constant->nbytes()),
                    0);
        }
      }
    }
    EXPECT_EQ(r->graph.inputs.size() + r->graph.initializer_inputs.size(),
              static_cast<size_t>(og.input_size()));
    EXPECT_EQ(r->graph.outputs.size(), static_cast<size_t>(og.output_size()));
    ++ok;
  }
  std::cout << "[          ] " << folder.filename().string() << ": " << ok << " round-tripped, "
            << unsupported_count << " unsupported\n";
  for (const auto& [reason, n] : reasons)
    std::cout << "[          ]   " << n << " x " << reason << "\n";
  return {ok, unsupported_count};
}

TEST(OnnxIoTestData, EveryNodeTestModelRoundTrips) {
  if (!fs::exists(kTestData / "node")) GTEST_SKIP() << "libonnx-testdata is not installed";
  auto [ok, unsupported_count] = round_trip_folder(kTestData / "node");
  EXPECT_GT(ok, 800);
  EXPECT_LT(unsupported_count, 40);
}

TEST(OnnxIoTestData, OtherTestModelsRoundTrip) {
  for (const char* sub : {"pytorch-converted", "pytorch-operator", "simple"}) {
    if (!fs::exists(kTestData / sub)) GTEST_SKIP() << "libonnx-testdata is not installed";
    auto [ok, unsupported_count] = round_trip_folder(kTestData / sub);
    EXPECT_GT(ok, 0);
  }
}

// Every input_N.pb / output_N.pb parses; where the model imported, each matches the
// declared element type and (when static) shape of its graph input or output.
TEST(OnnxIoTestData, EveryTestDataTensorParses) {
  const fs::path node = kTestData / "node";
  if (!fs::exists(node)) GTEST_SKIP() << "libonnx-testdata is not installed";
  int parsed = 0, rejected = 0, checked = 0, string_tensors = 0, bf16_as_u16 = 0,
      shape_mismatches = 0;
  for (const auto& e : fs::directory_iterator(node)) {
    const fs::path set = e.path() / "test_data_set_0";
    if (!fs::exists(set)) continue;
    auto model = load_onnx_file((e.path() / "model.onnx").string());
    for (const auto& f : fs::directory_iterator(set)) {
      if (f.path().extension() != ".pb") continue;
      SCOPED_TRACE(f.path().string());
      const std::string bytes = read_bytes(f.path());
      std::string name;
      auto t = parse_tensor_proto(bytes.data(), bytes.size(), &name);
      if (!t) {
        // Sequence and optional test data are other protos; they may not parse as a tensor.
        // String tensors are refused by design.
        EXPECT_TRUE(clean_error(t));
        const bool strings = t.status().message().find("string tensors") != std::string::npos;
        EXPECT_TRUE(!model.is_ok() || strings)
            << "a tensor of a supported model failed: " << t.status().message();
        ++(strings ? string_tensors : rejected);
        continue;
      }
      ++parsed;
      if (!model) continue;
      const std::string stem = f.path().stem().string();
      const bool is_input = stem.rfind("input_", 0) == 0;
      const size_t k = std::stoul(stem.substr(stem.find('_') + 1));
      const std::vector<int>& list = is_input ? model->graph.inputs : model->graph.outputs;
      if (k >= list.size()) continue;
      const ir::Value& v = model->graph.value(list[k]);
      // The 1.12 test data stores bfloat16 tensors as uint16 (same bits).
      if (v.type.dtype == DataType::kBFloat16 && t->dtype() == DataType::kUInt16) {
        ++bf16_as_u16;
      } else if (v.type.dtype != DataType::kUndefined) {
        EXPECT_EQ(dtype_name(t->dtype()), std::string(dtype_name(v.type.dtype))) << v.name;
      }
      if (v.type.is_static() && t->shape() != v.type.static_shape()) {
        // Known: CastLike tests feed a [1] 'like' tensor where the model declares [3, 4].
        EXPECT_NE(f.path().string().find("castlike"), std::string::npos) << v.name;
        ++shape_mismatches;
      }
      ++checked;
    }
  }
  std::cout << "[          ] test data: " << parsed << " tensors parsed (" << checked
            << " checked against the model; " << bf16_as_u16 << " bf16 stored as u16, "
            << shape_mismatches << " shapes differing from the model), " << string_tensors
            << " string tensors and " << rejected << " non-tensor protos rejected\n";
  EXPECT_GT(parsed, 2000);
}

}  // namespace
}  // namespace brink::onnx_io
