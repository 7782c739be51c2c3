#include "quant/dataset.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include "loader/npy.h"
#include "quant/image_dataset.h"

namespace brink::quant {

namespace {

namespace fs = std::filesystem;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_data_file(const std::string& name) {
  const std::string l = lower(name);
  return ends_with(l, ".npy") || ends_with(l, ".npz");
}

// "[N, 3, 224, 224]" for the input shape with symbolic dims written by name (or "?").
std::string expected_shape(const TensorInfo& info) {
  std::string s = "[";
  for (size_t i = 0; i < info.shape.size(); ++i) {
    if (i) s += ", ";
    if (info.shape[i] >= 0) {
      s += std::to_string(info.shape[i]);
    } else {
      const std::string name = i < info.dim_names.size() ? info.dim_names[i] : "";
      s += name.empty() ? "?" : name;
    }
  }
  return s + "]";
}

// Finds the first NaN / Inf of a float tensor; -1 if none (or not a float type).
int64_t first_non_finite(const Tensor& t) {
  const int64_t n = t.numel();
  switch (t.dtype()) {
    case DataType::kFloat32: {
      const float* p = t.data<float>();
      for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(p[i])) return i;
      return -1;
    }
    case DataType::kFloat64: {
      const double* p = t.data<double>();
      for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(p[i])) return i;
      return -1;
    }
    case DataType::kFloat16:
    case DataType::kBFloat16:
      for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(t.element_as_double(i))) return i;
      return -1;
    default:
      return -1;
  }
}

// How one array splits into samples for one input.
struct Split {
  int64_t count = 1;       // samples in the array
  Shape sample_shape;      // shape of each sample
  bool keeps_dim = false;  // true: sample i is array[i:i+1] (rank kept)
};

Result<Split> plan_split(const Tensor& array, const TensorInfo& input, const std::string& where) {
  Split split;
  const Shape& a = array.shape();
  if (!input.rank_known) {  // nothing to check against: the array is one sample
    split.sample_shape = a;
    return split;
  }
  const size_t r = input.shape.size();
  auto dims_match = [&](size_t array_from, size_t input_from) {
    for (size_t i = input_from; i < r; ++i) {
      const int64_t want = input.shape[i];
      if (want >= 0 && a[array_from + i - input_from] != want) return false;
    }
    return true;
  };
  const std::string shape = expected_shape(input);
  const std::string expected = "expected " + shape + " or " +
                               (r == 0 ? std::string("[N]") : "[N, " + shape.substr(1)) +
                               " for input '" + input.name + "'";
  if (a.size() == r + 1) {
    if (!dims_match(1, 0))
      return invalid_argument(where + ": shape " + shape_to_string(a) + " does not fit; " +
                              expected);
    split.count = a[0];
    split.sample_shape.assign(a.begin() + 1, a.end());
  } else if (a.size() == r) {
    if (r >= 1 && (input.shape[0] == 1 || input.shape[0] < 0)) {
      if (!dims_match(1, 1))
        return invalid_argument(where + ": shape " + shape_to_string(a) + " does not fit; " +
                                expected);
      split.count = a[0];
      split.sample_shape = a;
      split.sample_shape[0] = 1;
      split.keeps_dim = true;
    } else {
      if (!dims_match(0, 0))
        return invalid_argument(where + ": shape " + shape_to_string(a) + " does not fit; " +
                                expected);
      split.sample_shape = a;
    }
  } else {
    return invalid_argument(where + ": rank " + std::to_string(a.size()) + " (shape " +
                            shape_to_string(a) + ") does not fit; " + expected);
  }
  if (split.count <= 0)
    return invalid_argument(where + ": holds no samples (shape " + shape_to_string(a) + ")");
  return split;
}

// Sample `i` of `array` as an owning tensor.
Tensor take_sample(const Tensor& array, const Split& split, int64_t i) {
  if (split.count == 1 && !split.keeps_dim && split.sample_shape == array.shape())
    return array.clone();
  Tensor out = Tensor::empty(array.dtype(), split.sample_shape);
  const size_t bytes = out.nbytes();
  std::memcpy(out.raw_data(),
              static_cast<const char*>(array.raw_data()) + bytes * static_cast<size_t>(i), bytes);
  return out;
}

// Adds the samples of one file (its arrays) to `dataset`, up to `limit` in all.
Status add_file_samples(const std::string& file, std::vector<std::pair<std::string, Tensor>> arrays,
                        const std::vector<TensorInfo>& inputs, int64_t limit, Dataset* dataset) {
  if (arrays.empty()) return invalid_argument("'" + file + "': holds no arrays");
  // The array for each input.
  std::vector<const Tensor*> chosen(inputs.size(), nullptr);
  std::vector<std::string> chosen_name(inputs.size());
  if (inputs.size() == 1 && arrays.size() == 1) {
    chosen[0] = &arrays[0].second;
    chosen_name[0] = arrays[0].first;
  } else {
    for (size_t k = 0; k < inputs.size(); ++k) {
      for (const auto& [name, t] : arrays)
        if (name == inputs[k].name) {
          chosen[k] = &t;
          chosen_name[k] = name;
        }
      if (!chosen[k]) {
        std::string have;
        for (const auto& [name, t] : arrays)
          have += (have.empty() ? "" : ", ") + ("'" + name + "'");
        return invalid_argument("'" + file + "': no array named '" + inputs[k].name +
                                "' (one per model input expected; the file has " + have + ")");
      }
    }
  }
  std::vector<Split> splits(inputs.size());
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& t = *chosen[k];
    const std::string where =
        "'" + file + "'" + (chosen_name[k].empty() ? "" : " array '" + chosen_name[k] + "'");
    if (inputs[k].dtype != DataType::kUndefined && t.dtype() != inputs[k].dtype)
      return invalid_argument(where + ": dtype " + dtype_long_name(t.dtype()) + ", expected " +
                              dtype_long_name(inputs[k].dtype) + " for input '" + inputs[k].name +
                              "'");
    BRINK_ASSIGN_OR_RETURN(splits[k], plan_split(t, inputs[k], where));
    if (k > 0 && splits[k].count != splits[0].count)
      return invalid_argument("'" + file + "': " + std::to_string(splits[k].count) +
                              " samples for input '" + inputs[k].name + "' but " +
                              std::to_string(splits[0].count) + " for input '" + inputs[0].name +
                              "'; every input needs the same sample count");
    const int64_t bad = first_non_finite(t);
    if (bad >= 0)
      return invalid_argument(where + ": non-finite value " +
                              std::to_string(t.element_as_double(bad)) + " at flat index " +
                              std::to_string(bad) +
                              "; calibration and evaluation data must be finite");
  }
  for (int64_t i = 0; i < splits[0].count; ++i) {
    if (limit >= 0 && static_cast<int64_t>(dataset->samples.size()) >= limit) break;
    std::vector<NamedTensor> feed;
    for (size_t k = 0; k < inputs.size(); ++k)
      feed.emplace_back(inputs[k].name, take_sample(*chosen[k], splits[k], i));
    dataset->samples.push_back(std::move(feed));
  }
  return Status::ok();
}

Result<std::vector<std::pair<std::string, Tensor>>> read_arrays(const std::string& file) {
  if (ends_with(lower(file), ".npz")) return npy::read_npz(file);
  BRINK_ASSIGN_OR_RETURN(Tensor t, npy::read_npy(file));
  std::vector<std::pair<std::string, Tensor>> arrays;
  arrays.emplace_back("", std::move(t));
  return arrays;
}

}  // namespace

Result<Dataset> load_dataset(const std::string& path, const std::vector<TensorInfo>& model_inputs,
                             int64_t max_samples, const std::string& preprocess) {
  if (model_inputs.empty()) return invalid_argument("the model has no inputs to feed data to");
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return not_found("data '" + path + "': no such file or folder");
  std::vector<std::string> files, images;
  if (fs::is_directory(st)) {
    for (const auto& entry : fs::directory_iterator(path, ec)) {
      const std::string name = entry.path().filename().string();
      if (!entry.is_regular_file(ec)) continue;
      if (is_data_file(name)) files.push_back(entry.path().string());
      if (is_image_file(name)) images.push_back(entry.path().string());
    }
    if (ec) return io_error("data folder '" + path + "': cannot list it: " + ec.message());
    if (!files.empty() && !images.empty())
      return invalid_argument("data folder '" + path +
                              "' holds both .npy/.npz files and images; keep one kind");
    if (files.empty() && images.empty())
      return invalid_argument("data folder '" + path +
                              "' holds no .npy or .npz files and no images (.png, .jpg, .bmp)");
    std::sort(files.begin(), files.end());
    std::sort(images.begin(), images.end());
  } else if (is_image_file(path)) {
    images.push_back(path);
  } else {
    if (!is_data_file(path))
      return invalid_argument("data '" + path +
                              "': expected an .npy or .npz file, an image, or a folder of them");
    files.push_back(path);
  }
  if (!images.empty()) {
    const std::string folder = fs::is_directory(st) ? path : fs::path(path).parent_path().string();
    if (preprocess.empty() && !fs::is_directory(st))
      return invalid_argument("image '" + path +
                              "' needs a preprocessing spec: --preprocess SPEC.json");
    return load_image_dataset(folder.empty() ? "." : folder, images, preprocess, model_inputs,
                              max_samples);
  }
  if (!preprocess.empty())
    return invalid_argument("--preprocess '" + preprocess + "' applies to images, but data '" +
                            path + "' holds .npy/.npz arrays");
  Dataset dataset;
  int64_t files_read = 0;
  for (const std::string& file : files) {
    if (max_samples >= 0 && static_cast<int64_t>(dataset.samples.size()) >= max_samples) break;
    if (ends_with(lower(file), ".npy") && model_inputs.size() > 1)
      return invalid_argument("'" + file + "': an .npy holds one array but the model has " +
                              std::to_string(model_inputs.size()) +
                              " inputs; use an .npz with one array per input");
    BRINK_ASSIGN_OR_RETURN(auto arrays, read_arrays(file));
    BRINK_RETURN_IF_ERROR(
        add_file_samples(file, std::move(arrays), model_inputs, max_samples, &dataset));
    ++files_read;
  }
  if (dataset.samples.empty()) return invalid_argument("data '" + path + "' holds no samples");
  dataset.description = std::to_string(dataset.samples.size()) + " samples from " +
                        (files.size() == 1 && !fs::is_directory(st)
                             ? "'" + path + "'"
                             : std::to_string(files_read) + " files in '" + path + "'");
  return dataset;
}

std::vector<TensorInfo> model_input_infos(const ir::Model& model) {
  std::vector<TensorInfo> infos;
  for (int v : model.graph.inputs) {
    const ir::Value& value = model.graph.value(v);
    TensorInfo info;
    info.name = value.name;
    info.dtype = value.type.dtype;
    info.rank_known = value.type.dims.has_value();
    if (value.type.dims)
      for (const ir::Dim& d : *value.type.dims) {
        info.shape.push_back(d.known() ? d.value : -1);
        info.dim_names.push_back(d.known() ? "" : d.param);
      }
    infos.push_back(std::move(info));
  }
  return infos;
}

Result<std::vector<int64_t>> load_labels(const std::string& path) {
  std::vector<int64_t> labels;
  const bool is_txt = path.size() >= 4 && path.compare(path.size() - 4, 4, ".txt") == 0;
  if (is_txt) {
    std::ifstream f(path);
    if (!f) return io_error(path + ": cannot open the labels file");
    std::string line;
    int64_t line_no = 0;
    while (std::getline(f, line)) {
      ++line_no;
      std::istringstream in(line);
      std::string word;
      while (in >> word) {
        size_t used = 0;
        long long v = 0;
        try {
          v = std::stoll(word, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used != word.size())
          return invalid_argument(path + ": line " + std::to_string(line_no) + ": '" + word +
                                  "' is not an integer label");
        labels.push_back(v);
      }
    }
  } else {
    BRINK_ASSIGN_OR_RETURN(Tensor t, npy::read_npy(path));
    if (!dtype_is_integer(t.dtype()))
      return invalid_argument(path + ": labels must be integers, found " +
                              std::string(dtype_long_name(t.dtype())));
    for (int64_t i = 0; i < t.numel(); ++i) labels.push_back(t.element_as_int64(i));
  }
  if (labels.empty()) return invalid_argument(path + ": no labels");
  return labels;
}

}  // namespace brink::quant
