// Datasets for calibration (brink quantize) and evaluation (brink eval): NumPy files turned into
// complete feeds, checked against the model's inputs before anything runs.
//
// A dataset is a list of samples; each sample is one feed: every model input, by name. The data
// comes from NumPy files (loader/npy.h):
//   - an .npz with one array per model input, named like the input (for a single-input model
//     any single array is accepted, whatever its name);
//   - an .npy (single-input models only);
//   - a folder of .npy / .npz files, read in name order, each holding one sample or a batch.
// or from images: a folder of PNG / JPEG / BMP files (or one image) with a preprocessing spec
// (quant/image_dataset.h), one sample each.
// How an array splits into samples, for an input of rank r:
//   - array rank r + 1: the first dim is the sample count N; each sample is array[i];
//   - array rank r and the input's first (batch) dim is 1 or symbolic: N = the array's first
//     dim, each sample is array[i : i + 1] (a batch of 1);
//   - array rank r otherwise (a fixed batch > 1, or a rank-0 input): the array is one sample.
// Every check (dtype, shape against the known dims, the same N for every input of a file,
// NaN / Inf in float data, an empty folder) fails with one line naming the file, the array and
// what was expected. Samples are copies, so the files' buffers are released as reading goes on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "brink/session.h"
#include "brink/status.h"
#include "brink/tensor.h"
#include "ir/graph.h"

namespace brink::quant {

// Samples for calibration and evaluation: each sample is one complete feed (every model input,
// by name, in model_inputs order).
struct Dataset {
  std::vector<std::vector<NamedTensor>> samples;
  std::string description;  // "64 samples from 3 files in 'calib/'"
};

// path: an .npz with one array per model input named like the input (a single array of any
// name is accepted for a single-input model), an .npy (single-input models), or a folder of
// .npy / .npz files (one sample or batch each, sorted by name). See the file comment for how
// arrays split into samples. A folder of images (or one image) goes through the preprocessing
// spec `preprocess` (a JSON file; empty: the folder's preprocess.json), see image_dataset.h.
// max_samples < 0: all; otherwise reading stops after that many.
Result<Dataset> load_dataset(const std::string& path, const std::vector<TensorInfo>& model_inputs,
                             int64_t max_samples = -1, const std::string& preprocess = "");

// Class labels, one per prediction row (brink eval --labels, brink quantize --labels): an .npy
// of integers (any shape, flattened) or a .txt of whitespace-separated integers. A word that is
// not an integer fails with its line number; no labels at all is an error too.
Result<std::vector<int64_t>> load_labels(const std::string& path);

// The inputs of an imported model as load_dataset wants them (symbolic dims -1, with names).
std::vector<TensorInfo> model_input_infos(const ir::Model& model);

}  // namespace brink::quant
