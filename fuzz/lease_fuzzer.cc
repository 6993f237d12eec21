// The lease records on arbitrary bytes: the file lease's JSON
// (lease::DecodeLeaseFile) and a coordination.k8s.io Lease object
// (kube::DecodeLeaseSpec, LeaseRecordFromObject). What decodes survives its
// encoder: decoded again it is the same record.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/check.h"
#include "operator/kube/meta.h"
#include "operator/kube/primary_lease.h"
#include "operator/lease/lease.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);

  auto record = pgrs::lease::DecodeLeaseFile(text);
  if (record.ok()) {
    PGRS_FUZZ_CHECK(record->exists, "a decoded lease that does not exist");
    const std::string encoded = pgrs::lease::EncodeLeaseFile(*record);
    auto again = pgrs::lease::DecodeLeaseFile(encoded);
    PGRS_FUZZ_CHECK(again.ok(), "EncodeLeaseFile's text does not decode: " + again.status().message());
    PGRS_FUZZ_CHECK(*again == *record, "the file lease round trip changed the record:\n" + encoded);
    (void)record->ExpiredAt(pgrs::lease::NowMs());
  } else {
    PGRS_FUZZ_CHECK(record.status().code() == pgrs::StatusCode::kInternal, record.status().message());
  }

  auto object = pgrs::kube::ParseJson(text);
  if (object) {
    pgrs::kube::LeaseSpec spec = pgrs::kube::DecodeLeaseSpec(*object);
    pgrs::lease::LeaseRecord fromObject = pgrs::kube::LeaseRecordFromObject(*object);
    (void)fromObject.ExpiredAt(pgrs::lease::NowMs());
    pgrs::kube::Json written = pgrs::kube::NewLeaseObject("ns", "name", spec);
    pgrs::kube::LeaseSpec again = pgrs::kube::DecodeLeaseSpec(written);
    PGRS_FUZZ_CHECK(again.holderIdentity == spec.holderIdentity && again.acquireTime == spec.acquireTime &&
                        again.renewTime == spec.renewTime && again.leaseDurationSeconds == spec.leaseDurationSeconds &&
                        again.leaseTransitions == spec.leaseTransitions,
                    "the Lease round trip changed the spec:\n" + written.serialize());
    pgrs::lease::LeaseRecord fromWritten = pgrs::kube::LeaseRecordFromObject(written);
    PGRS_FUZZ_CHECK(fromWritten.holder == fromObject.holder && fromWritten.acquireTimeMs == fromObject.acquireTimeMs &&
                        fromWritten.renewTimeMs == fromObject.renewTimeMs,
                    "the Lease round trip changed the record");
    // Writing into the object read (a renewal's PUT) keeps the rest of it.
    pgrs::kube::Json updated = *object;
    if (updated.is_object()) {
      pgrs::kube::EncodeLeaseSpec(spec, &updated);
      pgrs::kube::LeaseSpec afterUpdate = pgrs::kube::DecodeLeaseSpec(updated);
      PGRS_FUZZ_CHECK(afterUpdate.holderIdentity == spec.holderIdentity && afterUpdate.renewTime == spec.renewTime,
                      "EncodeLeaseSpec into the object read lost the spec:\n" + updated.serialize());
    }
  }

  std::string ns, name;
  (void)pgrs::kube::ParseLeaseLocation(text, &ns, &name);
  return 0;
}
