// The one translation unit that compiles stb_image and stb_image_write (Debian's libstb-dev,
// /usr/include/stb; found by CMakeLists.txt). Only the decoders Brink uses are built (PNG,
// JPEG, BMP: image folders for calibration, quant/image_dataset.h), each image side is
// bounded, and the writer is used for PNG only (brink quantize --plot, quant/report_plot.h).
// stb_image is not hardened against hostile files; Brink decodes the user's own data sets.
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_MAX_DIMENSIONS 16384  // kMaxSide in image_dataset.cc
#define STB_IMAGE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#define STB_IMAGE_WRITE_IMPLEMENTATION

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#include <stb_image.h>
#include <stb_image_write.h>
#pragma GCC diagnostic pop
