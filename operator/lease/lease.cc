#include "operator/lease/lease.h"

#include <cpprest/json.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "operator/util/files.h"
#include "operator/util/json.h"

namespace pgrs::lease {

namespace json = web::json;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

// An exclusive flock(2), waited for at most `patience`: a holder that was
// frozen (SIGSTOP) while it held the lock must not stall the caller (the
// control plane) for as long as it stays frozen.
class Flock {
 public:
  explicit Flock(const std::string& path, std::chrono::milliseconds patience = std::chrono::milliseconds(2000)) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) return;
    auto deadline = std::chrono::steady_clock::now() + patience;
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if ((errno != EWOULDBLOCK && errno != EINTR) || std::chrono::steady_clock::now() >= deadline) {
        if (errno == EWOULDBLOCK) errno = ETIMEDOUT;
        ::close(fd_);
        fd_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  ~Flock() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace

std::string EncodeLeaseFile(const LeaseRecord& r) {
  json::value v = json::value::object();
  v["holderIdentity"] = json::value::string(r.holder);
  v["acquireTimeMs"] = json::value::number(r.acquireTimeMs);
  v["renewTimeMs"] = json::value::number(r.renewTimeMs);
  v["leaseDurationSeconds"] = json::value::number(r.durationSeconds);
  v["leaseTransitions"] = json::value::number(r.transitions);
  return v.serialize() + "\n";
}

Result<LeaseRecord> DecodeLeaseFile(const std::string& text) {
  try {
    auto v = json::value::parse(text);
    LeaseRecord r;
    r.exists = true;
    r.holder = v.at("holderIdentity").as_string();
    auto integer = [&](const char* key, auto read) {
      auto n = read(v.at(key));
      if (!n) throw std::invalid_argument(std::string(key) + ": not an integer: " + v.at(key).serialize());
      return *n;
    };
    r.acquireTimeMs = integer("acquireTimeMs", JsonInt64);
    r.renewTimeMs = integer("renewTimeMs", JsonInt64);
    r.durationSeconds = integer("leaseDurationSeconds", JsonInt32);
    r.transitions = integer("leaseTransitions", JsonInt32);
    return r;
  } catch (const std::exception& e) {
    return Status::Internal(std::string("unreadable lease: ") + e.what());
  }
}

Result<LeaseRecord> FileLease::Read() {
  auto text = ReadFile(path_);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return LeaseRecord{};
    return text.status();
  }
  auto record = DecodeLeaseFile(*text);
  if (!record.ok()) return record.status().WithContext(path_);
  return record;
}

Status FileLease::Write(const LeaseRecord& r) { return WriteFileAtomic(path_, EncodeLeaseFile(r), 0644); }

Result<LeaseRecord> FileLease::Get() {
  // No lock: writers replace the file atomically (rename), so a read sees
  // one whole version; and a reader never waits on a frozen writer.
  return Read();
}

Result<LeaseRecord> FileLease::Renew(const std::string& holder, int durationSeconds) {
  Flock lock(path_ + ".lock");
  if (!lock.ok()) return Status::Unavailable(path_ + ".lock: " + std::strerror(errno));
  auto current = Read();
  if (!current.ok()) return current.status();
  if (!current->exists || current->holder != holder) {
    return Status::Conflict("the primary lease is held by " + (current->exists ? current->holder : "nobody"));
  }
  current->renewTimeMs = NowMs();
  current->durationSeconds = durationSeconds;
  PGRS_RETURN_IF_ERROR(Write(*current));
  return current;
}

Result<LeaseRecord> FileLease::Acquire(const std::string& holder, const std::string& expectedHolder,
                                       int durationSeconds, bool holderFenced) {
  Flock lock(path_ + ".lock");
  if (!lock.ok()) return Status::Unavailable(path_ + ".lock: " + std::strerror(errno));
  auto current = Read();
  if (!current.ok()) return current.status();
  int64_t now = NowMs();
  bool mayTake = !current->exists || current->holder == holder ||
                 (current->holder == expectedHolder && (holderFenced || current->ExpiredAt(now)));
  if (!mayTake) {
    return Status::Conflict("the primary lease is held by " + current->holder + " and has not expired");
  }
  LeaseRecord next = *current;
  if (!current->exists || current->holder != holder) {
    next.transitions = current->exists ? current->transitions + 1 : 0;
    next.acquireTimeMs = now;
  }
  next.exists = true;
  next.holder = holder;
  next.renewTimeMs = now;
  next.durationSeconds = durationSeconds;
  PGRS_RETURN_IF_ERROR(Write(next));
  return next;
}

namespace {

std::mutex openersMu;
std::map<std::string, LeaseOpener>& Openers() {
  static auto* openers = new std::map<std::string, LeaseOpener>();  // never destroyed: used until exit
  return *openers;
}

}  // namespace

void RegisterOpener(const std::string& scheme, LeaseOpener opener) {
  if (scheme == "file") return;
  std::lock_guard<std::mutex> lock(openersMu);
  Openers()[scheme] = std::move(opener);
}

Result<std::unique_ptr<PrimaryLease>> OpenLease(const std::string& location) {
  if (location.rfind("file:", 0) == 0) {
    return std::unique_ptr<PrimaryLease>(std::make_unique<FileLease>(location.substr(5)));
  }
  size_t colon = location.find(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::Invalid("unsupported lease location \"" + location + "\": expected SCHEME:...");
  }
  std::string scheme = location.substr(0, colon);
  LeaseOpener opener;
  {
    std::lock_guard<std::mutex> lock(openersMu);
    auto it = Openers().find(scheme);
    if (it != Openers().end()) opener = it->second;
  }
  if (!opener) {
    return Status::Invalid("unsupported lease location \"" + location + "\": no opener for \"" + scheme +
                           ":\" is registered in this process");
  }
  return opener(location.substr(colon + 1));
}

}  // namespace pgrs::lease
