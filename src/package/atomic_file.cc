#include "package/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace brink::package {

Status write_file_atomically(const std::string& path, const std::function<bool(std::FILE*)>& body,
                             mode_t mode) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Status(StatusCode::kIoError, path + ": cannot write: " + std::strerror(errno));
  std::FILE* f = ::fdopen(fd, "wb");
  if (f == nullptr) {
    ::close(fd);
    std::remove(tmp.c_str());
    return Status(StatusCode::kIoError, path + ": cannot write");
  }
  const bool written = body(f) && std::fflush(f) == 0 && ::fsync(fd) == 0;
  const bool closed = std::fclose(f) == 0;
  if (!written || !closed) {
    std::remove(tmp.c_str());
    return Status(StatusCode::kIoError, path + ": write failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Status(StatusCode::kIoError,
                  path + ": cannot move the finished file into place: " + std::strerror(errno));
  }
  return Status::ok();
}

}  // namespace brink::package
