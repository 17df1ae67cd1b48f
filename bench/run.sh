#!/usr/bin/env bash
# Storage engine benchmarks: the chunked layout (format 2) against the
# one-bbolt-key-per-reading layout it replaced (format 1, the baseline),
# both measured in this run, on the data set of bench/dataset.go (8 GPUs at
# 20 Hz change-only + 2 CPUs with DRAM at 10 Hz, 1 h and 24 h).
#
#   bench/run.sh            everything (about 8 minutes on 2 cores)
#   bench/run.sh --quick    1 h ingest only, 10 s RSS run, fewer query rounds
#
# Environment: WATTREC_BENCH_DIR (scratch directory, default $TMPDIR; it
# needs about 1 GB), WATTREC_BENCH_RSS_SECONDS (default 60).
# It prints the raw `go test -bench` lines, then one table.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

ingest='^BenchmarkIngest$'
rounds=10
if [[ "${1:-}" == "--quick" ]]; then
  ingest='^BenchmarkIngest$/layout/span=1h'
  rounds=3
  export WATTREC_BENCH_RSS_SECONDS=${WATTREC_BENCH_RSS_SECONDS:-10}
fi

raw=$(mktemp)
bin=$(mktemp -d)
trap 'rm -rf "$raw" "$bin"' EXIT
# The real binary, for the RSS of `wattrec record` itself.
go build -o "$bin/wattrec" . && export WATTREC_BENCH_WATTREC="$bin/wattrec"
{
  go test -run '^$' -bench "$ingest" -benchtime 1x -timeout 60m ./bench
  go test -run '^$' -bench '^BenchmarkRSS$' -benchtime 1x -timeout 60m ./bench
  go test -run '^$' -bench '^Benchmark(Joules|Scan)$' -benchtime "${rounds}x" -timeout 60m ./bench
} | tee "$raw"

echo
awk -v nproc="$(nproc)" -v gover="$(go env GOVERSION)" '
# Benchmark lines: name, iterations, then value/unit pairs.
/^Benchmark/ {
  name = $1
  sub(/-[0-9]+$/, "", name)
  layout = name; sub(/.*layout=/, "", layout); sub(/\/.*/, "", layout)
  key = name; sub(/^Benchmark/, "", key); sub(/layout=[a-z-]+\/?/, "", key); sub(/\/$/, "", key)
  for (i = 3; i < NF; i += 2) m[key, layout, $(i+1)] = $i
  next
}
/^cpu:/ { sub(/^cpu: */, ""); sub(/ *$/, ""); cpu = $0 }
function fmtn(v, unit) {
  if (v == "") return "—"
  if (unit == "rate") {
    if (v >= 1e6) return sprintf("%.2f M", v / 1e6)
    return sprintf("%.0f k", v / 1e3)
  }
  if (unit == "ms") { if (v < 10) return sprintf("%.2f ms", v); return sprintf("%.0f ms", v) }
  if (unit == "B") return sprintf("%.2f", v)
  if (unit == "MB") return sprintf("%.1f MB", v)
  return v
}
# row prints one measurement; higher says whether more is better.
function row(label, key, metric, unit, higher,   b, c, r) {
  b = m[key, "baseline", metric]; c = m[key, "chunks", metric]
  r = "—"
  if (b != "" && c != "" && b > 0 && c > 0) r = sprintf("%.1f×", higher ? c / b : b / c)
  printf "| %s | %s | %s | %s |\n", label, fmtn(b, unit), fmtn(c, unit), r
}
END {
  printf "wattrec storage benchmarks: %s, %s CPUs, %s\n", cpu, nproc, gover
  for (s = 1; s <= 2; s++) {
    span = (s == 1) ? "1h" : "24h"
    if (m["Ingest/span=" span, "chunks", "events"] != "")
      printf "data set %s: %d events, %d samples\n", span, m["Ingest/span=" span, "chunks", "events"], m["Ingest/span=" span, "chunks", "samples"]
  }
  print ""
  print "| measurement | baseline: one key per reading | chunks (format 2) | improvement |"
  print "|---|---|---|---|"
  for (s = 1; s <= 2; s++) {
    span = (s == 1) ? "1h" : "24h"
    k = "Ingest/span=" span
    if (m[k, "chunks", "events/s"] == "" && m[k, "baseline", "events/s"] == "") continue
    row("ingest " span ", events/s (SSE → recorder → durable)", k, "events/s", "rate", 1)
    row("ingest " span ", samples/s", k, "samples/s", "rate", 1)
    row("bytes/sample on disk after " span " (du)", k, "disk-B/sample", "B", 0)
    row("bytes/sample, file size after " span " (ls)", k, "file-B/sample", "B", 0)
    row("recorder peak RSS during the " span " ingest", k, "peak-RSS-MB", "MB", 0)
  }
  for (g = 1; g <= 2; g++) for (w = 1; w <= 2; w++) for (p = 1; p <= 2; p++) {
    gpus = (g == 1) ? 1 : 8; win = (w == 1) ? "1h" : "24h"; path = (p == 1) ? "energy" : "fast"
    k = "Joules/gpus=" gpus "/window=" win "/path=" path
    if (m[k, "chunks", "ms/query"] == "") continue
    label = sprintf("joules, %d GPU%s × %s, warm, %s", gpus, gpus > 1 ? "s" : "", win, path == "energy" ? "query.Energy as wired" : "query.IntegrateSeries (chunk sums)")
    row(label, k, "ms/query", "ms", 0)
    if (m[k, "chunks", "J"] != m[k, "baseline", "J"] && m[k, "baseline", "J"] != "") mismatch = mismatch " " k
  }
  row("scan every reading of the 24 h file, readings/s", "Scan/span=24h", "readings/s", "rate", 1)
  row("recorder peak RSS, 100 endpoints at default rates", "RSS/endpoints=100", "peak-RSS-MB", "MB", 0)
  row("recorder RSS at the end of that run", "RSS/endpoints=100", "RSS-MB", "MB", 0)
  for (v = 1; v <= 2; v++) {
    l = (v == 1) ? "binary" : "binary-memlimit"
    if (m["RSS/endpoints=100", l, "peak-RSS-MB"] == "") continue
    printf "| `wattrec record`%s, 100 endpoints: peak RSS | — | %s | — |\n", (v == 1) ? "" : " with GOMEMLIMIT=40MiB", fmtn(m["RSS/endpoints=100", l, "peak-RSS-MB"], "MB")
  }
  print ""
  if (mismatch != "") print "JOULES DIFFER between layouts:" mismatch
  else print "joules: identical across layouts and paths (J metric of BenchmarkJoules)"
}' "$raw"
