#include "operator/postgres/config.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <string_view>

namespace pgrs::postgres {

namespace {

// Kept equal to the segment count below (64 x 16MB) so that moving a set
// from 12 to 13 keeps the same amount of WAL.
constexpr const char* kWalKeepSize = "1GB";
constexpr int64_t kWalKeepSizeMegabytes = 1024;
constexpr const char* kWalKeepSegments = "64";
// Constant, not derived from spec.instances: a hot standby refuses to run
// with a lower max_wal_senders than its primary had, and a standby cloned
// when the set had 3 instances must still run after a scale to 5 (and the
// old primary after a failover), so every instance must agree at any count.
constexpr const char* kMaxWalSenders = "40";
constexpr const char* kMaxReplicationSlots = "40";

// Settings the user may change through spec.postgres.parameters. Every name
// exists in 11..17.
const std::map<std::string, std::string>& Defaults() {
  static const std::map<std::string, std::string> kDefaults = {
      {"dynamic_shared_memory_type", "posix"},
      // The agent captures stderr; a collector would hide logs from it.
      {"log_destination", "stderr"},
      {"log_line_prefix", "%m [%p] %q%u@%d "},
      {"log_timezone", "UTC"},
      {"logging_collector", "off"},
      {"max_connections", "100"},
      {"shared_buffers", "128MB"},
      {"timezone", "UTC"},
      // Short timeouts so that a standby notices a lost upstream (and the
      // primary a lost standby) within seconds, which failover relies on.
      {"wal_receiver_status_interval", "1s"},
      {"wal_receiver_timeout", "5s"},
      // After a failover a standby reconnects to its new upstream within a
      // second, not PostgreSQL's default five.
      {"wal_retrieve_retry_interval", "1s"},
      {"wal_sender_timeout", "5s"},
  };
  return kDefaults;
}

// GUC names are case-insensitive; pgrs writes them in lower case so that
// "TimeZone" from the user replaces the default "timezone" instead of
// sitting beside it.
std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$';
}

// True for what postgresql.conf accepts as a parameter name: an identifier,
// or identifiers joined by dots (extension settings). Anything else could
// inject lines into the file, so the generator drops it; validation reports
// it to the user.
bool IsValidParameterName(std::string_view name) {
  bool atStart = true;
  for (char c : name) {
    if (atStart) {
      if (!IsIdentStart(c)) return false;
      atStart = false;
    } else if (c == '.') {
      atStart = true;
    } else if (!IsIdentChar(c)) {
      return false;
    }
  }
  return !atStart;
}

// Text placed in a comment must stay on its line.
std::string CommentSafe(std::string_view s) {
  std::string out;
  for (char c : s) out += std::iscntrl(static_cast<unsigned char>(c)) ? ' ' : c;
  return out;
}

bool IsBareHbaToken(std::string_view s) {
  // Keywords mean something else unquoted ("all" is every role).
  static const char* const kKeywords[] = {"all", "sameuser", "samerole", "samegroup",
                                          "replication", "samehost", "samenet"};
  for (const char* k : kKeywords) {
    if (s == k) return false;
  }
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

// A role name as a pg_hba.conf token: double-quoted when it is not a plain
// identifier, with "" for an embedded quote. A line break cannot be
// represented at all, so control characters are dropped.
std::string HbaRoleToken(std::string_view name) {
  if (IsBareHbaToken(name)) return std::string(name);
  std::string out = "\"";
  for (char c : name) {
    if (std::iscntrl(static_cast<unsigned char>(c))) continue;
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

// An address in CIDR form has only these characters; anything else is not
// a network and could inject text into pg_hba.conf.
bool IsCidrLike(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) && c != '.' && c != ':' && c != '/') {
      return false;
    }
  }
  return true;
}

// synchronous_standby_names has a grammar of its own (FIRST|ANY n (a, b)):
// a standby name there is an identifier, a number, * or a double-quoted
// string, so an instance name such as demo-2 is a syntax error unless
// quoted, and a server with a bad value in postgresql.conf refuses to
// start. Names that need quotes get them; everything else is kept as
// written, so an already-quoted expression passes through unchanged.
std::string QuoteSyncStandbyNames(std::string_view expression) {
  const auto isSeparator = [](char c) {
    return std::isspace(static_cast<unsigned char>(c)) || c == ',' || c == '(' || c == ')';
  };
  const auto isBare = [](std::string_view word) {
    if (word == "*") return true;
    if (std::all_of(word.begin(), word.end(),
                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      return true;  // the count in ANY 2 (...)
    }
    if (!IsIdentStart(word[0])) return false;
    return std::all_of(word.begin(), word.end(), IsIdentChar);
  };
  std::string out;
  size_t i = 0;
  while (i < expression.size()) {
    const char c = expression[i];
    if (isSeparator(c)) {
      out += c;
      ++i;
    } else if (c == '"') {
      // Copy a quoted name through, "" being an escaped quote inside it.
      size_t end = i + 1;
      bool closed = false;
      while (end < expression.size() && !closed) {
        if (expression[end] == '"' && end + 1 < expression.size() && expression[end + 1] == '"') {
          end += 2;
        } else {
          closed = expression[end] == '"';
          ++end;
        }
      }
      out.append(expression.substr(i, end - i));
      if (!closed) out += '"';
      i = end;
    } else {
      size_t end = i;
      while (end < expression.size() && !isSeparator(expression[end]) && expression[end] != '"') {
        ++end;
      }
      const std::string_view word = expression.substr(i, end - i);
      if (isBare(word)) {
        out.append(word);
      } else {
        out += '"';
        out.append(word);
        out += '"';
      }
      i = end;
    }
  }
  return out;
}

std::string Header(const InstanceConfig& config, std::string_view what) {
  std::string out;
  out += "# " + std::string(what) + "\n";
  out += "# Generated by pgrs for instance " + CommentSafe(config.instanceName) + " (" +
         RoleName(config.role) + ", PostgreSQL " + std::to_string(config.majorVersion) + ").\n";
  return out;
}

std::string PrimaryConnInfo(const UpstreamConfig& upstream) {
  std::string out;
  out += "host=" + QuoteConnInfoValue(upstream.host);
  out += " port=" + std::to_string(upstream.port);
  out += " user=" + QuoteConnInfoValue(upstream.user);
  out += " passfile=" + QuoteConnInfoValue(upstream.passfile);
  out += " application_name=" + QuoteConnInfoValue(upstream.applicationName);
  if (!upstream.sslRootCert.empty()) {
    out += " sslmode=verify-full sslrootcert=" + QuoteConnInfoValue(upstream.sslRootCert);
    out += " sslcert=" + QuoteConnInfoValue(upstream.sslCert) + " sslkey=" + QuoteConnInfoValue(upstream.sslKey);
  }
  // A standby retries its upstream; a short timeout keeps a dead address
  // from stalling the walreceiver for the OS default (minutes).
  out += " connect_timeout=5";
  return out;
}

// A word for /bin/sh, which runs archive_command and restore_command:
// single-quoted unless it is plain.
std::string ShellWord(const std::string& word) {
  const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || (c != '\0' && std::strchr("/._-=+:@,", c) != nullptr);
  });
  if (plain) return word;
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// PostgreSQL expands %p, %f and %% in the command before the shell sees it.
std::string PercentEscaped(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '%' ? std::string("%%") : std::string(1, c);
  return out;
}

std::string PgBackRestCommand(const ArchiveConfig& archive, const std::string& command) {
  return PercentEscaped(ShellWord(archive.pgbackrest) + " " + ShellWord("--config=" + archive.configFile) + " " +
                        ShellWord("--stanza=" + archive.stanza)) +
         " " + command;
}


// The settings that make a server a standby of its upstream; in
// postgresql.conf from 12 on, in recovery.conf before. A standby without an
// upstream (not meant to happen) still stays a standby, waiting: better
// than promoting itself by accident.
std::vector<std::pair<std::string, std::string>> StandbySettings(const InstanceConfig& config) {
  std::vector<std::pair<std::string, std::string>> out;
  if (config.upstream) {
    out.emplace_back("primary_conninfo", PrimaryConnInfo(*config.upstream));
    if (!config.upstream->slotName.empty()) {
      out.emplace_back("primary_slot_name", config.upstream->slotName);
    }
  }
  // WAL the upstream no longer has comes from the archive.
  if (config.archive) {
    out.emplace_back("restore_command", RestoreCommand(*config.archive));
  }
  // Follow the new primary's timeline after a failover.
  out.emplace_back("recovery_target_timeline", "latest");
  return out;
}

std::string PostgresqlConf(const InstanceConfig& config) {
  std::map<std::string, std::string> settings = Defaults();
  for (const auto& [rawName, value] : config.userParameters) {
    std::string name = Lower(rawName);
    // Owned names never come from the user, even when validation missed
    // them: dropped here, set below only where pgrs needs them.
    if (!IsValidParameterName(name) || IsOwnedParameter(name)) continue;
    settings[name] = value;
  }

  const bool primary = config.role == Role::kPrimary;
  settings["cluster_name"] = config.instanceName;
  settings["listen_addresses"] = config.listenAddresses;
  settings["port"] = std::to_string(config.port);
  // pgrs and every tool it runs connect over TCP; no socket directory to
  // share or secure between instances.
  settings["unix_socket_directories"] = "";
  settings["wal_level"] = "replica";
  settings["max_wal_senders"] = kMaxWalSenders;
  settings["max_replication_slots"] = kMaxReplicationSlots;
  if (HasWalKeepSize(config.majorVersion)) {
    settings["wal_keep_size"] = kWalKeepSize;
    const std::optional<int64_t> slotBound = WalSizeMegabytes(config.maxSlotWalKeepSize);
    if (slotBound && HasMaxSlotWalKeepSize(config.majorVersion)) {
      settings["max_slot_wal_keep_size"] = *slotBound < 0 ? "-1" : std::to_string(*slotBound) + "MB";
      if (config.replicationSlots && *slotBound >= 0 && *slotBound < kWalKeepSizeMegabytes) {
        settings["wal_keep_size"] = std::to_string(*slotBound) + "MB";
      }
    }
  } else {
    settings["wal_keep_segments"] = kWalKeepSegments;
  }
  // Every instance may be a standby tomorrow: read-only queries on it, and
  // feedback so the primary keeps rows its queries still read.
  settings["hot_standby"] = "on";
  settings["hot_standby_feedback"] = "on";
  // pg_rewind needs both to re-attach an old primary.
  settings["wal_log_hints"] = "on";
  settings["full_page_writes"] = "on";
  settings["password_encryption"] = "scram-sha-256";
  // A standby must not wait for acknowledgements of its own: it would
  // block writes right after a promotion until pgrs rewrote its config.
  settings["synchronous_standby_names"] =
      primary ? QuoteSyncStandbyNames(config.synchronousStandbyNames) : "";
  if (config.archive) {
    // On every instance, so that a promoted standby archives its new
    // timeline (the .history file first) without a restart: with "on"
    // (not "always") a standby archives nothing.
    for (auto it = settings.begin(); it != settings.end();) {
      it = IsArchiveParameter(it->first) ? settings.erase(it) : std::next(it);
    }
    settings["archive_mode"] = "on";
    settings["archive_command"] = PgBackRestCommand(*config.archive, "archive-push %p");
    // A quiet primary fills a segment slowly, and only full segments are
    // archived: this bounds what a total loss costs (the RPO) to about a
    // minute, at the price of one mostly empty (and compressed) segment a
    // minute while something is written. spec.postgres.parameters may say
    // otherwise.
    settings.emplace("archive_timeout", "60s");
    if (!UsesRecoveryConf(config.majorVersion)) {
      // A primary ignores it, and has it too: on 12 and 13 it takes a
      // restart to change, which a promotion must not need.
      settings["restore_command"] = RestoreCommand(*config.archive);
    }
  }
  if (config.tls) {
    for (auto it = settings.begin(); it != settings.end();) {
      it = IsTlsParameter(it->first) ? settings.erase(it) : std::next(it);
    }
    // All reloadable (10+): turning TLS on, and a renewed certificate, take
    // a reload, no restart.
    settings["ssl"] = "on";
    settings["ssl_cert_file"] = config.tls->certFile;
    settings["ssl_key_file"] = config.tls->keyFile;
    settings["ssl_ca_file"] = config.tls->caFile;
    if (config.majorVersion >= 12) settings["ssl_min_protocol_version"] = "TLSv1.2";
  }
  if (!primary && !UsesRecoveryConf(config.majorVersion)) {
    for (auto& [name, value] : StandbySettings(config)) settings[name] = value;
  }
  if (!UsesRecoveryConf(config.majorVersion)) {
    // A server-start setting: the same value in both roles, so that a
    // promoted standby does not need a restart when its file is rewritten
    // as a primary's ('latest' is also PostgreSQL's default from 12 on).
    settings["recovery_target_timeline"] = "latest";
  }

  std::string out = Header(config, "postgresql.conf");
  out += "# Do not edit: pgrs rewrites this file. Set spec.postgres.parameters instead.\n\n";
  for (const auto& [name, value] : settings) {
    out += name + " = " + QuoteConfValue(value) + "\n";
  }
  return out;
}

std::string RecoveryConf(const InstanceConfig& config) {
  std::string out = Header(config, "recovery.conf");
  out += "# Do not edit: pgrs rewrites this file.\n\n";
  out += "standby_mode = " + QuoteConfValue("on") + "\n";
  for (const auto& [name, value] : StandbySettings(config)) {
    out += name + " = " + QuoteConfValue(value) + "\n";
  }
  return out;
}

std::string PgHbaConf(const InstanceConfig& config) {
  std::string out = Header(config, "pg_hba.conf");
  out += "# Do not edit: pgrs rewrites this file. Set spec.postgres.pgHBA instead.\n";
  out += "# The first matching rule wins: pgrs's rules come first so that no user\n";
  out += "# rule can lock out replication or pgrs itself; user rules decide only\n";
  out += "# for connections these do not match (other networks).\n\n";
  out += "# TYPE  DATABASE     USER  ADDRESS  METHOD\n";
  const std::string replicationUser = HbaRoleToken(config.replicationUser);
  for (const std::string& network : config.clientNetworks) {
    if (!IsCidrLike(network)) continue;
    // "all" in the database column does not match replication connections,
    // so standbys need their own rule.
    if (config.tls) {
      // Standbys by their client certificate (its CN is the role), people
      // and programs by password, both over TLS only.
      out += "hostssl replication " + replicationUser + " " + network + " cert\n";
      out += "hostssl all all " + network + " scram-sha-256\n";
    } else {
      out += "host replication " + replicationUser + " " + network + " scram-sha-256\n";
      out += "host all all " + network + " scram-sha-256\n";
    }
  }
  if (config.tls) {
    // No TCP connection without TLS, whatever the user's rules below say.
    out += "hostnossl replication all all reject\n";
    out += "hostnossl all all all reject\n";
  }
  out += "\n# spec.postgres.pgHBA\n";
  for (const std::string& rule : config.userHbaRules) out += rule + "\n";
  return out;
}

// Length-prefixed so that no two different inputs feed the same bytes to
// the digest (a name ending where content starts cannot collide).
void DigestField(EVP_MD_CTX* ctx, std::string_view field) {
  std::string prefix = std::to_string(field.size()) + ":";
  EVP_DigestUpdate(ctx, prefix.data(), prefix.size());
  EVP_DigestUpdate(ctx, field.data(), field.size());
}

std::string Hash(const GeneratedConfig& generated) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (const ConfigFile& file : generated.files) {
    DigestField(ctx, "file");
    DigestField(ctx, file.name);
    DigestField(ctx, file.content);
  }
  for (const std::string& name : generated.removeFiles) {
    DigestField(ctx, "remove");
    DigestField(ctx, name);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx, digest, &length);
  EVP_MD_CTX_free(ctx);
  std::string hex;
  char byte[3];
  for (unsigned int i = 0; i < length; ++i) {
    std::snprintf(byte, sizeof byte, "%02x", digest[i]);
    hex += byte;
  }
  return hex;
}

}  // namespace

std::optional<int64_t> WalSizeMegabytes(const std::string& text) {
  if (text == "-1") return -1;
  static const std::pair<std::string_view, int64_t> kUnits[] = {{"MB", 1}, {"GB", 1024}, {"TB", 1024 * 1024}};
  for (const auto& [unit, factor] : kUnits) {
    if (text.size() <= unit.size() || text.compare(text.size() - unit.size(), unit.size(), unit) != 0) continue;
    const std::string_view digits = std::string_view(text).substr(0, text.size() - unit.size());
    // No more digits than fit: 2^31-1 has ten.
    if (digits.size() > 10 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return std::nullopt;
    }
    const int64_t megabytes = std::stoll(std::string(digits)) * factor;
    if (megabytes > 2147483647) return std::nullopt;  // PostgreSQL's limit (INT_MAX megabytes)
    return megabytes;
  }
  return std::nullopt;
}

const char* RoleName(Role role) { return role == Role::kPrimary ? "primary" : "standby"; }

std::string RestoreCommand(const ArchiveConfig& archive) {
  return PgBackRestCommand(archive, "archive-get %f \"%p\"");
}

std::string QuoteConfValue(const std::string& value) {
  // postgresql.conf strings end at a raw line break, so one is written as
  // the \n escape the parser understands; \\ and '' are the other escapes.
  std::string out = "'";
  for (char c : value) {
    switch (c) {
      case '\'': out += "''"; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
  out += "'";
  return out;
}

std::string QuoteConnInfoValue(const std::string& value) {
  bool needsQuotes = value.empty();
  for (char c : value) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == '\'' || c == '\\') needsQuotes = true;
  }
  if (!needsQuotes) return value;
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += "'";
  return out;
}

GeneratedConfig GenerateConfig(const InstanceConfig& config) {
  GeneratedConfig generated;
  const bool standby = config.role == Role::kStandby;
  generated.files.push_back({"postgresql.conf", PostgresqlConf(config)});
  generated.files.push_back({"pg_hba.conf", PgHbaConf(config)});
  if (UsesRecoveryConf(config.majorVersion)) {
    if (standby) {
      generated.files.push_back({"recovery.conf", RecoveryConf(config)});
    } else {
      // 11 reads recovery.conf as "enter recovery": a primary must not have one.
      generated.removeFiles = {"recovery.conf"};
    }
  } else {
    // 12+ refuses to start while a recovery.conf exists; recovery.signal
    // would mean targeted recovery followed by promotion, never what pgrs
    // wants. Sorted, so the hash does not depend on how this list is built.
    if (standby) {
      generated.files.push_back({"standby.signal", ""});
      generated.removeFiles = {"recovery.conf", "recovery.signal"};
    } else if (config.archiveRecovery) {
      generated.removeFiles = {"recovery.conf", "standby.signal"};
    } else {
      generated.removeFiles = {"recovery.conf", "recovery.signal", "standby.signal"};
    }
  }
  generated.hash = Hash(generated);
  return generated;
}

}  // namespace pgrs::postgres
