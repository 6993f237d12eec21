# The pgrs image: `pgrs operator` (the Deployment in manifests/ and the
# chart) and `pgrs instance` (one per PostgreSQL Pod, with PostgreSQL 15).
#
#   docker build -t REGISTRY/pgrs:TAG .
#
# Both stages use Debian 12's own packages, as scripts/install-deps.sh does.

FROM debian:12 AS build
ARG DEBIAN_FRONTEND=noninteractive
# The build dependencies of scripts/install-deps.sh. CMakeLists.txt finds
# GTest and PostgreSQL's libpq at configure time even when only the pgrs
# target is built, so the test and libpq headers are needed too.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      cmake g++ make pkg-config \
      libcpprest-dev libyaml-cpp-dev libpq-dev libssl-dev libspdlog-dev libfmt-dev \
      libgtest-dev libgmock-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Configuring reads every CMakeLists.txt (tests and benchmarks too), so the
# whole tree goes in; .dockerignore keeps build trees and .git out.
COPY . /src
RUN cmake -S /src -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
 && cmake --build /build --target pgrs -j"$(nproc)" \
 && strip --strip-debug /build/operator/pgrs

FROM debian:12-slim
ARG DEBIAN_FRONTEND=noninteractive
# uid/gid 999 before PostgreSQL is installed, so that the package reuses
# this user: the instance Pods run as 999 (runAsUser, fsGroup) and own
# their data directory.
RUN groupadd --system --gid 999 postgres \
 && useradd --system --uid 999 --gid 999 --home-dir /var/lib/postgresql --shell /bin/bash postgres
# pgrs starts its own PostgreSQL instances: no cluster from the package.
RUN mkdir -p /etc/postgresql-common \
 && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      postgresql-15 \
      libcpprest2.10 libyaml-cpp0.7 libpq5 libspdlog1.10 libfmt9 libssl3 \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/pgrs \
 && chown 999:999 /var/lib/pgrs
COPY --from=build /build/operator/pgrs /usr/local/bin/pgrs
ENV PATH=/usr/lib/postgresql/15/bin:$PATH
USER 999
ENTRYPOINT ["/usr/local/bin/pgrs"]
