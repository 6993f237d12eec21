#include "e2e/local/workload.h"

#include <libpq-fe.h>

#include <algorithm>
#include <map>

namespace pgrs::e2e {

using namespace std::chrono_literals;

Writer::Writer(std::string conninfo, std::string table)
    : conninfo_([conninfo] { return conninfo; }), table_(std::move(table)) {}

Writer::Writer(std::function<std::string()> conninfo, std::string table)
    : conninfo_(std::move(conninfo)), table_(std::move(table)) {}

Writer::~Writer() { Stop(); }

void Writer::Start() { thread_ = std::thread([this] { Loop(); }); }

void Writer::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Writer::Loop() {
  PGconn* conn = nullptr;
  int64_t next = 1;
  while (!stop_) {
    auto started = std::chrono::steady_clock::now();
    if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) {
      if (conn != nullptr) PQfinish(conn);
      conn = PQconnectdb((conninfo_() + " connect_timeout=2").c_str());
      if (PQstatus(conn) != CONNECTION_OK) {
        PQfinish(conn);
        conn = nullptr;
        std::this_thread::sleep_for(20ms);
        continue;
      }
    }
    std::string id = std::to_string(next);
    const char* values[] = {id.c_str()};
    PGresult* res = PQexecParams(conn, ("INSERT INTO " + table_ + " (id) VALUES ($1::bigint)").c_str(), 1, nullptr,
                                 values, nullptr, nullptr, 0);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (ok) {
      std::lock_guard<std::mutex> lock(mu_);
      acks_.push_back({next, std::chrono::steady_clock::now()});
      next++;
    } else {
      // Not acknowledged: the next attempt uses a new number, so a row that
      // committed without an answer never counts as acknowledged.
      next++;
      PQfinish(conn);
      conn = nullptr;
    }
    auto elapsed = std::chrono::steady_clock::now() - started;
    if (elapsed < 20ms) std::this_thread::sleep_for(20ms - elapsed);
  }
  if (conn != nullptr) PQfinish(conn);
}

std::vector<Writer::Ack> Writer::Acknowledged() const {
  std::lock_guard<std::mutex> lock(mu_);
  return acks_;
}

size_t Writer::AcknowledgedCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return acks_.size();
}

double Writer::LongestGapAround(std::chrono::steady_clock::time_point after) const {
  std::lock_guard<std::mutex> lock(mu_);
  double longest = 0;
  for (size_t i = 1; i < acks_.size(); ++i) {
    if (acks_[i].at < after) continue;
    if (acks_[i - 1].at > after + 120s) break;
    longest = std::max(longest, std::chrono::duration<double>(acks_[i].at - acks_[i - 1].at).count());
  }
  return longest;
}

bool Writer::WaitForMoreAcks(size_t n, std::chrono::milliseconds timeout) const {
  size_t target = AcknowledgedCount() + n;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (AcknowledgedCount() >= target) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

PrimaryWatcher::PrimaryWatcher(std::vector<int> ports, std::string password) : password_(std::move(password)) {
  for (int port : ports) endpoints_.emplace_back("127.0.0.1", port);
}

PrimaryWatcher::PrimaryWatcher(std::vector<std::string> endpoints, std::string password)
    : password_(std::move(password)) {
  for (const auto& e : endpoints) {
    auto colon = e.rfind(':');
    endpoints_.emplace_back(e.substr(0, colon), std::stoi(e.substr(colon + 1)));
  }
}

PrimaryWatcher::~PrimaryWatcher() { Stop(); }

void PrimaryWatcher::Start() { thread_ = std::thread([this] { Loop(); }); }

void PrimaryWatcher::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void PrimaryWatcher::Loop() {
  std::map<std::pair<std::string, int>, PGconn*> conns;
  while (!stop_) {
    int writable = 0;
    for (const auto& endpoint : endpoints_) {
      PGconn*& conn = conns[endpoint];
      if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) {
        if (conn != nullptr) PQfinish(conn);
        std::string info = "host=" + endpoint.first + " port=" + std::to_string(endpoint.second) +
                           " user=postgres dbname=postgres connect_timeout=1 application_name=pgrs-watcher password=" +
                           password_;
        conn = PQconnectdb(info.c_str());
        if (PQstatus(conn) != CONNECTION_OK) {
          PQfinish(conn);
          conn = nullptr;
          continue;
        }
      }
      PGresult* res = PQexec(conn, "SELECT pg_is_in_recovery()");
      if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 'f') {
        writable++;
      }
      PQclear(res);
    }
    if (writable > 1) twoPrimaries_++;
    sweeps_++;
    std::this_thread::sleep_for(20ms);
  }
  for (auto& [endpoint, conn] : conns) {
    if (conn != nullptr) PQfinish(conn);
  }
}

}  // namespace pgrs::e2e
