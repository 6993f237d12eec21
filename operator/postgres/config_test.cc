#include "operator/postgres/config.h"
#include "operator/postgres/pgbackrest.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

namespace pgrs::postgres {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPostgresBin = "/usr/lib/postgresql/15/bin";

InstanceConfig PrimaryConfig(int major) {
  InstanceConfig config;
  config.majorVersion = major;
  config.instanceName = "demo-1";
  config.role = Role::kPrimary;
  config.port = 5432;
  config.userParameters = {{"work_mem", "8MB"}, {"max_connections", "200"}};
  config.userHbaRules = {"host app app 10.0.0.0/8 scram-sha-256"};
  config.maxSlotWalKeepSize = "512MB";  // the API's default
  return config;
}

InstanceConfig SyncPrimaryConfig(int major) {
  InstanceConfig config = PrimaryConfig(major);
  config.synchronousStandbyNames = "ANY 1 (demo-2, demo-3)";
  return config;
}

InstanceConfig StandbyConfig(int major) {
  InstanceConfig config = PrimaryConfig(major);
  config.instanceName = "demo-2";
  config.role = Role::kStandby;
  config.port = 5433;
  config.upstream = UpstreamConfig{
      .host = "127.0.0.1",
      .port = 5432,
      .user = "pgrs_replication",
      .passfile = "/var/lib/pgrs/demo-2/replication.pgpass",
      .applicationName = "demo-2",
      .slotName = "demo_2",
      .sslRootCert = "",
      .sslCert = "",
      .sslKey = "",
  };
  return config;
}

// spec.backup: archiving with pgBackRest.
template <InstanceConfig (*Base)(int)>
InstanceConfig Archiving(int major) {
  InstanceConfig config = Base(major);
  config.archive = ArchiveConfig{"/usr/bin/pgbackrest", "/var/lib/pgrs/demo-1/pgbackrest/pgbackrest.conf", "demo"};
  return config;
}

// spec.tls: ssl = on, hostssl only, a standby streaming with its client
// certificate.
template <InstanceConfig (*Base)(int)>
InstanceConfig WithTls(int major) {
  InstanceConfig config = Base(major);
  const std::string dir = "/var/lib/pgrs/" + config.instanceName + "/tls/";
  config.tls = TlsFiles{dir + "server.crt", dir + "server.key", dir + "ca.crt"};
  if (config.upstream) {
    config.upstream->sslRootCert = dir + "ca.crt";
    config.upstream->sslCert = dir + "replication.crt";
    config.upstream->sslKey = dir + "replication.key";
  }
  return config;
}

const ConfigFile* FindFile(const GeneratedConfig& generated, const std::string& name) {
  for (const ConfigFile& file : generated.files) {
    if (file.name == name) return &file;
  }
  return nullptr;
}

std::string FileText(const GeneratedConfig& generated, const std::string& name) {
  const ConfigFile* file = FindFile(generated, name);
  EXPECT_NE(file, nullptr) << name << " not generated";
  return file ? file->content : "";
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Names set in a postgresql.conf or recovery.conf text, in file order.
std::vector<std::string> SettingNames(const std::string& text) {
  std::vector<std::string> names;
  for (const std::string& line : Lines(text)) {
    if (line.empty() || line[0] == '#') continue;
    names.push_back(line.substr(0, line.find(" = ")));
  }
  return names;
}

// The line that sets `name`, or "" when none does; fails on duplicates.
std::string SettingLine(const std::string& text, const std::string& name) {
  std::string found;
  for (const std::string& line : Lines(text)) {
    if (line.rfind(name + " = ", 0) == 0) {
      EXPECT_TRUE(found.empty()) << name << " set twice";
      found = line;
    }
  }
  return found;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// ---- golden files --------------------------------------------------------

fs::path GoldenDir() {
  if (const char* source = std::getenv("PGRS_SOURCE_DIR"); source && *source) {
    return fs::path(source) / "operator/postgres/testdata/golden";
  }
  return fs::path(PGRS_POSTGRES_TESTDATA) / "golden";
}

bool UpdatingGolden() {
  const char* update = std::getenv("PGRS_UPDATE_GOLDEN");
  return update && std::string(update) == "1";
}

std::string ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

struct GoldenCase {
  int major;
  std::string name;
  std::function<InstanceConfig(int)> config;
};

std::vector<GoldenCase> GoldenCases() {
  std::vector<GoldenCase> cases;
  for (int major = 11; major <= 17; ++major) {
    cases.push_back({major, "primary", PrimaryConfig});
    cases.push_back({major, "standby", StandbyConfig});
  }
  // Synchronous replication on the oldest and the local major.
  cases.push_back({11, "primary-sync", SyncPrimaryConfig});
  cases.push_back({15, "primary-sync", SyncPrimaryConfig});
  // Archiving on the oldest (restore_command in recovery.conf), on 12 (the
  // first with it in postgresql.conf) and on the local major.
  for (int major : {11, 12, 15}) {
    cases.push_back({major, "primary-archive", Archiving<PrimaryConfig>});
    cases.push_back({major, "standby-archive", Archiving<StandbyConfig>});
  }
  // TLS on the oldest (no ssl_min_protocol_version; primary_conninfo in
  // recovery.conf) and on the local major.
  for (int major : {11, 15}) {
    cases.push_back({major, "primary-tls", WithTls<PrimaryConfig>});
    cases.push_back({major, "standby-tls", WithTls<StandbyConfig>});
  }
  return cases;
}

class GoldenTest : public testing::TestWithParam<GoldenCase> {};

// Each generated file equals its golden file byte for byte, and no golden
// file exists that the generator no longer produces (a stale recovery.conf
// would otherwise go unnoticed). PGRS_UPDATE_GOLDEN=1 rewrites them.
TEST_P(GoldenTest, GeneratedFilesMatchGoldenFiles) {
  const GoldenCase& c = GetParam();
  const GeneratedConfig generated = GenerateConfig(c.config(c.major));
  const fs::path dir = GoldenDir() / std::to_string(c.major) / c.name;

  std::set<std::string> generatedNames;
  for (const ConfigFile& file : generated.files) generatedNames.insert(file.name);

  if (UpdatingGolden()) {
    fs::create_directories(dir);
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (!generatedNames.count(entry.path().filename().string())) fs::remove(entry.path());
    }
    for (const ConfigFile& file : generated.files) WriteText(dir / file.name, file.content);
  }

  ASSERT_TRUE(fs::is_directory(dir)) << dir << " missing; run with PGRS_UPDATE_GOLDEN=1";
  std::set<std::string> goldenNames;
  for (const auto& entry : fs::directory_iterator(dir)) {
    goldenNames.insert(entry.path().filename().string());
  }
  EXPECT_EQ(goldenNames, generatedNames) << "in " << dir;
  for (const ConfigFile& file : generated.files) {
    if (!goldenNames.count(file.name)) continue;
    EXPECT_EQ(file.content, ReadText(dir / file.name))
        << (dir / file.name) << " differs; run with PGRS_UPDATE_GOLDEN=1 and review the diff";
  }
}

INSTANTIATE_TEST_SUITE_P(AllMajors, GoldenTest, testing::ValuesIn(GoldenCases()),
                         [](const testing::TestParamInfo<GoldenCase>& info) {
                           std::string name = "pg" + std::to_string(info.param.major) + "_" +
                                              info.param.name;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// ---- archiving -----------------------------------------------------------

TEST(GenerateConfigTest, WithoutArchivingTheUsersArchiveSettingsStay) {
  InstanceConfig config = PrimaryConfig(15);
  config.userParameters = {{"archive_mode", "on"}, {"archive_command", "cp %p /mnt/%f"}};
  const std::string conf = FileText(GenerateConfig(config), "postgresql.conf");
  EXPECT_EQ(SettingLine(conf, "archive_command"), "archive_command = 'cp %p /mnt/%f'");
  EXPECT_EQ(SettingLine(conf, "restore_command"), "");
}

TEST(GenerateConfigTest, ArchivingOwnsArchiveSettingsOnEveryInstance) {
  for (auto make : {Archiving<PrimaryConfig>, Archiving<StandbyConfig>}) {
    InstanceConfig config = make(15);
    config.userParameters = {{"archive_command", "cp %p /mnt/%f"}, {"archive_library", "basic_archive"}};
    const std::string conf = FileText(GenerateConfig(config), "postgresql.conf");
    EXPECT_EQ(SettingLine(conf, "archive_mode"), "archive_mode = 'on'");
    EXPECT_EQ(SettingLine(conf, "archive_command"),
              "archive_command = '/usr/bin/pgbackrest --config=/var/lib/pgrs/demo-1/pgbackrest/pgbackrest.conf "
              "--stanza=demo archive-push %p'");
    EXPECT_EQ(SettingLine(conf, "restore_command"),
              R"(restore_command = '/usr/bin/pgbackrest --config=/var/lib/pgrs/demo-1/pgbackrest/pgbackrest.conf )"
              R"(--stanza=demo archive-get %f "%p"')");
    EXPECT_EQ(SettingLine(conf, "archive_library"), "");
  }
}

TEST(GenerateConfigTest, TlsOwnsSslSettingsAndAdmitsTcpOverTlsOnly) {
  InstanceConfig config = WithTls<StandbyConfig>(15);
  config.userParameters = {{"ssl", "off"}, {"ssl_cert_file", "/elsewhere.crt"}, {"ssl_ciphers", "HIGH"}};
  config.userHbaRules = {"host all all 10.0.0.0/8 trust"};
  const GeneratedConfig generated = GenerateConfig(config);
  const std::string conf = FileText(generated, "postgresql.conf");
  EXPECT_EQ(SettingLine(conf, "ssl"), "ssl = 'on'");
  EXPECT_EQ(SettingLine(conf, "ssl_cert_file"), "ssl_cert_file = '/var/lib/pgrs/demo-2/tls/server.crt'");
  EXPECT_EQ(SettingLine(conf, "ssl_ciphers"), "ssl_ciphers = 'HIGH'") << "not owned: the user's";
  EXPECT_NE(SettingLine(conf, "primary_conninfo").find("sslmode=verify-full sslrootcert=/var/lib/pgrs/demo-2/tls/ca.crt "
                                                       "sslcert=/var/lib/pgrs/demo-2/tls/replication.crt"),
            std::string::npos);
  const std::string hba = FileText(generated, "pg_hba.conf");
  // The reject rules come before the user's: a user's `host` rule matches
  // TLS connections only.
  EXPECT_LT(hba.find("hostnossl all all all reject"), hba.find("host all all 10.0.0.0/8 trust"));
  EXPECT_NE(hba.find("hostssl replication pgrs_replication 127.0.0.1/32 cert"), std::string::npos);
  EXPECT_EQ(hba.find("\nhost replication"), std::string::npos);
  for (const char* name : {"ssl", "SSL_KEY_FILE", "ssl_ca_file", "ssl_min_protocol_version"}) {
    EXPECT_TRUE(IsTlsParameter(name)) << name;
  }
  EXPECT_FALSE(IsTlsParameter("ssl_ciphers"));
}

TEST(GenerateConfigTest, ArchiveCommandQuotesPathsForTheShellAndEscapesPercent) {
  InstanceConfig config = PrimaryConfig(15);
  config.archive = ArchiveConfig{"pgbackrest", "/srv/my pgrs/100%/it's.conf", "demo"};
  const std::string conf = FileText(GenerateConfig(config), "postgresql.conf");
  EXPECT_EQ(SettingLine(conf, "archive_command"),
            R"(archive_command = 'pgbackrest ''--config=/srv/my pgrs/100%%/it''\\''''s.conf'' --stanza=demo archive-push %p')");
}

PgBackRestConfig DemoPgBackRestConfig() {
  PgBackRestConfig config;
  config.stanza = "demo";
  config.repository.path = "/var/lib/pgrs-backups";
  config.dataDir = "/var/lib/pgrs/demo/sets/demo/instances/demo-1/data";
  config.port = 15432;
  const std::string dir = "/var/lib/pgrs/demo/sets/demo/instances/demo-1/pgbackrest";
  config.spoolPath = dir + "/spool";
  config.lockPath = dir + "/lock";
  config.logPath = dir + "/log";
  return config;
}

S3Repository DemoS3() {
  S3Repository s3;
  s3.endpoint = "s3.eu-west-1.amazonaws.com";
  s3.bucket = "pgrs-backups";
  s3.region = "eu-west-1";
  s3.key = "AKIAEXAMPLE";
  s3.keySecret = "secret/example";
  return s3;
}

void ExpectPgBackRestGolden(const PgBackRestConfig& config, const std::string& file) {
  const std::string text = GeneratePgBackRestConfig(config);
  const fs::path golden = GoldenDir() / "pgbackrest" / file;
  if (UpdatingGolden()) {
    fs::create_directories(golden.parent_path());
    WriteText(golden, text);
  }
  EXPECT_EQ(text, ReadText(golden)) << golden << " differs; run with PGRS_UPDATE_GOLDEN=1 and review the diff";
}

TEST(PgBackRestConfigTest, RetentionFullKeepsThatManyFullsUnsetKeepsAll) {
  PgBackRestConfig config;
  config.stanza = "demo";
  EXPECT_NE(GeneratePgBackRestConfig(config).find("\nrepo1-retention-full=9999999\n"), std::string::npos);
  config.retentionFull = 2;
  const std::string text = GeneratePgBackRestConfig(config);
  EXPECT_NE(text.find("\nrepo1-retention-full-type=count\nrepo1-retention-full=2\n"), std::string::npos) << text;
}

TEST(PgBackRestConfigTest, MatchesGoldenFile) { ExpectPgBackRestGolden(DemoPgBackRestConfig(), "pgbackrest.conf"); }

TEST(PgBackRestConfigTest, S3MatchesGoldenFile) {
  PgBackRestConfig config = DemoPgBackRestConfig();
  config.repository.path = "/demo";
  config.repository.s3 = DemoS3();
  config.repository.s3->caFile = "/var/lib/pgrs/demo/sets/demo/instances/demo-1/pgbackrest/s3-ca.pem";
  ExpectPgBackRestGolden(config, "pgbackrest-s3.conf");
}

// spec.backup.encryption: the cipher and its passphrase, in the file only.
TEST(PgBackRestConfigTest, EncryptedMatchesGoldenFile) {
  PgBackRestConfig config = DemoPgBackRestConfig();
  config.repository.cipherPass = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  ExpectPgBackRestGolden(config, "pgbackrest-encrypted.conf");
}

TEST(RepositoryOptionsTest, Table) {
  struct Row {
    std::string name;
    std::function<void(PgBackRestRepository&)> change;
    std::vector<std::string> present;
    std::vector<std::string> absent;
  };
  const std::vector<Row> rows = {
      {"Posix", [](PgBackRestRepository&) {}, {"repo1-path=/b\n"}, {"repo1-type", "repo1-s3"}},
      {"S3Defaults",
       [](PgBackRestRepository& r) { r.s3 = DemoS3(); },
       {"repo1-type=s3\n", "repo1-s3-endpoint=s3.eu-west-1.amazonaws.com\n", "repo1-s3-bucket=pgrs-backups\n",
        "repo1-s3-region=eu-west-1\n", "repo1-s3-uri-style=host\n", "repo1-s3-key=AKIAEXAMPLE\n",
        "repo1-s3-key-secret=secret/example\n", "repo1-path=/b\n"},
       // pgBackRest's defaults: port 443, the system's CAs, TLS verified.
       {"repo1-storage-port", "repo1-storage-ca-file", "repo1-storage-verify-tls"}},
      {"S3PortPathStyleCaNoVerify",
       [](PgBackRestRepository& r) {
         r.s3 = DemoS3();
         r.s3->port = 9000;
         r.s3->uriStyle = "path";
         r.s3->caFile = "/x/ca.pem";
         r.s3->verifyTLS = false;
       },
       {"repo1-storage-port=9000\n", "repo1-s3-uri-style=path\n", "repo1-storage-ca-file=/x/ca.pem\n",
        "repo1-storage-verify-tls=n\n"},
       {}},
      {"Encrypted",
       [](PgBackRestRepository& r) { r.cipherPass = "pass"; },
       {"repo1-cipher-type=aes-256-cbc\n", "repo1-cipher-pass=pass\n"},
       {}},
      {"NotEncrypted", [](PgBackRestRepository&) {}, {}, {"repo1-cipher"}},
      {"LineBreakInSecretStaysOnItsLine",
       [](PgBackRestRepository& r) {
         r.s3 = DemoS3();
         r.s3->keySecret = "a\nrepo1-path=/evil";
       },
       {"repo1-s3-key-secret=a repo1-path=/evil\n"},
       {"\nrepo1-path=/evil"}},
  };
  for (const Row& row : rows) {
    PgBackRestRepository repository;
    repository.path = "/b";
    row.change(repository);
    const std::string text = RepositoryOptions(repository);
    for (const auto& p : row.present) EXPECT_NE(text.find(p), std::string::npos) << row.name << ": " << p << "\n" << text;
    for (const auto& a : row.absent) EXPECT_EQ(text.find(a), std::string::npos) << row.name << ": " << a << "\n" << text;
  }
}

// ---- merging -------------------------------------------------------------

TEST(GenerateConfigTest, UserParameterIsMergedAndOverridesDefault) {
  InstanceConfig config = PrimaryConfig(15);
  config.userParameters = {{"max_connections", "250"}, {"work_mem", "16MB"}};
  const std::string conf = FileText(GenerateConfig(config), "postgresql.conf");
  EXPECT_EQ(SettingLine(conf, "max_connections"), "max_connections = '250'");
  EXPECT_EQ(SettingLine(conf, "work_mem"), "work_mem = '16MB'");
  // Defaults the user did not touch stay.
  EXPECT_EQ(SettingLine(conf, "shared_buffers"), "shared_buffers = '128MB'");
}

TEST(GenerateConfigTest, UserParameterNameInOtherCaseReplacesDefault) {
  InstanceConfig config = PrimaryConfig(15);
  config.userParameters = {{"TimeZone", "Europe/Paris"}};
  const std::string conf = FileText(GenerateConfig(config), "postgresql.conf");
  EXPECT_EQ(SettingLine(conf, "timezone"), "timezone = 'Europe/Paris'");
  EXPECT_EQ(SettingLine(conf, "TimeZone"), "");
}

TEST(GenerateConfigTest, OwnedUserParameterNeverWins) {
  InstanceConfig config = StandbyConfig(15);
  config.userParameters = {
      {"port", "6000"},
      {"PORT", "6001"},
      {"wal_level", "minimal"},
      {"hot_standby", "off"},
      {"primary_conninfo", "host=evil"},
      {"recovery_target_action", "promote"},
      {"recovery_target_lsn", "0/1"},
      {"include", "/tmp/override.conf"},
      {"include_dir", "/tmp"},
  };
  const std::string conf = FileText(GenerateConfig(config), "postgresql.conf");
  EXPECT_EQ(SettingLine(conf, "port"), "port = '5433'");
  EXPECT_EQ(SettingLine(conf, "PORT"), "");
  EXPECT_EQ(SettingLine(conf, "wal_level"), "wal_level = 'replica'");
  EXPECT_EQ(SettingLine(conf, "hot_standby"), "hot_standby = 'on'");
  EXPECT_EQ(conf.find("evil"), std::string::npos);
  EXPECT_EQ(SettingLine(conf, "recovery_target_action"), "");
  EXPECT_EQ(SettingLine(conf, "recovery_target_lsn"), "");
  EXPECT_EQ(conf.find("include"), std::string::npos);
  EXPECT_EQ(conf.find("override"), std::string::npos);
}

TEST(GenerateConfigTest, OwnedParameterNotSetByPgrsIsDroppedNotPassedThrough) {
  // wal_keep_size does not exist in 12; the user's value must not appear.
  InstanceConfig config = PrimaryConfig(12);
  config.userParameters = {{"wal_keep_size", "10GB"}, {"standby_mode", "on"}};
  const std::string conf = FileText(GenerateConfig(config), "postgresql.conf");
  EXPECT_EQ(SettingLine(conf, "wal_keep_size"), "");
  EXPECT_EQ(SettingLine(conf, "standby_mode"), "");
  EXPECT_EQ(SettingLine(conf, "wal_keep_segments"), "wal_keep_segments = '64'");
}

TEST(GenerateConfigTest, ParameterNameThatCouldInjectLinesIsDropped) {
  InstanceConfig config = PrimaryConfig(15);
  config.userParameters = {
      {"work_mem = '1MB'\nport", "7000"},
      {"a b", "1"},
      {"", "1"},
      {"1abc", "1"},
      {"pg_stat_statements.max", "1000"},
  };
  const std::string conf = FileText(GenerateConfig(config), "postgresql.conf");
  EXPECT_EQ(SettingLine(conf, "port"), "port = '5432'");
  EXPECT_EQ(conf.find("7000"), std::string::npos);
  EXPECT_EQ(conf.find("a b"), std::string::npos);
  EXPECT_EQ(conf.find("1abc"), std::string::npos);
  EXPECT_EQ(SettingLine(conf, "pg_stat_statements.max"), "pg_stat_statements.max = '1000'");
  for (const std::string& name : SettingNames(conf)) EXPECT_FALSE(name.empty());
}

TEST(GenerateConfigTest, ValueWithLineBreakStaysOnOneLine) {
  InstanceConfig config = PrimaryConfig(15);
  config.userParameters = {{"application_name", "x'\nport = '9999"}};
  const std::string conf = FileText(GenerateConfig(config), "postgresql.conf");
  EXPECT_EQ(SettingLine(conf, "port"), "port = '5432'");
  EXPECT_EQ(SettingLine(conf, "application_name"), "application_name = 'x''\\nport = ''9999'");
}

TEST(GenerateConfigTest, SettingsAreSortedByName) {
  for (int major = 11; major <= 17; ++major) {
    for (const InstanceConfig& config : {PrimaryConfig(major), StandbyConfig(major)}) {
      const std::vector<std::string> names =
          SettingNames(FileText(GenerateConfig(config), "postgresql.conf"));
      EXPECT_TRUE(std::is_sorted(names.begin(), names.end())) << "major " << major;
      EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size());
    }
  }
}

TEST(GenerateConfigTest, HeaderNamesInstanceRoleAndMajor) {
  const std::string conf = FileText(GenerateConfig(StandbyConfig(13)), "postgresql.conf");
  EXPECT_EQ(conf.rfind("# postgresql.conf\n# Generated by pgrs for instance demo-2 (standby, "
                       "PostgreSQL 13).\n",
                       0),
            0u)
      << conf;
  EXPECT_NE(conf.find("spec.postgres.parameters"), std::string::npos);
}

TEST(GenerateConfigTest, InstanceNameCannotBreakOutOfHeaderComment) {
  InstanceConfig config = PrimaryConfig(15);
  config.instanceName = "demo\nport = '1'";
  const std::string conf = FileText(GenerateConfig(config), "postgresql.conf");
  EXPECT_EQ(SettingLine(conf, "port"), "port = '5432'");
  EXPECT_EQ(SettingLine(conf, "cluster_name"), "cluster_name = 'demo\\nport = ''1'''");
}

// ---- version differences --------------------------------------------------

TEST(GenerateConfigTest, WalKeepSettingMatchesMajor) {
  for (int major = 11; major <= 17; ++major) {
    InstanceConfig config = PrimaryConfig(major);
    config.maxSlotWalKeepSize = "";
    const std::string conf = FileText(GenerateConfig(config), "postgresql.conf");
    if (major >= 13) {
      EXPECT_EQ(SettingLine(conf, "wal_keep_size"), "wal_keep_size = '1GB'") << major;
      EXPECT_EQ(SettingLine(conf, "wal_keep_segments"), "") << major;
    } else {
      EXPECT_EQ(SettingLine(conf, "wal_keep_segments"), "wal_keep_segments = '64'") << major;
      EXPECT_EQ(SettingLine(conf, "wal_keep_size"), "") << major;
    }
    EXPECT_EQ(SettingLine(conf, "max_slot_wal_keep_size"), "") << major;
  }
}

// spec.replication.maxSlotWalKeepSize: max_slot_wal_keep_size from 13 on
// (11 and 12 do not know it, and would refuse to start), and the cap of
// wal_keep_size while standbys use slots: PostgreSQL invalidates a slot only
// once it is behind both.
TEST(GenerateConfigTest, MaxSlotWalKeepSizeBoundsSlotsAndCapsWalKeepSize) {
  struct Row {
    int major;
    std::string value;
    bool slots;
    std::string maxSlotLine;   // "" = not set
    std::string walKeepLine;   // wal_keep_size, or wal_keep_segments before 13
  };
  const Row rows[] = {
      {15, "512MB", true, "max_slot_wal_keep_size = '512MB'", "wal_keep_size = '512MB'"},
      {15, "64MB", true, "max_slot_wal_keep_size = '64MB'", "wal_keep_size = '64MB'"},
      {15, "2GB", true, "max_slot_wal_keep_size = '2048MB'", "wal_keep_size = '1GB'"},
      {15, "1TB", true, "max_slot_wal_keep_size = '1048576MB'", "wal_keep_size = '1GB'"},
      {15, "-1", true, "max_slot_wal_keep_size = '-1'", "wal_keep_size = '1GB'"},
      // Without slots wal_keep_size is all that keeps WAL for standbys.
      {15, "64MB", false, "max_slot_wal_keep_size = '64MB'", "wal_keep_size = '1GB'"},
      {13, "256MB", true, "max_slot_wal_keep_size = '256MB'", "wal_keep_size = '256MB'"},
      {17, "256MB", true, "max_slot_wal_keep_size = '256MB'", "wal_keep_size = '256MB'"},
      {12, "256MB", true, "", "wal_keep_segments = '64'"},
      {11, "256MB", true, "", "wal_keep_segments = '64'"},
      // Not a size (validation refuses it): nothing written.
      {15, "lots", true, "", "wal_keep_size = '1GB'"},
  };
  for (const Row& row : rows) {
    for (auto base : {PrimaryConfig, StandbyConfig}) {
      InstanceConfig config = base(row.major);
      config.maxSlotWalKeepSize = row.value;
      config.replicationSlots = row.slots;
      const std::string conf = FileText(GenerateConfig(config), "postgresql.conf");
      const std::string what = std::to_string(row.major) + " " + row.value + (row.slots ? " slots" : " no slots");
      EXPECT_EQ(SettingLine(conf, "max_slot_wal_keep_size"), row.maxSlotLine) << what;
      const char* walKeep = row.major >= 13 ? "wal_keep_size" : "wal_keep_segments";
      EXPECT_EQ(SettingLine(conf, walKeep), row.walKeepLine) << what;
    }
  }
}

TEST(WalSizeMegabytesTest, ReadsPostgresSizesInMegabytes) {
  EXPECT_EQ(WalSizeMegabytes("-1"), -1);
  EXPECT_EQ(WalSizeMegabytes("16MB"), 16);
  EXPECT_EQ(WalSizeMegabytes("2GB"), 2048);
  EXPECT_EQ(WalSizeMegabytes("1TB"), 1048576);
  EXPECT_EQ(WalSizeMegabytes("0MB"), 0);
  EXPECT_EQ(WalSizeMegabytes("2147483647MB"), 2147483647);
  for (const char* bad : {"", "MB", "512", "512mb", "512 MB", "1.5GB", "-2", "-1MB", "+5MB", "512kB", "2Gi",
                          "2147483648MB", "2048TB", "99999999999MB"}) {
    EXPECT_EQ(WalSizeMegabytes(bad), std::nullopt) << bad;
  }
}

TEST(GenerateConfigTest, StandbyOn11UsesRecoveryConfOnly) {
  const GeneratedConfig generated = GenerateConfig(StandbyConfig(11));
  const std::string conf = FileText(generated, "postgresql.conf");
  // PostgreSQL 11 refuses to start with these in postgresql.conf.
  for (const char* name : {"primary_conninfo", "primary_slot_name", "recovery_target_timeline",
                           "standby_mode"}) {
    EXPECT_EQ(SettingLine(conf, name), "") << name;
  }
  EXPECT_EQ(FindFile(generated, "standby.signal"), nullptr);
  const std::string recovery = FileText(generated, "recovery.conf");
  EXPECT_EQ(SettingNames(recovery),
            (std::vector<std::string>{"standby_mode", "primary_conninfo", "primary_slot_name",
                                      "recovery_target_timeline"}));
  EXPECT_EQ(SettingLine(recovery, "standby_mode"), "standby_mode = 'on'");
  EXPECT_EQ(SettingLine(recovery, "primary_slot_name"), "primary_slot_name = 'demo_2'");
  EXPECT_EQ(SettingLine(recovery, "recovery_target_timeline"),
            "recovery_target_timeline = 'latest'");
  EXPECT_TRUE(generated.removeFiles.empty());
}

TEST(GenerateConfigTest, StandbyOn12AndLaterUsesSignalFileAndPostgresqlConf) {
  for (int major = 12; major <= 17; ++major) {
    const GeneratedConfig generated = GenerateConfig(StandbyConfig(major));
    const ConfigFile* signal = FindFile(generated, "standby.signal");
    ASSERT_NE(signal, nullptr) << major;
    EXPECT_EQ(signal->content, "");
    EXPECT_EQ(FindFile(generated, "recovery.conf"), nullptr);
    const std::string conf = FileText(generated, "postgresql.conf");
    EXPECT_EQ(SettingLine(conf, "primary_conninfo"),
              "primary_conninfo = 'host=127.0.0.1 port=5432 user=pgrs_replication "
              "passfile=/var/lib/pgrs/demo-2/replication.pgpass application_name=demo-2 "
              "connect_timeout=5'");
    EXPECT_EQ(SettingLine(conf, "primary_slot_name"), "primary_slot_name = 'demo_2'");
    EXPECT_EQ(SettingLine(conf, "recovery_target_timeline"), "recovery_target_timeline = 'latest'");
    EXPECT_EQ(SettingLine(conf, "standby_mode"), "");
  }
}

TEST(GenerateConfigTest, StandbyWithoutSlotHasNoSlotName) {
  for (int major : {11, 15}) {
    InstanceConfig config = StandbyConfig(major);
    config.upstream->slotName = "";
    const GeneratedConfig generated = GenerateConfig(config);
    for (const ConfigFile& file : generated.files) {
      EXPECT_EQ(file.content.find("primary_slot_name"), std::string::npos) << file.name;
    }
  }
}

TEST(GenerateConfigTest, StandbyWithoutUpstreamStaysStandby) {
  // Not meant to happen; if it does, never write a primary's files.
  for (int major : {11, 15}) {
    InstanceConfig config = StandbyConfig(major);
    config.upstream.reset();
    const GeneratedConfig generated = GenerateConfig(config);
    EXPECT_NE(FindFile(generated, major == 11 ? "recovery.conf" : "standby.signal"), nullptr);
    EXPECT_FALSE(Contains(generated.removeFiles, "standby.signal"));
    if (major == 11) {
      EXPECT_FALSE(Contains(generated.removeFiles, "recovery.conf"));
    }
  }
}

TEST(GenerateConfigTest, RemoveFilesFitRoleAndMajor) {
  using Files = std::vector<std::string>;
  EXPECT_EQ(GenerateConfig(PrimaryConfig(11)).removeFiles, Files{"recovery.conf"});
  EXPECT_EQ(GenerateConfig(StandbyConfig(11)).removeFiles, Files{});
  for (int major = 12; major <= 17; ++major) {
    EXPECT_EQ(GenerateConfig(PrimaryConfig(major)).removeFiles,
              (Files{"recovery.conf", "recovery.signal", "standby.signal"}));
    EXPECT_EQ(GenerateConfig(StandbyConfig(major)).removeFiles,
              (Files{"recovery.conf", "recovery.signal"}));
  }
}

TEST(GenerateConfigTest, SynchronousNamesOnPrimaryOnly) {
  const std::string primary = FileText(GenerateConfig(SyncPrimaryConfig(15)), "postgresql.conf");
  EXPECT_EQ(SettingLine(primary, "synchronous_standby_names"),
            "synchronous_standby_names = 'ANY 1 (\"demo-2\", \"demo-3\")'");
  const std::string async = FileText(GenerateConfig(PrimaryConfig(15)), "postgresql.conf");
  EXPECT_EQ(SettingLine(async, "synchronous_standby_names"), "synchronous_standby_names = ''");
  InstanceConfig standby = StandbyConfig(15);
  standby.synchronousStandbyNames = "ANY 1 (demo-1, demo-3)";
  const std::string standbyConf = FileText(GenerateConfig(standby), "postgresql.conf");
  EXPECT_EQ(SettingLine(standbyConf, "synchronous_standby_names"),
            "synchronous_standby_names = ''");
}

TEST(GenerateConfigTest, ReplicationLimitsDoNotDependOnInstance) {
  for (int major = 11; major <= 17; ++major) {
    for (const InstanceConfig& config : {PrimaryConfig(major), StandbyConfig(major)}) {
      const std::string conf = FileText(GenerateConfig(config), "postgresql.conf");
      EXPECT_EQ(SettingLine(conf, "max_wal_senders"), "max_wal_senders = '40'");
      EXPECT_EQ(SettingLine(conf, "max_replication_slots"), "max_replication_slots = '40'");
      EXPECT_EQ(SettingLine(conf, "unix_socket_directories"), "unix_socket_directories = ''");
    }
  }
}

// PostgreSQL's grammar for synchronous_standby_names takes demo-2 only in
// double quotes; without them the server refuses to start.
TEST(GenerateConfigTest, SynchronousStandbyNamesNeedingQuotesAreQuoted) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"ANY 1 (demo-2, demo-3)", "ANY 1 (\"demo-2\", \"demo-3\")"},
      {"FIRST 2 (demo_2,demo-3)", "FIRST 2 (demo_2,\"demo-3\")"},
      {"ANY 1 (\"demo-2\", \"demo-3\")", "ANY 1 (\"demo-2\", \"demo-3\")"},
      {"\"a\"\"b\", c.d", "\"a\"\"b\", \"c.d\""},
      {"*", "*"},
      {"demo-2", "\"demo-2\""},
      {"ANY 1 (\"open", "ANY 1 (\"open\""},
      {"", ""},
  };
  for (const auto& [given, expected] : cases) {
    InstanceConfig config = PrimaryConfig(15);
    config.synchronousStandbyNames = given;
    const std::string conf = FileText(GenerateConfig(config), "postgresql.conf");
    EXPECT_EQ(SettingLine(conf, "synchronous_standby_names"),
              "synchronous_standby_names = " + QuoteConfValue(expected))
        << given;
  }
}

// ---- pg_hba.conf ---------------------------------------------------------

TEST(GenerateConfigTest, UserHbaRulesComeAfterOwnedRules) {
  InstanceConfig config = PrimaryConfig(15);
  config.clientNetworks = {"127.0.0.1/32", "10.0.0.0/8"};
  config.userHbaRules = {"host replication all 0.0.0.0/0 reject", "hostssl app app ::/0 cert"};
  const std::vector<std::string> lines = Lines(FileText(GenerateConfig(config), "pg_hba.conf"));
  std::vector<std::string> rules;
  for (const std::string& line : lines) {
    if (!line.empty() && line[0] != '#') rules.push_back(line);
  }
  EXPECT_EQ(rules, (std::vector<std::string>{
                       "host replication pgrs_replication 127.0.0.1/32 scram-sha-256",
                       "host all all 127.0.0.1/32 scram-sha-256",
                       "host replication pgrs_replication 10.0.0.0/8 scram-sha-256",
                       "host all all 10.0.0.0/8 scram-sha-256",
                       "host replication all 0.0.0.0/0 reject",
                       "hostssl app app ::/0 cert",
                   }));
  const auto marker = std::find(lines.begin(), lines.end(), "# spec.postgres.pgHBA");
  ASSERT_NE(marker, lines.end());
  EXPECT_EQ(*(marker + 1), "host replication all 0.0.0.0/0 reject");
}

TEST(GenerateConfigTest, HbaTokensCannotInjectRules) {
  InstanceConfig config = PrimaryConfig(15);
  config.clientNetworks = {"127.0.0.1/32 trust\nhost all all 0.0.0.0/0", "::1/128"};
  config.replicationUser = "repl user\n";
  config.userHbaRules = {};
  const std::string hba = FileText(GenerateConfig(config), "pg_hba.conf");
  EXPECT_EQ(hba.find("trust"), std::string::npos);
  EXPECT_EQ(hba.find("0.0.0.0/0"), std::string::npos);
  EXPECT_NE(hba.find("host replication \"repl user\" ::1/128 scram-sha-256\n"), std::string::npos);
}

TEST(GenerateConfigTest, ReplicationUserNamedLikeKeywordIsQuoted) {
  InstanceConfig config = PrimaryConfig(15);
  config.replicationUser = "all";
  const std::string hba = FileText(GenerateConfig(config), "pg_hba.conf");
  EXPECT_NE(hba.find("host replication \"all\" 127.0.0.1/32 scram-sha-256\n"), std::string::npos);
}

// ---- quoting -------------------------------------------------------------

TEST(QuoteTest, ConfValue) {
  EXPECT_EQ(QuoteConfValue(""), "''");
  EXPECT_EQ(QuoteConfValue("replica"), "'replica'");
  EXPECT_EQ(QuoteConfValue("it's"), "'it''s'");
  EXPECT_EQ(QuoteConfValue("''"), "''''''");
  EXPECT_EQ(QuoteConfValue("C:\\dir"), "'C:\\\\dir'");
  EXPECT_EQ(QuoteConfValue("a\nb"), "'a\\nb'");
  EXPECT_EQ(QuoteConfValue("%m [%p] %q%u@%d "), "'%m [%p] %q%u@%d '");
  EXPECT_EQ(QuoteConfValue("# not a comment"), "'# not a comment'");
}

TEST(QuoteTest, ConnInfoValueQuotesOnlyWhenNeeded) {
  EXPECT_EQ(QuoteConnInfoValue("demo-1.pgrs.svc"), "demo-1.pgrs.svc");
  EXPECT_EQ(QuoteConnInfoValue("a=b"), "a=b");
  EXPECT_EQ(QuoteConnInfoValue(""), "''");
  EXPECT_EQ(QuoteConnInfoValue("a b"), "'a b'");
  EXPECT_EQ(QuoteConnInfoValue("a\tb"), "'a\tb'");
  EXPECT_EQ(QuoteConnInfoValue("it's"), "'it\\'s'");
  EXPECT_EQ(QuoteConnInfoValue("a\\b"), "'a\\\\b'");
}

// libpq, not our reading of its rules, decides whether the quoting is right.
TEST(QuoteTest, ConnInfoValueRoundTripsThroughLibpq) {
  for (const std::string value :
       {"plain", "", "a b", "it's", "a\\b", "' \\ '", "x=y", "tab\there"}) {
    const std::string conninfo = "host=h passfile=" + QuoteConnInfoValue(value) + " port=1";
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
    ASSERT_NE(options, nullptr) << conninfo << ": " << (error ? error : "");
    std::string parsed = "<unset>";
    std::string port;
    for (PQconninfoOption* o = options; o->keyword; ++o) {
      if (std::string(o->keyword) == "passfile" && o->val) parsed = o->val;
      if (std::string(o->keyword) == "port" && o->val) port = o->val;
    }
    PQconninfoFree(options);
    EXPECT_EQ(parsed, value) << conninfo;
    EXPECT_EQ(port, "1") << conninfo;
  }
}

// ---- hash ----------------------------------------------------------------

TEST(HashTest, StableForSameInputAndLowercaseHex) {
  const GeneratedConfig a = GenerateConfig(StandbyConfig(15));
  const GeneratedConfig b = GenerateConfig(StandbyConfig(15));
  EXPECT_EQ(a.hash, b.hash);
  ASSERT_EQ(a.hash.size(), 64u);
  for (char c : a.hash) EXPECT_TRUE(std::isdigit(c) || (c >= 'a' && c <= 'f')) << a.hash;
}

TEST(HashTest, ChangesWhenAnyInputChanges) {
  const std::vector<std::pair<std::string, std::function<void(InstanceConfig&)>>> changes = {
      {"major", [](InstanceConfig& c) { c.majorVersion = 16; }},
      {"instance name", [](InstanceConfig& c) { c.instanceName = "demo-9"; }},
      {"role", [](InstanceConfig& c) { c.role = Role::kPrimary; }},
      {"listen", [](InstanceConfig& c) { c.listenAddresses = "*"; }},
      {"port", [](InstanceConfig& c) { c.port = 6543; }},
      {"user parameter", [](InstanceConfig& c) { c.userParameters["work_mem"] = "9MB"; }},
      {"new user parameter", [](InstanceConfig& c) { c.userParameters["jit"] = "off"; }},
      {"hba rule", [](InstanceConfig& c) { c.userHbaRules.push_back("host a a ::1/128 trust"); }},
      {"network", [](InstanceConfig& c) { c.clientNetworks = {"0.0.0.0/0"}; }},
      {"replication user", [](InstanceConfig& c) { c.replicationUser = "repl"; }},
      {"upstream host", [](InstanceConfig& c) { c.upstream->host = "127.0.0.2"; }},
      {"upstream port", [](InstanceConfig& c) { c.upstream->port = 5434; }},
      {"passfile", [](InstanceConfig& c) { c.upstream->passfile = "/x"; }},
      {"application name", [](InstanceConfig& c) { c.upstream->applicationName = "x"; }},
      {"slot", [](InstanceConfig& c) { c.upstream->slotName = "demo_9"; }},
      {"no slot", [](InstanceConfig& c) { c.upstream->slotName = ""; }},
  };
  const std::string base = GenerateConfig(StandbyConfig(15)).hash;
  std::set<std::string> seen = {base};
  for (const auto& [what, change] : changes) {
    InstanceConfig config = StandbyConfig(15);
    change(config);
    const std::string hash = GenerateConfig(config).hash;
    EXPECT_NE(hash, base) << what;
    EXPECT_TRUE(seen.insert(hash).second) << what << " collides with another change";
  }
  // On a primary, synchronous names count too.
  EXPECT_NE(GenerateConfig(PrimaryConfig(15)).hash, GenerateConfig(SyncPrimaryConfig(15)).hash);
}

// ---- owned list ----------------------------------------------------------

TEST(OwnedParametersTest, SortedAndCaseInsensitive) {
  const auto& owned = OwnedParameters();
  EXPECT_TRUE(std::is_sorted(owned.begin(), owned.end()));
  EXPECT_TRUE(IsOwnedParameter("port"));
  EXPECT_TRUE(IsOwnedParameter("Port"));
  EXPECT_TRUE(IsOwnedParameter("WAL_LEVEL"));
  EXPECT_TRUE(IsOwnedParameter("recovery_target_action"));
  EXPECT_TRUE(IsOwnedParameter("include_dir"));
  EXPECT_FALSE(IsOwnedParameter("work_mem"));
  EXPECT_FALSE(IsOwnedParameter("max_connections"));
}

// Every parameter pgrs sets (owned or default) is one pgrs does not let
// drift: each owned one that pgrs emits must be in the owned list, so that
// validation rejects a user value for it.
TEST(OwnedParametersTest, EverySettingPgrsForcesIsOwned) {
  InstanceConfig config = StandbyConfig(15);
  config.userParameters = {};
  const std::string conf = FileText(GenerateConfig(config), "postgresql.conf");
  const std::set<std::string> defaults = {
      "dynamic_shared_memory_type", "log_destination", "log_line_prefix", "log_timezone",
      "logging_collector", "max_connections", "shared_buffers", "timezone",
      "wal_receiver_status_interval", "wal_receiver_timeout", "wal_retrieve_retry_interval", "wal_sender_timeout"};
  for (const std::string& name : SettingNames(conf)) {
    if (defaults.count(name)) {
      EXPECT_FALSE(IsOwnedParameter(name)) << name;
    } else {
      EXPECT_TRUE(IsOwnedParameter(name)) << name;
    }
  }
}

// ---- against a real PostgreSQL 15 ----------------------------------------

struct CommandOutput {
  int exitCode = -1;
  std::string output;
};

// Runs argv (no shell) and captures stdout+stderr.
CommandOutput RunCommand(const std::vector<std::string>& argv) {
  CommandOutput result;
  int fds[2];
  if (pipe(fds) != 0) return result;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  char buffer[4096];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;) result.output.append(buffer, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// PostgreSQL refuses to run as root; as root, the postgres OS user runs it.
std::vector<std::string> AsPostgres(std::vector<std::string> argv) {
  if (geteuid() != 0) return argv;
  std::vector<std::string> wrapped = {"runuser", "-u", "postgres", "--"};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

bool HavePostgres15() { return fs::exists(fs::path(kPostgresBin) / "postgres"); }

TEST(Postgres15Test, EveryGeneratedNameIsKnownToPostgres) {
  if (!HavePostgres15()) GTEST_SKIP() << "no PostgreSQL 15 at " << kPostgresBin;
  const CommandOutput describe =
      RunCommand(AsPostgres({std::string(kPostgresBin) + "/postgres", "--describe-config"}));
  ASSERT_EQ(describe.exitCode, 0) << describe.output;
  std::set<std::string> known;
  for (const std::string& line : Lines(describe.output)) {
    std::string name = line.substr(0, line.find('\t'));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    known.insert(name);
  }
  ASSERT_GT(known.size(), 200u);
  for (const InstanceConfig& config :
       {PrimaryConfig(15), StandbyConfig(15), SyncPrimaryConfig(15)}) {
    const std::string conf = FileText(GenerateConfig(config), "postgresql.conf");
    for (const std::string& name : SettingNames(conf)) {
      EXPECT_TRUE(known.count(name)) << name << " unknown to PostgreSQL 15";
    }
  }
  // The owned list names real parameters, except conf-file directives,
  // older majors' names, and config_file (command line only, not listed).
  const std::set<std::string> notIn15 = {"config_file", "include", "include_dir",
                                         "include_if_exists", "standby_mode",
                                         "wal_keep_segments"};
  for (const std::string& name : OwnedParameters()) {
    if (!notIn15.count(name)) {
      EXPECT_TRUE(known.count(name)) << name << " unknown to PostgreSQL 15";
    }
  }
}

// A data directory under a temp dir the postgres user can enter; removed on
// every exit path.
class TempDataDir {
 public:
  TempDataDir() {
    char pattern[] = "/tmp/pgrs-config-test-XXXXXX";
    if (mkdtemp(pattern)) root_ = pattern;
    if (!root_.empty() && geteuid() == 0) {
      if (const passwd* pw = getpwnam("postgres")) {
        uid_ = pw->pw_uid;
        gid_ = pw->pw_gid;
        if (chown(root_.c_str(), uid_, gid_) != 0) root_.clear();
      }
    }
  }
  ~TempDataDir() {
    std::error_code ignored;
    if (!root_.empty()) fs::remove_all(root_, ignored);
  }
  bool ok() const { return !root_.empty(); }
  std::string data() const { return (fs::path(root_) / "data").string(); }

  void Write(const GeneratedConfig& generated) {
    for (const ConfigFile& file : generated.files) {
      const fs::path path = fs::path(data()) / file.name;
      WriteText(path, file.content);
      if (geteuid() == 0) {
        ASSERT_EQ(chown(path.c_str(), uid_, gid_), 0) << path;
      }
    }
    for (const std::string& name : generated.removeFiles) fs::remove(fs::path(data()) / name);
  }

 private:
  std::string root_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
};

// postgres -C parses postgresql.conf exactly as the server would at start,
// then prints one setting and exits without starting anything.
TEST(Postgres15Test, ServerReadsGeneratedConfiguration) {
  if (!HavePostgres15()) GTEST_SKIP() << "no PostgreSQL 15 at " << kPostgresBin;
  TempDataDir dir;
  ASSERT_TRUE(dir.ok());
  const CommandOutput initdb = RunCommand(AsPostgres({std::string(kPostgresBin) + "/initdb", "-D",
                                               dir.data(), "--no-sync", "-A", "trust", "-E",
                                               "UTF8", "--locale=C"}));
  ASSERT_EQ(initdb.exitCode, 0) << initdb.output;
  const auto show = [&](const std::string& name) {
    const CommandOutput out =
        RunCommand(AsPostgres({std::string(kPostgresBin) + "/postgres", "-D", dir.data(), "-C",
                               name}));
    EXPECT_EQ(out.exitCode, 0) << name << ": " << out.output;
    return Trim(out.output);
  };

  InstanceConfig primary = SyncPrimaryConfig(15);
  primary.userParameters["log_line_prefix"] = "it's %m \\ ";
  dir.Write(GenerateConfig(primary));
  EXPECT_EQ(show("wal_level"), "replica");
  EXPECT_EQ(show("wal_keep_size"), "512");  // shown in MB; capped by maxSlotWalKeepSize
  EXPECT_EQ(show("max_slot_wal_keep_size"), "512");
  EXPECT_EQ(show("max_wal_senders"), "40");
  EXPECT_EQ(show("hot_standby_feedback"), "on");
  EXPECT_EQ(show("port"), "5432");
  EXPECT_EQ(show("cluster_name"), "demo-1");
  EXPECT_EQ(show("unix_socket_directories"), "");
  EXPECT_EQ(show("max_connections"), "200");
  EXPECT_EQ(show("synchronous_standby_names"), "ANY 1 (\"demo-2\", \"demo-3\")");
  EXPECT_EQ(show("log_line_prefix"), "it's %m \\");  // Trim ate the final space

  // The standby's conninfo survives both layers of quoting: the server's
  // conf parser, then libpq's.
  InstanceConfig standby = StandbyConfig(15);
  standby.upstream->passfile = "/var/lib/it's a \\ path/pgpass";
  dir.Write(GenerateConfig(standby));
  EXPECT_TRUE(fs::exists(fs::path(dir.data()) / "standby.signal"));
  EXPECT_EQ(show("primary_slot_name"), "demo_2");
  EXPECT_EQ(show("recovery_target_timeline"), "latest");
  const std::string conninfo = show("primary_conninfo");
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  ASSERT_NE(options, nullptr) << conninfo << ": " << (error ? error : "");
  std::map<std::string, std::string> parsed;
  for (PQconninfoOption* o = options; o->keyword; ++o) {
    if (o->val) parsed[o->keyword] = o->val;
  }
  PQconninfoFree(options);
  EXPECT_EQ(parsed["host"], "127.0.0.1");
  EXPECT_EQ(parsed["port"], "5432");
  EXPECT_EQ(parsed["user"], "pgrs_replication");
  EXPECT_EQ(parsed["passfile"], "/var/lib/it's a \\ path/pgpass");
  EXPECT_EQ(parsed["application_name"], "demo-2");
  EXPECT_EQ(parsed["connect_timeout"], "5");
}

}  // namespace
}  // namespace pgrs::postgres
