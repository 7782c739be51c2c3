// brink._brink: the pybind11 extension under the `brink` Python package.
//
// The Python layer (brink/__init__.py) holds the ORT-like API; this file holds what must be
// fast or must touch C++ objects: loading a Session, turning NumPy arrays into feeds and
// outputs into NumPy arrays, and mapping Status codes onto Python exception classes.
//
// Zero copy, both ways:
//   - A feed that is a C-contiguous, aligned, native-byte-order array is passed to the
//     session as a Tensor::view of the array's buffer. The array objects are held by run()
//     until the session has returned, so the view cannot outlive them; nothing else keeps a
//     reference to a feed (an output that aliases a feed is copied, see below).
//   - An output becomes a NumPy array over the Tensor's own storage: the Tensor is moved to
//     the heap and owned by a capsule that is the array's base, so the storage lives exactly
//     as long as the array. Outputs that share storage with something the caller could see
//     change - a feed, a constant of the model, another output of the same run - are copied
//     instead, so every returned array is writable and independent, as ORT's are.
//
// The GIL is released while a model loads and while it runs, so several Python threads can
// run one session at once (Session::run is safe to call concurrently).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "brink/dtype.h"
#include "brink/session.h"
#include "brink/status.h"
#include "brink/tensor.h"
#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "ir/graph.h"
#include "onnx/onnx_io.h"
#include "package/package.h"
#include "runtime/compiled_model.h"

#ifndef BRINK_VERSION
#define BRINK_VERSION "0.0.0"
#endif

namespace py = pybind11;

namespace brink::python {
namespace {

// ---------------------------------------------------------------------------------------
// Errors: one Python class per StatusCode, all under brink.BrinkError.

constexpr int kNumCodes = static_cast<int>(StatusCode::kInternal) + 1;
std::array<PyObject*, kNumCodes> g_error_types{};  // created once, never freed

class StatusError : public std::exception {
 public:
  explicit StatusError(Status status) : status_(std::move(status)) {}
  const Status& status() const { return status_; }
  const char* what() const noexcept override { return status_.message().c_str(); }

 private:
  Status status_;
};

[[noreturn]] void throw_status(const Status& status) {
  throw StatusError(status);
}

// The CLI prints a Status as one line (tools/brink/cli_common.cc, report_error); the
// exception text is that line without its "error: " prefix.
std::string one_line(const std::string& message) {
  std::string m = message;
  for (char& c : m)
    if (c == '\n' || c == '\r') c = ' ';
  return m;
}

PyObject* error_type_for(StatusCode code) {
  const int k = static_cast<int>(code);
  if (k > 0 && k < kNumCodes && g_error_types[static_cast<size_t>(k)])
    return g_error_types[static_cast<size_t>(k)];
  return g_error_types[static_cast<size_t>(StatusCode::kInternal)];
}

void create_error_types(py::module_& m) {
  struct Spec {
    StatusCode code;
    const char* name;
    PyObject* extra_base;  // a builtin that fits, so `except ValueError` works too
    const char* doc;
  };
  PyObject* base = PyErr_NewExceptionWithDoc(
      "brink.BrinkError",
      "Base class of every error Brink raises. str(e) is the message the brink CLI prints "
      "after 'error: '; e.code names the kind (a brink::StatusCode name).",
      PyExc_RuntimeError, nullptr);
  if (!base) throw py::error_already_set();
  PyObject_SetAttrString(base, "code", py::str("Internal").ptr());
  m.add_object("BrinkError", py::handle(base));
  const Spec specs[] = {
      {StatusCode::kInvalidArgument, "InvalidArgument", PyExc_ValueError,
       "A wrong argument or feed: unknown or missing input, wrong shape or element type."},
      {StatusCode::kInvalidModel, "InvalidModel", nullptr,
       "The model is malformed or inconsistent (not ONNX, truncated, broken graph)."},
      {StatusCode::kUnsupported, "Unsupported", nullptr,
       "A well-formed model Brink cannot run: an operator, element type or opset it lacks."},
      {StatusCode::kNotFound, "NotFound", nullptr, "A file or a named thing does not exist."},
      {StatusCode::kIoError, "IoError", nullptr, "Reading or writing a file failed."},
      {StatusCode::kInternal, "Internal", nullptr, "A bug in Brink; please report it."},
  };
  for (const Spec& s : specs) {
    PyObject* bases = s.extra_base ? PyTuple_Pack(2, base, s.extra_base) : PyTuple_Pack(1, base);
    if (!bases) throw py::error_already_set();
    const std::string qualified = std::string("brink.") + s.name;
    PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), s.doc, bases, nullptr);
    Py_DECREF(bases);
    if (!type) throw py::error_already_set();
    PyObject_SetAttrString(type, "code", py::str(s.name).ptr());
    g_error_types[static_cast<size_t>(s.code)] = type;
    m.add_object(s.name, py::handle(type));
  }
}

// ---------------------------------------------------------------------------------------
// Element types

// NumPy dtypes by ONNX code, made once (building a dtype per call costs microseconds).
std::array<PyObject*, 17> g_numpy_dtypes{};

void create_numpy_dtypes() {
  const std::pair<DataType, const char*> table[] = {
      {DataType::kFloat32, "float32"}, {DataType::kUInt8, "uint8"},
      {DataType::kInt8, "int8"},       {DataType::kUInt16, "uint16"},
      {DataType::kInt16, "int16"},     {DataType::kInt32, "int32"},
      {DataType::kInt64, "int64"},     {DataType::kBool, "bool"},
      {DataType::kFloat16, "float16"}, {DataType::kFloat64, "float64"},
      {DataType::kUInt32, "uint32"},   {DataType::kUInt64, "uint64"},
  };
  for (const auto& [dt, name] : table)
    g_numpy_dtypes[static_cast<size_t>(dt)] = py::dtype(name).release().ptr();
}

py::dtype numpy_dtype(DataType dt) {
  const auto k = static_cast<size_t>(dt);
  if (k < g_numpy_dtypes.size() && g_numpy_dtypes[k])
    return py::reinterpret_borrow<py::dtype>(g_numpy_dtypes[k]);
  throw_status(
      unsupported(std::string("element type ") + dtype_long_name(dt) + " has no NumPy equivalent"));
}

std::optional<DataType> brink_dtype(const py::dtype& dt) {
  const size_t size = static_cast<size_t>(dt.itemsize());
  switch (dt.kind()) {
    case 'f':
      if (size == 2) return DataType::kFloat16;
      if (size == 4) return DataType::kFloat32;
      if (size == 8) return DataType::kFloat64;
      break;
    case 'i':
      if (size == 1) return DataType::kInt8;
      if (size == 2) return DataType::kInt16;
      if (size == 4) return DataType::kInt32;
      if (size == 8) return DataType::kInt64;
      break;
    case 'u':
      if (size == 1) return DataType::kUInt8;
      if (size == 2) return DataType::kUInt16;
      if (size == 4) return DataType::kUInt32;
      if (size == 8) return DataType::kUInt64;
      break;
    case 'b':
      if (size == 1) return DataType::kBool;
      break;
    default:
      break;
  }
  return std::nullopt;
}

// ORT's type string for a NodeArg: "tensor(float)", "tensor(int64)", ...
std::string ort_type_string(DataType dt) {
  switch (dt) {
    case DataType::kFloat32:
      return "tensor(float)";
    case DataType::kFloat64:
      return "tensor(double)";
    case DataType::kFloat16:
      return "tensor(float16)";
    case DataType::kBFloat16:
      return "tensor(bfloat16)";
    case DataType::kString:
      return "tensor(string)";
    case DataType::kUndefined:
      return "tensor(undefined)";
    default:
      return std::string("tensor(") + dtype_long_name(dt) + ")";
  }
}

// ---------------------------------------------------------------------------------------
// Feeds

struct Feed {
  py::array array;  // keeps the buffer alive while the session runs
  Tensor tensor;    // a view of array's buffer
};

constexpr int kAlignedFlag = py::detail::npy_api::NPY_ARRAY_ALIGNED_;

// The array `value` as a Brink feed, without a copy when its layout allows it.
Feed make_feed(const std::string& name, const py::handle& value) {
  Feed feed;
  if (py::isinstance<py::array>(value)) {
    feed.array = py::reinterpret_borrow<py::array>(value);
  } else {
    feed.array = py::array::ensure(value);  // lists, scalars, buffers: NumPy decides the dtype
    if (!feed.array)
      throw_status(invalid_argument(
          "input '" + name + "': a " +
          std::string(py::str(py::type::handle_of(value).attr("__name__"))) + " is not an array"));
  }
  py::dtype dt = feed.array.dtype();
  const std::optional<DataType> brink_dt = brink_dtype(dt);
  if (!brink_dt)
    throw_status(invalid_argument("input '" + name + "' has NumPy dtype " +
                                  std::string(py::str(dt)) + ", which Brink does not support"));
  const int flags = feed.array.flags();
  const bool native = dt.attr("isnative").cast<bool>();
  if (!(flags & py::array::c_style) || !(flags & kAlignedFlag) || !native) {
    // One copy into a fresh C-ordered, aligned, native-order array of the same type.
    feed.array = py::reinterpret_borrow<py::array>(py::module_::import("numpy").attr("array")(
        feed.array, numpy_dtype(*brink_dt), py::arg("copy") = true, py::arg("order") = "C"));
  }
  Shape shape(static_cast<size_t>(feed.array.ndim()));
  for (size_t d = 0; d < shape.size(); ++d)
    shape[d] = static_cast<int64_t>(feed.array.shape(static_cast<py::ssize_t>(d)));
  feed.tensor = Tensor::view(*brink_dt, std::move(shape), const_cast<void*>(feed.array.data()));
  return feed;
}

// ---------------------------------------------------------------------------------------
// Outputs

struct ByteRange {
  const char* begin;
  const char* end;
  bool overlaps(const ByteRange& o) const { return begin < o.end && o.begin < end; }
};

ByteRange range_of(const Tensor& t) {
  const char* p = static_cast<const char*>(t.raw_data());
  return {p, p + t.nbytes()};
}

std::vector<py::ssize_t> numpy_shape(const Tensor& t) {
  return {t.shape().begin(), t.shape().end()};
}

py::array copy_to_numpy(const Tensor& t) {
  if (t.dtype() == DataType::kBFloat16) {  // NumPy has no bfloat16: widen to float32
    py::array_t<float> out(numpy_shape(t));
    float* dst = out.mutable_data();
    const BFloat16* src = t.data<BFloat16>();
    for (int64_t i = 0; i < t.numel(); ++i) dst[i] = static_cast<float>(src[i]);
    return out;
  }
  py::array out(numpy_dtype(t.dtype()), numpy_shape(t));
  if (t.nbytes()) std::memcpy(out.mutable_data(), t.raw_data(), t.nbytes());
  return out;
}

// Hands the tensor's storage to NumPy: the array's base is a capsule owning the Tensor.
py::array adopt_into_numpy(Tensor&& t) {
  py::dtype dt = numpy_dtype(t.dtype());
  auto holder = std::make_unique<Tensor>(std::move(t));
  void* data = holder->raw_data();
  std::vector<py::ssize_t> shape = numpy_shape(*holder);
  py::capsule owner(holder.get(), [](void* p) { delete static_cast<Tensor*>(p); });
  holder.release();  // the capsule owns it now
  return py::array(dt, std::move(shape), data, owner);
}

// ---------------------------------------------------------------------------------------
// Session

py::object dim_to_python(const TensorInfo& info, size_t d) {
  if (info.shape[d] >= 0) return py::int_(info.shape[d]);
  if (!info.dim_names[d].empty()) return py::str(info.dim_names[d]);
  return py::none();
}

// (name, ORT type string, shape or None, NumPy dtype or None) per input or output.
py::list describe(const std::vector<TensorInfo>& infos) {
  py::list out;
  for (const TensorInfo& info : infos) {
    py::object shape = py::none();
    if (info.rank_known) {
      py::list dims;
      for (size_t d = 0; d < info.shape.size(); ++d) dims.append(dim_to_python(info, d));
      shape = std::move(dims);
    }
    py::object dtype = py::none();
    const auto k = static_cast<size_t>(info.dtype);
    if (k < g_numpy_dtypes.size() && g_numpy_dtypes[k])
      dtype = py::reinterpret_borrow<py::object>(g_numpy_dtypes[k]);
    else if (info.dtype == DataType::kBFloat16)
      dtype = py::reinterpret_borrow<py::object>(
          g_numpy_dtypes[static_cast<size_t>(DataType::kFloat32)]);
    out.append(py::make_tuple(info.name, ort_type_string(info.dtype), shape, dtype));
  }
  return out;
}

class PySession {
 public:
  PySession(std::unique_ptr<Session> session, int num_threads)
      : session_(std::move(session)), num_threads_(num_threads) {
    const auto& outs = session_->outputs();
    for (size_t k = 0; k < outs.size(); ++k) output_index_.emplace(outs[k].name, k);
    // Graph outputs that are constants (initializers, folded values) come back sharing the
    // model's storage; they are copied so that writing to a result cannot change the model.
    const ir::Graph& g = session_->compiled().model().graph;
    output_is_constant_.assign(outs.size(), false);
    for (size_t k = 0; k < g.outputs.size() && k < outs.size(); ++k)
      output_is_constant_[k] = g.value(g.outputs[k]).constant.has_value();
  }

  static std::unique_ptr<PySession> load(const py::object& model, int threads,
                                         const std::vector<std::pair<std::string, int64_t>>& dims,
                                         const std::string& pubkey, const std::string& key,
                                         const std::string& int8_kernels) {
    if (threads < 0)
      throw_status(invalid_argument("threads must be >= 0 (0 picks the number of cores), got " +
                                    std::to_string(threads)));
    Result<Int8Kernels> int8 = parse_int8_kernels(int8_kernels);
    if (!int8) throw_status(int8.status());
    SessionOptions options;
    options.int8_kernels = *int8;
    options.num_threads = threads;
    options.dim_values = dims;
    options.package_public_key = pubkey;
    options.package_key = key;
    Result<std::unique_ptr<Session>> session = internal_error("no model");
    if (py::isinstance<py::bytes>(model) || py::isinstance<py::bytearray>(model) ||
        py::isinstance<py::memoryview>(model)) {
      const py::buffer_info buf = py::reinterpret_borrow<py::buffer>(model).request();
      const std::string bytes(static_cast<const char*>(buf.ptr),
                              static_cast<size_t>(buf.size * buf.itemsize));
      py::gil_scoped_release release;
      auto parsed = onnx_io::parse_onnx_bytes(bytes.data(), bytes.size());
      session = parsed ? Session::from_model(std::move(parsed).value(), options) : parsed.status();
    } else {
      const std::string path = py::str(py::module_::import("os").attr("fspath")(model));
      py::gil_scoped_release release;
      session = Session::load(path, options);
    }
    if (!session) throw_status(session.status());
    return std::make_unique<PySession>(std::move(session).value(),
                                       threads ? threads : ThreadPool::default_num_threads());
  }

  py::list inputs() const { return describe(session_->inputs()); }
  py::list outputs() const { return describe(session_->outputs()); }
  int num_threads() const { return num_threads_; }

  py::dict info() const {
    const CompiledModel& c = session_->compiled();
    int64_t macs = 0, flops = 0;
    for (const LayerInfo& l : c.layers()) macs += l.macs, flops += l.flops;
    py::dict d;
    d["macs"] = macs;
    d["flops"] = flops;
    d["arena_bytes"] = c.arena_bytes() ? py::object(py::int_(*c.arena_bytes())) : py::none();
    d["parameter_count"] = c.parameter_count();
    d["parameter_bytes"] = c.parameter_bytes();
    d["folded_nodes"] = c.folded_nodes();
    d["layers"] = c.layers().size();
    d["opset"] = c.model().opset("");
    return d;
  }

  py::list run(const py::object& output_names, const py::object& feeds_obj) {
    // Which outputs, in the order asked for (all, in model order, for None or []).
    std::vector<size_t> wanted;
    if (!output_names.is_none()) {
      if (py::isinstance<py::str>(output_names))
        throw_status(invalid_argument("output_names must be a list of names or None, not a str"));
      for (const py::handle& n : output_names) {
        if (!py::isinstance<py::str>(n))
          throw_status(
              invalid_argument("output_names must hold str, got " +
                               std::string(py::str(py::type::handle_of(n).attr("__name__")))));
        const std::string name = n.cast<std::string>();
        auto it = output_index_.find(name);
        if (it == output_index_.end()) throw_status(invalid_argument(unknown_output(name)));
        wanted.push_back(it->second);
      }
    }
    if (wanted.empty())
      for (size_t k = 0; k < session_->outputs().size(); ++k) wanted.push_back(k);

    py::object items = py::isinstance<py::dict>(feeds_obj)
                           ? py::reinterpret_borrow<py::dict>(feeds_obj).attr("items")()
                           : feeds_obj.attr("items")();
    std::vector<Feed> feeds;
    std::vector<NamedTensor> named;
    for (const py::handle& item : items) {
      const py::tuple kv = py::reinterpret_borrow<py::tuple>(item);
      if (!py::isinstance<py::str>(kv[0]))
        throw_status(invalid_argument("feed names must be str, got " +
                                      std::string(py::str(py::repr(kv[0])))));
      std::string name = kv[0].cast<std::string>();
      feeds.push_back(make_feed(name, kv[1]));
      named.emplace_back(std::move(name), feeds.back().tensor);
    }

    std::optional<Result<std::vector<Tensor>>> result;
    {
      py::gil_scoped_release release;
      result.emplace(session_->run(named));
    }
    if (!*result) throw_status(result->status());
    std::vector<Tensor>& outs = result->value();

    std::vector<ByteRange> taken;  // feeds, then outputs handed to NumPy so far
    for (const Feed& f : feeds) taken.push_back(range_of(f.tensor));
    py::list out;
    for (size_t k : wanted) {
      Tensor& t = outs[k];
      const ByteRange r = range_of(t);
      bool shared = output_is_constant_[k] || t.numel() == 0 || t.dtype() == DataType::kBFloat16;
      for (size_t i = 0; i < taken.size() && !shared; ++i) shared = r.overlaps(taken[i]);
      if (shared) {
        out.append(copy_to_numpy(t));
      } else {
        taken.push_back(r);
        out.append(adopt_into_numpy(std::move(t)));
      }
    }
    return out;
  }

 private:
  std::string unknown_output(const std::string& name) const {
    std::string names;
    for (const TensorInfo& o : session_->outputs())
      names += (names.empty() ? "'" : ", '") + o.name + "'";
    return "unknown output '" + name + "' (the model's outputs are " + names + ")";
  }

  std::unique_ptr<Session> session_;
  int num_threads_;
  std::unordered_map<std::string, size_t> output_index_;
  std::vector<bool> output_is_constant_;
};

// For tests: the address a feed made from `value` would hand the session, and whether it
// points into `value`'s own buffer (no copy).
py::tuple feed_address(const py::object& value) {
  Feed f = make_feed("x", value);
  const auto addr = reinterpret_cast<uintptr_t>(f.tensor.raw_data());
  const bool same = py::isinstance<py::array>(value) && f.array.ptr() == value.ptr();
  return py::make_tuple(addr, same);
}

// brink.pack: what `brink pack` does (src/package/package.h); the arguments were checked in
// __init__.py.
py::dict pack_model(const std::string& model_path, const std::string& out,
                    const std::string& target, const std::string& sign, const std::string& encrypt,
                    const std::string& name, const std::string& version,
                    const std::string& meta_json, const std::vector<std::string>& labels,
                    int64_t chunk_bytes, bool prepack,
                    const std::vector<std::pair<std::string, int64_t>>& dims,
                    const std::vector<std::string>& fallback, const std::string& int8_kernels) {
  Result<Int8Kernels> int8 = parse_int8_kernels(int8_kernels);
  if (!int8) throw_status(int8.status());
  package::PackOptions po;
  po.target = target;
  po.fallback_targets = fallback;
  po.session.int8_kernels = *int8;
  po.chunk_size = static_cast<size_t>(chunk_bytes);
  po.name = name;
  po.version = version;
  po.meta_json = meta_json;
  po.labels = labels;
  po.prepack = prepack;
  po.session.dim_values = dims;
  po.created_by = "brink (python)";
  Result<package::PackSummary> summary = internal_error("not packed");
  {
    py::gil_scoped_release release;
    if (!sign.empty()) {
      auto key = package::load_secret_key(sign);
      if (!key) throw_status(key.status());
      po.signing_key = *key;
    }
    if (!encrypt.empty()) {
      auto key = package::load_encryption_key(encrypt);
      if (!key) throw_status(key.status());
      po.encryption_key = *key;
    }
    auto model = onnx_io::load_onnx_file(model_path);
    summary = model ? package::write_package(std::move(model).value(), po, out) : model.status();
  }
  if (!summary) throw_status(summary.status().with_context(model_path));
  py::dict d;
  d["file_bytes"] = summary->file_bytes;
  d["graph_bytes"] = summary->graph_bytes;
  d["weight_bytes"] = summary->weight_bytes;
  d["chunks"] = summary->chunks;
  d["arena_bytes"] =
      summary->arena_bytes ? py::object(py::int_(*summary->arena_bytes)) : py::none();
  d["signer"] = summary->signer_key_id;
  d["prepacked_nodes"] = summary->prepacked_nodes;
  d["elided_bytes"] = summary->elided_bytes;
  d["fallback_targets"] = fallback;
  d["fallback_bytes"] = summary->fallback_bytes;
  return d;
}

// brink.verify: every check the loader makes (target aside); the package's card.
py::dict verify_package(const std::string& path, const std::string& pubkey,
                        const std::string& key) {
  package::VerifyOptions vo;
  vo.check_target = false;
  Result<std::unique_ptr<package::Package>> pkg = internal_error("not opened");
  {
    py::gil_scoped_release release;
    if (!pubkey.empty()) {
      auto k = package::load_public_key(pubkey);
      if (!k) throw_status(k.status());
      vo.trusted_key = *k;
    }
    if (!key.empty()) {
      auto k = package::load_encryption_key(key);
      if (!k) throw_status(k.status());
      vo.decryption_key = *k;
    }
    pkg = package::open_package(path, vo);
  }
  if (!pkg) throw_status(pkg.status());
  const package::PackageInfo& info = (*pkg)->info();
  py::dict d;
  d["format"] = std::to_string(info.format_major) + "." + std::to_string(info.format_minor);
  d["name"] = info.name;
  d["version"] = info.version;
  d["target"] = info.target;
  d["targets"] = info.targets;  // the primary, then its fallbacks
  // Whether this machine runs one of them, and which a load here would use.
  Result<std::string> here = package::choose_target(info.targets, "");
  d["runs_here"] = here.is_ok();
  d["target_here"] = here ? py::object(py::str(*here)) : py::none();
  d["created_by"] = info.created_by;
  d["file_bytes"] = info.file_bytes;
  d["parameter_bytes"] = info.parameter_bytes;
  d["arena_bytes"] = info.arena_bytes ? py::object(py::int_(*info.arena_bytes)) : py::none();
  d["signer"] = info.signer_key_id;
  d["signer_trusted"] = info.signer_trusted;
  d["encrypted"] = info.encrypted;
  d["prepacked_nodes"] = info.prepacked_nodes;
  d["chunks"] = info.chunks.size();
  d["labels"] = info.labels;
  d["meta_json"] = info.meta_json;
  return d;
}

py::dict cpu_info() {
  const CpuFeatures& f = cpu_features();
  py::dict d;
  d["brand"] = f.brand;
  d["logical_cores"] = f.logical_cores;
  d["physical_cores"] = f.physical_cores;
  py::dict flags;
  flags["avx2"] = f.avx2;
  flags["fma"] = f.fma;
  flags["f16c"] = f.f16c;
  flags["avx512f"] = f.avx512f;
  flags["avx512bw"] = f.avx512bw;
  flags["avx512vl"] = f.avx512vl;
  flags["avx512dq"] = f.avx512dq;
  flags["avx512vnni"] = f.avx512vnni;
  flags["avx_vnni"] = f.avx_vnni;
  flags["neon"] = f.neon;
  flags["neon_dotprod"] = f.neon_dotprod;
  d["features"] = flags;
  d["best_isa"] = isa_name(best_isa());
  return d;
}

py::list available_isas() {
  py::list out;
  for (Isa isa : supported_isas()) out.append(isa_name(isa));
  return out;
}

}  // namespace
}  // namespace brink::python

PYBIND11_MODULE(_brink, m) {
  using namespace brink::python;
  m.doc() = "Brink's C++ runtime; use the `brink` package, not this module directly.";
  m.attr("__version__") = BRINK_VERSION;
  create_error_types(m);
  create_numpy_dtypes();
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const StatusError& e) {
      PyErr_SetString(error_type_for(e.status().code()), one_line(e.status().message()).c_str());
    }
  });

  py::class_<PySession>(m, "Session")
      .def(py::init(&PySession::load), py::arg("model"), py::arg("threads") = 0,
           py::arg("dim_values") = std::vector<std::pair<std::string, int64_t>>{},
           py::arg("pubkey") = std::string(), py::arg("key") = std::string(),
           py::arg("int8_kernels") = std::string("faster"))
      .def("inputs", &PySession::inputs)
      .def("outputs", &PySession::outputs)
      .def("info", &PySession::info)
      .def_property_readonly("num_threads", &PySession::num_threads)
      .def("run", &PySession::run, py::arg("output_names"), py::arg("feeds"));
  m.def("cpu_info", &cpu_info);
  m.def("pack", &pack_model);
  m.def("verify", &verify_package);
  m.def("available_isas", &available_isas);
  m.def("_feed_address", &feed_address);
}
