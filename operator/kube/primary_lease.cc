#include "operator/kube/primary_lease.h"

#include <spdlog/spdlog.h>

namespace pgrs::kube {

using Clock = std::chrono::steady_clock;

LeaseSpec DecodeLeaseSpec(const Json& lease) {
  LeaseSpec spec;
  spec.holderIdentity = GetString(lease, {"spec", "holderIdentity"});
  spec.leaseDurationSeconds = static_cast<int>(GetInt(lease, {"spec", "leaseDurationSeconds"}).value_or(0));
  spec.acquireTime = GetString(lease, {"spec", "acquireTime"});
  spec.renewTime = GetString(lease, {"spec", "renewTime"});
  spec.leaseTransitions = GetInt(lease, {"spec", "leaseTransitions"}).value_or(0);
  return spec;
}

void EncodeLeaseSpec(const LeaseSpec& spec, Json* lease) {
  Json& s = (*lease)["spec"];
  if (!s.is_object()) s = Json::object();
  if (spec.holderIdentity.empty()) {
    if (s.has_field("holderIdentity")) s.erase("holderIdentity");
  } else {
    s["holderIdentity"] = Json::string(spec.holderIdentity);
  }
  s["leaseDurationSeconds"] = Json::number(spec.leaseDurationSeconds);
  s["acquireTime"] = Json::string(spec.acquireTime);
  s["renewTime"] = Json::string(spec.renewTime);
  s["leaseTransitions"] = Json::number(spec.leaseTransitions);
}

Json NewLeaseObject(const std::string& ns, const std::string& name, const LeaseSpec& spec) {
  Json lease = Json::object();
  lease["apiVersion"] = Json::string("coordination.k8s.io/v1");
  lease["kind"] = Json::string("Lease");
  lease["metadata"]["name"] = Json::string(name);
  lease["metadata"]["namespace"] = Json::string(ns);
  EncodeLeaseSpec(spec, &lease);
  return lease;
}

ClientOptions LeaseClientOptions() {
  ClientOptions options;
  // cpprestsdk times each phase of a request (connect, send, receive) on
  // its own: a hung request can take about three times this.
  options.requestTimeout = std::chrono::milliseconds(500);
  options.maxAttempts = 1;
  options.userAgent = "pgrs-lease";
  return options;
}

lease::LeaseRecord LeaseRecordFromObject(const Json& object) {
  LeaseSpec spec = DecodeLeaseSpec(object);
  auto ms = [](const std::string& text) -> int64_t {
    auto t = ParseTime(text);
    if (!t) return 0;
    return std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count();
  };
  lease::LeaseRecord r;
  r.exists = true;
  r.holder = spec.holderIdentity;
  r.acquireTimeMs = ms(spec.acquireTime);
  r.renewTimeMs = ms(spec.renewTime);
  r.durationSeconds = spec.leaseDurationSeconds;
  r.transitions = static_cast<int>(spec.leaseTransitions);
  return r;
}

KubeLease::KubeLease(Client* client, std::string ns, std::string name, KubeLeaseOptions options)
    : client_(client), ns_(std::move(ns)), name_(std::move(name)), options_(std::move(options)) {}

Status KubeLease::Refresh() {
  auto current = client_->Get(LeaseResource(), ns_, name_);
  if (current.ok()) {
    last_ = *current;
    return Status::Ok();
  }
  if (current.status().code() == StatusCode::kNotFound) {
    last_ = Json::null();
    return Status::Ok();
  }
  last_.reset();
  return current.status().WithContext("primary lease " + location());
}

Status KubeLease::Expired(Clock::time_point start) const {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  return Status::Unavailable("primary lease " + location() + ": gave up after " + std::to_string(ms) +
                             " ms of conflicting writes");
}

Result<lease::LeaseRecord> KubeLease::Get() {
  std::lock_guard<std::mutex> lock(mu_);
  PGRS_RETURN_IF_ERROR(Refresh());
  if (last_->is_null()) return lease::LeaseRecord{};
  return LeaseRecordFromObject(*last_);
}

Result<lease::LeaseRecord> KubeLease::Change(const Decision& decide) {
  auto start = Clock::now();
  // The cached Lease is decided on first: when nobody else wrote it, a
  // renewal is a single PUT. A stale cache costs a 409 (or a refusal) and
  // a read.
  for (bool fresh = false;; fresh = true) {
    if (fresh || !last_) {
      if (Clock::now() - start > options_.operationBudget) return Expired(start);
      PGRS_RETURN_IF_ERROR(Refresh());
      fresh = true;
    }
    auto next = decide(*last_);
    if (!next.ok()) {
      if (!fresh) continue;  // refused on what may be an old view: make sure
      return next.status();
    }
    if (Clock::now() - start > options_.operationBudget) return Expired(start);
    bool create = last_->is_null();
    auto written = create ? client_->Create(LeaseResource(), ns_, *next) : client_->Update(LeaseResource(), ns_, *next);
    if (written.ok()) {
      last_ = *written;
      return LeaseRecordFromObject(*written);
    }
    last_.reset();  // a write that timed out may or may not have happened
    bool lostRace = create ? IsAlreadyExists(written.status()) : written.status().code() == StatusCode::kConflict;
    if (!lostRace) return written.status().WithContext("primary lease " + location());
  }
}

Result<lease::LeaseRecord> KubeLease::Renew(const std::string& holder, int durationSeconds) {
  std::lock_guard<std::mutex> lock(mu_);
  return Change([&](const Json& current) -> Result<Json> {
    if (current.is_null()) return Status::Conflict("primary lease " + location() + " does not exist");
    LeaseSpec spec = DecodeLeaseSpec(current);
    if (spec.holderIdentity != holder) {
      return Status::Conflict("the primary lease is held by " +
                              (spec.holderIdentity.empty() ? std::string("nobody") : spec.holderIdentity));
    }
    spec.renewTime = FormatMicroTime(std::chrono::system_clock::now());
    spec.leaseDurationSeconds = durationSeconds;
    Json next = current;
    EncodeLeaseSpec(spec, &next);
    return next;
  });
}

Result<lease::LeaseRecord> KubeLease::Acquire(const std::string& holder, const std::string& expectedHolder,
                                              int durationSeconds, bool holderFenced) {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<std::string> previous;  // nullopt: absent
  auto taken = Change([&](const Json& current) -> Result<Json> {
    std::string now = FormatMicroTime(std::chrono::system_clock::now());
    if (current.is_null()) {
      previous.reset();
      Json lease = NewLeaseObject(ns_, name_, {holder, durationSeconds, now, now, 0});
      if (options_.ownerReference) {
        lease["metadata"]["ownerReferences"] = Json::array(std::vector<Json>{*options_.ownerReference});
      }
      return lease;
    }
    LeaseSpec spec = DecodeLeaseSpec(current);
    previous = spec.holderIdentity;
    bool mayTake = spec.holderIdentity.empty() || spec.holderIdentity == holder ||
                   (spec.holderIdentity == expectedHolder &&
                    (holderFenced || LeaseRecordFromObject(current).ExpiredAt(lease::NowMs())));
    if (!mayTake) {
      return Status::Conflict("the primary lease is held by " + spec.holderIdentity + " and has not expired");
    }
    if (spec.holderIdentity != holder) {
      spec.acquireTime = now;
      spec.leaseTransitions += 1;
    }
    spec.holderIdentity = holder;
    spec.renewTime = now;
    spec.leaseDurationSeconds = durationSeconds;
    Json next = current;
    EncodeLeaseSpec(spec, &next);
    return next;
  });
  if (taken.ok() && !previous) {
    spdlog::info("created primary lease lease={} holder={}", location(), holder);
  } else if (taken.ok() && *previous != holder) {
    spdlog::info("took primary lease lease={} holder={} from={} fenced={} transitions={}", location(), holder,
                 *previous, holderFenced, taken->transitions);
  }
  return taken;
}

Status ParseLeaseLocation(const std::string& rest, std::string* ns, std::string* name) {
  size_t slash = rest.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == rest.size() ||
      rest.find('/', slash + 1) != std::string::npos) {
    return Status::Invalid("lease location \"kube:" + rest + "\": expected kube:NAMESPACE/NAME");
  }
  *ns = rest.substr(0, slash);
  *name = rest.substr(slash + 1);
  return Status::Ok();
}

namespace {

// One client per process, for every Lease opened by location: renewals
// every second reuse its connections and its configuration.
struct SharedLeaseClient {
  std::mutex mu;
  std::optional<ClientConfig> config;  // given at registration
  Client* client = nullptr;            // never destroyed: used until exit

  Result<Client*> Get() {
    std::lock_guard<std::mutex> lock(mu);
    if (client != nullptr) return client;
    Result<ClientConfig> resolved = config ? Result<ClientConfig>(*config) : ResolveConfig("");
    if (!resolved.ok()) return resolved.status().WithContext("primary lease: Kubernetes configuration");
    auto created = Client::Create(*resolved, LeaseClientOptions());
    if (!created.ok()) return created.status().WithContext("primary lease: Kubernetes client");
    client = created->release();
    spdlog::info("primary lease client ready server={} source={}", resolved->server, resolved->source);
    return client;
  }
};

SharedLeaseClient& LeaseClient() {
  static auto* shared = new SharedLeaseClient();
  return *shared;
}

}  // namespace

void RegisterKubeLeaseOpener(std::optional<ClientConfig> config, LeaseOwnerFn ownerOf) {
  {
    std::lock_guard<std::mutex> lock(LeaseClient().mu);
    if (config) LeaseClient().config = std::move(config);
  }
  lease::RegisterOpener("kube", [ownerOf](const std::string& rest) -> Result<std::unique_ptr<lease::PrimaryLease>> {
    std::string ns, name;
    PGRS_RETURN_IF_ERROR(ParseLeaseLocation(rest, &ns, &name));
    auto client = LeaseClient().Get();
    if (!client.ok()) return client.status();
    KubeLeaseOptions options;
    if (ownerOf) options.ownerReference = ownerOf(ns, name);
    return std::unique_ptr<lease::PrimaryLease>(std::make_unique<KubeLease>(*client, ns, name, options));
  });
}

}  // namespace pgrs::kube
